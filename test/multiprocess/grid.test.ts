// The compact collective grid across real processes through the real launcher.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { expectGrid } from './grid-check.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = (n: number, script: string) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['bin/tcclrun.js', '-n', String(n), '--transport', 'tcp', '--timeout', '120', script], { cwd: root, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });

describe('collective grid across processes (tcclrun, tcp)', () => {
  for (const n of [4, 3, 5]) {
    it(`-n ${n}: every check right`, async () => {
      expectGrid(await run(n, 'test/multiprocess/fixtures/collectives-grid.ts'), n);
    }, 150_000);
  }
});
