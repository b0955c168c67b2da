// The webrtc transport across real processes through the real launcher: the collective grid
// at several world sizes, the allreduce example, processes that exit by themselves after
// close (no native handle left), a busy rank that is not declared dead, and kill -9 of one rank.
import { describe, expect, it } from 'vitest';
import { tcclrun } from '../launcher/helpers.js';
import { expectGrid } from './grid-check.js';

const GRID = 'test/multiprocess/fixtures/collectives-grid.ts';
const EXIT = 'test/multiprocess/fixtures/webrtc-exit.ts';
const KILL = 'test/multiprocess/fixtures/webrtc-kill.ts';
const HEARTBEAT_MS = 1000;

const webrtc = (n: number, script: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) =>
  tcclrun(['-n', String(n), '--transport', 'webrtc', '--timeout', '240', script, ...args], { env });

describe('collective grid over webrtc, process ranks (tcclrun --transport webrtc)', () => {
  for (const n of [2, 3, 4, 5]) {
    it(`-n ${n}: every check right`, async () => {
      expectGrid(await webrtc(n, GRID), n);
    }, 250_000);
  }
});

describe('webrtc jobs', () => {
  it('examples/allreduce.ts prints a verified result on 4 ranks', async () => {
    const r = await webrtc(4, 'examples/allreduce.ts', ['100003']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[0\] allreduce of 100003 float64 over 4 ranks: verified, 0 wrong/);
  }, 120_000);

  it('ranks that close exit on their own: no peer connection or libdatachannel thread keeps them alive', async () => {
    // --timeout would kill a rank that lingers and make tcclrun exit non-zero.
    const r = await tcclrun(['-n', '3', '--transport', 'webrtc', '--timeout', '60', EXIT]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect([...r.stdout.matchAll(/CLOSED rank=(\d) links=2/g)].map((m) => m[1]).sort()).toEqual(['0', '1', '2']);
  }, 120_000);

  it(`a rank whose main thread is busy for 3 heartbeat intervals is not declared lost (its liveness worker answers probes)`, async () => {
    const r = await webrtc(3, 'test/multiprocess/fixtures/fault-worker.ts', ['busy'], { TCCL_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    expect(r.stdout).not.toContain('DETECTED');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.match(/BUSY-DONE \d/g)?.length).toBe(3);
  }, 120_000);

  it(`kill -9 of one rank while the others wait on it: the ranks waiting on it fail with TCCL_ERR_PEER_LOST naming it (heartbeat ${HEARTBEAT_MS} ms)`, async () => {
    const r = await webrtc(4, KILL, [], { TCCL_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    expect(r.code, r.stdout + r.stderr).toBe(128 + 9);
    expect(r.stderr).toMatch(/rank 3 failed first \(signal SIGKILL\)/);
    const survivors = [...r.stdout.matchAll(/SURVIVOR rank=(\d) code=(\w+) peer=(\S+) ms=(\d+) msg=(.*)$/gm)];
    // The ranks whose allreduce receives from rank 3 report its loss; a rank waiting on a
    // survivor instead fails once that survivor exits, or is stopped by the launcher first.
    expect(survivors.length, r.stdout).toBeGreaterThan(0);
    for (const m of survivors) {
      expect(m[2]).toBe('TCCL_ERR_PEER_LOST');
      expect(JSON.parse(m[5]) as string).toMatch(/allreduce/);
      console.log(`MEASURE webrtc kill -9: rank ${m[1]} failed after ${m[4]} ms (peer ${m[3]})`);
    }
    expect(survivors.some((m) => m[3] === '3' && /no data or heartbeat from rank 3/.test(JSON.parse(m[5]) as string)), r.stdout).toBe(true);
  }, 120_000);
});
