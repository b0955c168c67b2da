// Messages over 2 GiB through real processes: slow and memory-hungry (about 6 GiB per rank),
// so it runs only with `npm run test:huge`, not in the default test run.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('messages over 2 GiB', () => {
  for (const transport of ['tcp', 'shm']) {
    it(`allreduce, send/recv and broadcast of 2 GiB + a few bytes over ${transport}`, async () => {
      const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['bin/tcclrun.js', '-n', '2', '--transport', transport, '--timeout', '1200', 'test/huge/fixtures/huge.ts'], { cwd: root, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
        });
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('HUGE ok');
      console.log(r.stdout);
    }, 1_300_000);
  }
});
