// examples/train-tp.ts through the real launcher: TP=2 × DP=2 on 4 processes (two split
// communicators, TCP) against --tp 1 --dp 1 in one process, same seed: the losses match step
// for step within a relative 1e-4, decrease, and the run reports tokens/s. Needs `npm run build`.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = (n: number, args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['bin/tcclrun.js', '-n', String(n), '--timeout', '120', 'examples/train-tp.ts', ...args], { cwd: root, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });

const losses = (stdout: string) => [...stdout.matchAll(/^\[0\] step (\d+) loss (\S+)$/gm)].map((m) => ({ step: Number(m[1]), loss: Number(m[2]) }));

describe('examples/train-tp.ts', () => {
  it('TP=2 × DP=2 on 4 processes matches TP=1 × DP=1 step for step (relative 1e-4)', async () => {
    const steps = 8;
    const [single, parallel] = await Promise.all([
      run(1, ['--tp', '1', '--dp', '1', '--steps', String(steps), '--seed', '7']),
      run(4, ['--tp', '2', '--dp', '2', '--steps', String(steps), '--seed', '7']),
    ]);
    expect(single.code, single.stderr).toBe(0);
    expect(parallel.code, parallel.stderr).toBe(0);
    const a = losses(single.stdout);
    const b = losses(parallel.stdout);
    expect(a.map((l) => l.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    expect(b.map((l) => l.step)).toEqual(a.map((l) => l.step));
    for (let i = 0; i < steps; i++) {
      expect(Number.isFinite(a[i].loss)).toBe(true);
      expect(Math.abs(b[i].loss - a[i].loss) / a[i].loss, `step ${i + 1}: ${b[i].loss} vs ${a[i].loss}`).toBeLessThanOrEqual(1e-4);
    }
    expect(a[steps - 1].loss).toBeLessThan(a[0].loss * 0.8); // it learns
    for (const r of [single, parallel]) expect(r.stdout).toMatch(/^\[0\] tokens\/s \d+/m);
    expect(parallel.stdout).toMatch(/tp 2 dp 2/);
  }, 120_000);

  it('a world that is not tp × dp fails with a coded error naming the sizes', async () => {
    const r = await run(2, ['--tp', '2', '--dp', '2', '--steps', '1']);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/TCCL_ERR_INVALID_ARGUMENT: --tp 2 × --dp 2 = 4 ranks, but the world has 2/);
  }, 60_000);
});
