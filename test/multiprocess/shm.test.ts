// The shared-memory transport across real processes (and threads) through the real launcher:
// the collective grid at several world sizes, 8 ranks oversubscribed on this 2-core machine,
// and what kill -9 of one rank leaves behind.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectGrid } from './grid-check.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = (args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['bin/tcclrun.js', '--timeout', '240', ...args], { cwd: root, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
const GRID = 'test/multiprocess/fixtures/collectives-grid.ts';
const KILL = 'test/multiprocess/fixtures/shm-kill.ts';


const jobSegments = (jobId: string) => readdirSync('/dev/shm').filter((name) => name.startsWith(`tccl-${jobId}-`));

describe('collective grid over shared memory, process ranks (tcclrun --transport shm)', () => {
  for (const n of [2, 3, 5]) {
    it(`-n ${n}`, async () => expectGrid(await run(['-n', String(n), '--transport', 'shm', GRID]), n), 250_000);
  }
  it(`-n 8: oversubscribed (${availableParallelism()} cores), every rank makes progress`, async () => {
    expectGrid(await run(['-n', '8', '--transport', 'shm', GRID]), 8);
  }, 250_000);
  it('-n 4 with the default transport (auto: all ranks on this host, so shm)', async () => {
    expectGrid(await run(['-n', '4', GRID]), 4);
  }, 250_000);
});

describe('collective grid over shared memory, thread ranks (tcclrun --threads)', () => {
  for (const n of [3, 4]) {
    it(`-n ${n}`, async () => expectGrid(await run(['-n', String(n), '--threads', GRID]), n), 250_000);
  }
  it('-n 8: oversubscribed', async () => expectGrid(await run(['-n', '8', '--threads', GRID]), 8), 250_000);

  it('a rank thread that throws: the others fail with TCCL_ERR_PEER_LOST, tcclrun exits 1 naming it', async () => {
    const r = await run(['-n', '3', '--threads', KILL, 'throw']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the victim thread fails/);
    expect(r.stderr).toMatch(/rank 2 failed first/);
    const survivors = [...r.stdout.matchAll(/SURVIVOR rank=(\d) code=(\w+) ms=(\d+)/g)];
    expect(survivors.map((m) => [m[1], m[2]]).sort()).toEqual([['0', 'TCCL_ERR_PEER_LOST'], ['1', 'TCCL_ERR_PEER_LOST']]);
  }, 60_000);
});

describe('kill -9 of one rank', () => {
  it('while the others wait on it: they fail with TCCL_ERR_PEER_LOST at once, tcclrun exits non-zero, /dev/shm holds nothing of the job', async () => {
    const r = await run(['-n', '4', '--transport', 'shm', KILL, 'running']);
    const jobId = /JOB (\w+)/.exec(r.stdout)?.[1];
    expect(jobId, r.stdout).toBeTruthy();
    expect(r.code).toBe(128 + 9);
    expect(r.stderr).toMatch(/rank 3 failed first \(signal SIGKILL\)/);
    const survivors = [...r.stdout.matchAll(/SURVIVOR rank=(\d) code=(\w+) ms=(\d+)/g)];
    expect(survivors.map((m) => m[1]).sort()).toEqual(['0', '1', '2']);
    for (const m of survivors) {
      expect(m[2]).toBe('TCCL_ERR_PEER_LOST');
      expect(Number(m[3])).toBeLessThan(20_000); // within the operation's timeout
    }
    expect(jobSegments(jobId!)).toEqual([]);
  }, 60_000);

  it('during setup, before the others unlinked their segments: the launcher removes them', async () => {
    const r = await run(['-n', '3', '--transport', 'shm', KILL, 'setup']);
    const jobId = /JOB (\w+)/.exec(r.stdout)?.[1];
    expect(jobId, r.stdout).toBeTruthy();
    expect(r.stdout).toContain('SEEN 2'); // both survivors' segments existed when the victim died
    expect(r.code).toBe(128 + 9);
    expect(jobSegments(jobId!)).toEqual([]);
  }, 60_000);
});
