// The shared-memory allreduce across real ranks through the real launcher (process ranks over
// /dev/shm with blocking futex waits, and thread ranks over a SharedArrayBuffer): a rank that
// never comes (timeout naming it), an AbortSignal while waiting on it, and many small slots
// (TCCL_SHM_SLOT_BYTES=4096) with exact results. Fixture: fixtures/shm-collectives.ts.
// Needs `npm run build` (the fixture imports 'tccl').
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = 'test/multiprocess/fixtures/shm-collectives.ts';

interface Run { code: number | null; stdout: string; stderr: string }
const run = (n: number, where: 'shm' | 'threads', mode: string) =>
  new Promise<Run>((resolve) => {
    const args = ['bin/tcclrun.js', '--timeout', '60', '-n', String(n), ...(where === 'threads' ? ['--threads'] : ['--transport', 'shm']), FIXTURE, mode];
    execFile(process.execPath, args, { cwd: root, maxBuffer: 16 << 20, env: { ...process.env, TCCL_SHM_SLOT_BYTES: '4096' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });

/** `KEY rank=R a=b c=d ...` lines by rank (msg=... is JSON and last). */
function lines(r: Run, key: string): Map<number, Record<string, string>> {
  const out = new Map<number, Record<string, string>>();
  for (const m of r.stdout.matchAll(new RegExp(`^(?:\\[\\d+\\] )?${key} rank=(\\d+)(.*)$`, 'gm'))) {
    const fields: Record<string, string> = {};
    const rest = m[2];
    const msgAt = rest.indexOf(' msg=');
    for (const kv of (msgAt >= 0 ? rest.slice(0, msgAt) : rest).trim().split(/\s+/).filter(Boolean)) {
      const eq = kv.indexOf('=');
      fields[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    if (msgAt >= 0) fields.msg = JSON.parse(rest.slice(msgAt + 5)) as string;
    out.set(Number(m[1]), fields);
  }
  return out;
}

const ranks = (n: number) => Array.from({ length: n }, (_, r) => r);

function expectTeams(r: Run, n: number): void {
  const teams = lines(r, 'TEAM');
  expect([...teams.keys()].sort(), r.stdout).toEqual(ranks(n));
  // The env reaches every rank (and the thread world the launcher allocates); each rank has a thread of its own, so waits block.
  for (const t of teams.values()) expect(t).toEqual({ slot: '4096', blocking: 'true' });
}

/** The ranks that called: `code` with the first message; and the next shared call refused. */
function expectFailed(r: Run, n: number, code: string): Map<number, Record<string, string>> {
  expect(r.code, r.stderr).toBe(0);
  expectTeams(r, n);
  const late = n - 1;
  expect(r.stdout).toContain(`LATE rank=${late} released`);
  const results = lines(r, 'RESULT');
  expect([...results.keys()].sort(), r.stdout).toEqual(ranks(n - 1));
  for (const [rank, f] of results) {
    expect(f.code, f.msg).toBe(code);
    expect(f.op).toBe('allreduce');
    expect(f.seq).toBe('2'); // after the warm-up allreduce (seq 1)
    expect(f.msg).toContain(`(rank ${rank}, `);
    expect(f.msg).toContain('op allreduce, seq 2)');
  }
  const next = lines(r, 'NEXT');
  expect([...next.keys()].sort()).toEqual(ranks(n - 1));
  for (const [rank, f] of next) {
    expect(f.code, f.msg).toBe('TCCL_ERR_INTERNAL');
    expect(f.msg).toContain(`allreduce cannot use shared memory: an earlier shared-memory collective failed on this rank (${code})`);
    expect(f.msg).toContain(`(rank ${rank}, op allreduce, seq 3)`);
  }
  return results;
}

describe('shared-memory allreduce waiting on a rank that never comes', () => {
  for (const [n, where] of [[3, 'shm'], [2, 'shm'], [4, 'threads']] as const) {
    it(`-n ${n} ${where}: TCCL_ERR_TIMEOUT after 1500 ms naming the late rank, op and seq`, async () => {
      const r = await run(n, where, 'timeout');
      const late = n - 1;
      for (const f of expectFailed(r, n, 'TCCL_ERR_TIMEOUT').values()) {
        // The late rank is always named; under a loaded full suite a rank that called on time
        // but was not scheduled for the whole 1.5 s is named too (seen once: "ranks 0,2").
        const named = /allreduce did not complete within 1500 ms: not heard from ranks? ([\d,]+);/.exec(f.msg);
        expect(named, f.msg).not.toBeNull();
        const ranksNamed = named![1].split(',').map(Number);
        expect(ranksNamed).toContain(late);
        expect(f.peer).toBe(ranksNamed.length === 1 ? `[${late}]` : `[${ranksNamed.join(',')}]`);
        expect(Number(f.ms)).toBeGreaterThanOrEqual(1490);
        expect(Number(f.ms)).toBeLessThan(15_000); // the deadline is noticed although waits block
      }
      // The flight recorder is dumped on timeout.
      expect(r.stderr).toMatch(/flight recorder, last \d+ operations of rank 0/);
    }, 30_000);
  }

  for (const [n, where] of [[3, 'shm'], [4, 'threads']] as const) {
    it(`-n ${n} ${where}: an AbortSignal fired while waiting ends the call with TCCL_ERR_ABORTED`, async () => {
      const r = await run(n, where, 'abort');
      for (const f of expectFailed(r, n, 'TCCL_ERR_ABORTED').values()) {
        expect(f.msg).toContain('allreduce cancelled by its AbortSignal');
        expect(Number(f.ms)).toBeLessThan(10_000); // seen while blocked in the wait, well before the 30 s timeout
      }
      expect(r.stderr).toBe('');
    }, 30_000);
  }
});

describe('shared-memory allreduce through 4096-byte slots (TCCL_SHM_SLOT_BYTES=4096)', () => {
  for (const where of ['shm', 'threads'] as const) {
    for (const n of [2, 3, 4]) {
      it(`-n ${n} ${where}: counts 0..100003, int32 and float32, exact on every rank`, async () => {
        const r = await run(n, where, 'chunks');
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expectTeams(r, n);
        expect(r.stdout).not.toContain('WRONG');
        const verdicts = lines(r, 'CHUNKS');
        expect([...verdicts.keys()].sort(), r.stdout).toEqual(ranks(n));
        // 5 counts × 4 (dtype, op) cases, one by one and then all in flight.
        for (const v of verdicts.values()) expect(v).toEqual({ ok: '40', wrong: '0' });
      }, 30_000);
    }
  }
});
