// End-to-end tests of the built tcclrun binary with small fixture ranks.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildIfStale, fixture, FIXTURES, isAlive, killStragglers, READY, readyPids, start, tcclrun } from './helpers.js';

beforeAll(buildIfStale, 120_000);
afterEach(killStragglers);

const T = 20_000;

describe('tcclrun environment and store', () => {
  it('gives every rank its identity, the store address and the job secret by env only', async () => {
    const r = await tcclrun(['-n', '4', '--transport', 'tcp', '--timeout', '30', 'env.mjs', '-n', '--', 'x y'], {
      cwd: FIXTURES, // relative script path resolves against the caller's cwd
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const reports = r.stdout
      .trim()
      .split('\n')
      .map((l) => {
        const m = l.match(/^\[(\d+)\] (\{.*\})$/);
        expect(m, l).not.toBeNull();
        return { prefix: Number(m![1]), ...JSON.parse(m![2]) };
      });
    expect(reports).toHaveLength(4);
    const ranks = reports.map((x) => Number(x.env.RANK)).sort();
    expect(ranks).toEqual([0, 1, 2, 3]);
    const first = reports[0].env;
    expect(first.MASTER_PORT).toMatch(/^\d+$/);
    expect(first.TCCL_JOB_SECRET).toMatch(/^[0-9a-f]{64}$/);
    expect(first.TCCL_JOB_ID).toMatch(/^[0-9a-f]+$/);
    for (const x of reports) {
      expect(x.prefix).toBe(Number(x.env.RANK));
      expect(x.env.LOCAL_RANK).toBe(x.env.RANK);
      expect(x.env.WORLD_SIZE).toBe('4');
      expect(x.env.LOCAL_WORLD_SIZE).toBe('4');
      expect(x.env.MASTER_ADDR).toBe('127.0.0.1');
      expect(x.env.MASTER_PORT).toBe(first.MASTER_PORT);
      expect(x.env.TCCL_STORE_URL).toBe(`ws://127.0.0.1:${first.MASTER_PORT}`);
      expect(x.env.TCCL_TRANSPORT).toBe('tcp');
      expect(x.env.TCCL_TIMEOUT_MS).toBe('30000');
      expect(x.env.TCCL_JOB_ID).toBe(first.TCCL_JOB_ID);
      expect(x.env.TCCL_JOB_SECRET).toBe(first.TCCL_JOB_SECRET);
      expect(x.env.TCCL_LAUNCHER_PID).toBe(String(x.ppid));
      expect(x.argv).toEqual(['-n', '--', 'x y']);
      expect(x.secretInPs).toBe(false);
    }
  }, T);

  it('uses a fresh secret per job and defaults the transport to auto', async () => {
    const a = await tcclrun(['-n', '1', fixture('env.mjs')]);
    const b = await tcclrun(['-n', '1', fixture('env.mjs')]);
    const envOf = (s: string) => JSON.parse(s.replace(/^\[0\] /, '')).env;
    expect(envOf(a.stdout).TCCL_TRANSPORT).toBe('auto');
    expect(envOf(a.stdout).TCCL_TIMEOUT_MS).toBeUndefined();
    expect(envOf(a.stdout).TCCL_JOB_SECRET).not.toBe(envOf(b.stdout).TCCL_JOB_SECRET);
  }, T);

  it('serves the rendezvous store to the ranks', async () => {
    const r = await tcclrun(['-n', '2', fixture('store.mjs')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['[0] ws-open', '[1] ws-open']);
  }, T);

  it('runs TypeScript through tsx from any cwd', async () => {
    const r = await tcclrun(['-n', '2', fixture('hello.ts')], { cwd: tmpdir() });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['[0] hello from 0 of 2', '[1] hello from 1 of 2']);
  }, T);
});

describe('tcclrun output', () => {
  const LINES = 5000;

  it('prefixes every line with its rank, loses nothing and flushes partial lines', async () => {
    const r = await tcclrun(['-n', '3', fixture('chatty.mjs'), String(LINES)]);
    expect(r.code).toBe(0);
    const out = r.stdout.split('\n');
    expect(out.pop()).toBe('');
    const err = r.stderr.split('\n');
    expect(err.pop()).toBe('');
    for (let rank = 0; rank < 3; rank++) {
      const mine = out.filter((l) => l.startsWith(`[${rank}] `));
      expect(mine).toHaveLength(LINES + 1);
      // Per-rank order is preserved and no line is torn.
      mine.slice(0, LINES).forEach((l, i) => expect(l).toBe(`[${rank}] out ${rank} ${i} ${'x'.repeat(100)}`));
      expect(mine[LINES]).toBe(`[${rank}] tail-${rank}-no-newline`);
      const mineErr = err.filter((l) => l.startsWith(`[${rank}] `));
      expect(mineErr).toHaveLength(LINES);
      mineErr.forEach((l, i) => expect(l).toBe(`[${rank}] err ${rank} ${i}`));
    }
    expect(out).toHaveLength(3 * (LINES + 1));
    expect(err).toHaveLength(3 * LINES);
  }, T);

  it('--no-prefix passes whole lines through unchanged', async () => {
    const r = await tcclrun(['-n', '2', '--no-prefix', fixture('chatty.mjs'), '100']);
    expect(r.code).toBe(0);
    const out = r.stdout.split('\n');
    expect(out.filter((l) => /^out [01] \d+ x+$/.test(l))).toHaveLength(200);
    // A partial last line still gets a newline so the next rank's line starts cleanly.
    expect(out).toContain('tail-0-no-newline');
    expect(out).toContain('tail-1-no-newline');
    expect(r.stdout).not.toMatch(/^\[/m);
    expect(r.stderr.split('\n').filter((l) => /^err [01] \d+$/.test(l))).toHaveLength(200);
  }, T);

  it('accepts --tag-output (mpirun spelling of the default)', async () => {
    const r = await tcclrun(['-n', '1', '--tag-output', fixture('hello.ts')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('[0] hello from 0 of 1\n');
  }, T);
});

describe('tcclrun failures', () => {
  it('a rank exiting 3 stops the others and sets the exit code', async () => {
    const run = start(['-n', '4', fixture('worker.mjs'), 'fail3', '2']);
    const m = await run.waitFor(READY, 4);
    process.kill(Number(m.find((x) => x[1] === '2')![2]), 'SIGUSR2');
    const { code } = await run.done;
    expect(code).toBe(3);
    expect(run.stderr).toContain('tcclrun: rank 2 failed first (exit code 3); stopped ranks 0,1,3');
    for (const pid of readyPids(m)) expect(isAlive(pid)).toBe(false);
  }, T);

  it('a rank killed by SIGKILL gives exit 137 and names the signal', async () => {
    const run = start(['-n', '3', fixture('worker.mjs'), 'sigkill', '1']);
    const m = await run.waitFor(READY, 3);
    process.kill(Number(m.find((x) => x[1] === '1')![2]), 'SIGUSR2');
    const { code } = await run.done;
    expect(code).toBe(137);
    expect(run.stderr).toContain('tcclrun: rank 1 failed first (signal SIGKILL); stopped ranks 0,2');
    for (const pid of readyPids(m)) expect(isAlive(pid)).toBe(false);
  }, T);

  it('a rank that ignores SIGTERM is SIGKILLed after the grace period', async () => {
    const run = start(['-n', '2', fixture('worker.mjs'), 'stubborn', '0']);
    const m = await run.waitFor(READY, 2);
    process.kill(Number(m.find((x) => x[1] === '1')![2]), 'SIGUSR2');
    const { code } = await run.done;
    expect(code).toBe(1);
    expect(run.stdout).toContain('[0] ignoring SIGTERM');
    expect(run.stderr).toContain('tcclrun: rank 0 still running 3 s after SIGTERM; sending SIGKILL');
    expect(run.stderr).toContain('tcclrun: rank 1 failed first (exit code 1); stopped rank 0');
    for (const pid of readyPids(m)) expect(isAlive(pid)).toBe(false);
  }, T);

  it('--timeout stops the job and says so', async () => {
    const run = start(['-n', '2', '--timeout', '2', fixture('worker.mjs'), 'hang']);
    const m = await run.waitFor(READY, 2);
    const { code } = await run.done;
    expect(code).toBe(124);
    expect(run.stderr).toContain('tcclrun: job timed out after 2 s; stopped ranks 0,1');
    for (const pid of readyPids(m)) expect(isAlive(pid)).toBe(false);
  }, T);
});

describe('tcclrun signals', () => {
  for (const [sig, exit] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`${sig} to the launcher stops every rank and exits ${exit}`, async () => {
      const run = start(['-n', '3', fixture('worker.mjs'), 'hang']);
      const m = await run.waitFor(READY, 3);
      run.proc.kill(sig);
      const { code } = await run.done;
      expect(code).toBe(exit);
      expect(run.stderr).toContain(`tcclrun: received ${sig}; stopped ranks 0,1,2`);
      for (const pid of readyPids(m)) expect(isAlive(pid)).toBe(false);
    }, T);
  }
});

describe('tcclrun command line', () => {
  it.each([
    [[], 'missing -n'],
    [['-n', '0', fixture('hello.ts')], '-n must be at least 1'],
    [['-n', 'abc', fixture('hello.ts')], '-n must be a positive integer, got "abc"'],
    [['-n', '2'], 'missing script'],
    [['-n', '2', 'no/such/script.mjs'], 'script not found: no/such/script.mjs'],
    [['-n', '2', '--transport', 'pigeon', fixture('hello.ts')], 'unknown transport "pigeon"'],
    [['-n', '2', '--frobnicate', fixture('hello.ts')], 'unknown option "--frobnicate"'],
    [['-n', '2', '--timeout', '-1', fixture('hello.ts')], '--timeout must be a positive number'],
  ])('%j exits 2 with a clear message', async (args, message) => {
    const r = await tcclrun(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`tcclrun: ${message}`);
    expect(r.stderr).toContain('tcclrun --help');
  }, T);

  it('--help and --version', async () => {
    const h = await tcclrun(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^Usage: tcclrun -n N/);
    const v = await tcclrun(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^tcclrun \(tccl\) \d+\.\d+\.\d+/);
  }, T);
});

describe('tcclrun --bind-to core', () => {
  /** The CPUs this test process may use (what the launcher it starts may use too). */
  const allowed = (): number[] => {
    const list = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1];
    return list.split(',').flatMap((part) => {
      const [lo, hi] = part.split('-').map(Number);
      return Array.from({ length: (hi ?? lo) - lo + 1 }, (_, k) => lo + k);
    });
  };
  const affinities = (stdout: string) => new Map([...stdout.matchAll(/^\[\d+\] AFFINITY (\d+) (\S+) TCCL_BIND_CPU=(\S*)$/gm)].map((m) => [Number(m[1]), { cpus: m[2], env: m[3] }]));

  it('runs each rank\'s main thread on a CPU of its own; without it, ranks keep every CPU', async () => {
    const cpus = allowed();
    const n = Math.min(2, cpus.length);
    const bound = await tcclrun(['-n', String(n), '--bind-to', 'core', '--timeout', '60', fixture('affinity.mjs')]);
    expect(bound.code, bound.stderr).toBe(0);
    const got = affinities(bound.stdout);
    expect([...got.keys()].sort()).toEqual(Array.from({ length: n }, (_, r) => r));
    for (const [rank, a] of got) expect(a, `rank ${rank}`).toEqual({ cpus: String(cpus[rank]), env: String(cpus[rank]) });
    const free = await tcclrun(['-n', String(n), '--timeout', '60', fixture('affinity.mjs')]);
    expect(free.code, free.stderr).toBe(0);
    for (const a of affinities(free.stdout).values()) expect(a.env).toBe('');
    expect(new Set([...affinities(free.stdout).values()].map((a) => a.cpus)).size).toBe(1);
  }, T * 2);

  it('refuses more ranks than CPUs before starting any, naming both counts (exit 2)', async () => {
    const cpus = allowed();
    const r = await tcclrun(['-n', String(cpus.length + 1), '--bind-to', 'core', fixture('affinity.mjs')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--bind-to core: ${cpus.length + 1} ranks but this launcher may use only ${cpus.length} CPU`);
    expect(r.stdout).not.toContain('AFFINITY');
  }, T);
});
