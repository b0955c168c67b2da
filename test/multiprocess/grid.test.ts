// The compact collective grid across real processes through the real launcher.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = (n: number, script: string) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['bin/tcclrun.js', '-n', String(n), '--timeout', '120', script], { cwd: root, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });

describe('collective grid across processes (tcclrun, tcp)', () => {
  for (const n of [4, 3, 5]) {
    it(`-n ${n}: every check right`, async () => {
      const r = await run(n, 'test/multiprocess/fixtures/collectives-grid.ts');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const m = /GRID ok=(\d+) wrong=(\d+)/.exec(r.stdout);
      expect(m, r.stdout).not.toBeNull();
      expect(Number(m![2])).toBe(0);
      expect(Number(m![1])).toBeGreaterThan(700 * n);
    }, 150_000);
  }
});
