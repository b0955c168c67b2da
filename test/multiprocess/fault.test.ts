// Fault injection through real processes launched by tcclrun over TCP: each case breaks a
// running job in one way and checks that every rank fails with the right code (never hangs),
// that the error names the culprit, and that the launcher stops the job and says who failed first.
// Detection latencies and the launcher's stop time are printed as "MEASURE" lines.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildIfStale, killStragglers, start, type Run } from '../launcher/helpers.js';

const FIXTURE = 'test/multiprocess/fixtures/fault-worker.ts';
const HEARTBEAT_MS = 2000;
/** tcp by default; FAULT_TRANSPORT=auto|shm|webrtc runs the same faults over another transport. */
const TRANSPORT = process.env.FAULT_TRANSPORT ?? 'tcp';

interface Detected { rank: number; at: number; code: string; peer: string; msg: string }

function detections(stdout: string): Detected[] {
  const re = /DETECTED rank=(\d+) at=(\d+) code=(\w+) peer=(\S+) msg=(.*)$/;
  return stdout.split('\n').map((l) => re.exec(l)).filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ rank: Number(m[1]), at: Number(m[2]), code: m[3], peer: m[4], msg: JSON.parse(m[5]) as string }));
}

const stopSeconds = (stderr: string) => Number(/every rank exited ([\d.]+) s after/.exec(stderr)?.[1] ?? NaN);
const pidsOf = (stdout: string) => new Map([...stdout.matchAll(/\] PID (\d+) (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]));

function measure(name: string, injectedAt: number, found: Detected[], stderr: string): void {
  const lat = found.map((d) => `rank ${d.rank} ${d.at - injectedAt} ms (${d.code})`).join(', ');
  console.log(`MEASURE ${name}: detection ${lat}; launcher stop ${stopSeconds(stderr)} s`);
}

function launch(n: number, mode: string, env: NodeJS.ProcessEnv = {}, transport = TRANSPORT): Run {
  // No --timeout: it would override TCCL_TIMEOUT_MS; afterEach stops any job left over.
  return start(['-n', String(n), '--transport', transport, FIXTURE, mode], {
    env: { TCCL_HEARTBEAT_MS: String(HEARTBEAT_MS), ...env },
  });
}

const frozen: number[] = [];
beforeAll(() => buildIfStale());
afterEach(async () => {
  for (const pid of frozen.splice(0)) try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  await killStragglers();
});

describe(`fault injection over ${TRANSPORT} (tcclrun)`, () => {
  it('kill -9 of a rank mid-allreduce: the others fail with PEER_LOST naming it, the launcher blames it and stops the job', async () => {
    const run = launch(4, 'loop');
    await run.waitFor(/LOOPING \d/, 4);
    const victim = pidsOf(run.stdout).get(2)!;
    const injectedAt = Date.now();
    process.kill(victim, 'SIGKILL');
    const status = await run.done;
    expect(status.code).toBe(137);
    expect(run.stderr).toContain('tcclrun: rank 2 failed first (signal SIGKILL)');
    const found = detections(run.stdout);
    expect(found.length).toBeGreaterThan(0);
    for (const d of found) {
      expect(d.code).toBe('TCCL_ERR_PEER_LOST');
      expect(d.msg).toMatch(/op allreduce, seq \d+/);
    }
    // The victim's ring neighbours hear it first, from the kernel's reset.
    expect(found.filter((d) => d.peer === '2').map((d) => d.rank).sort()).toEqual(expect.arrayContaining([1, 3].filter((r) => found.some((d) => d.rank === r && d.peer === '2'))));
    expect(stopSeconds(run.stderr)).toBeLessThan(5);
    measure('kill -9', injectedAt, found, run.stderr);
  });

  // shm peers never go silent on a socket: they are watched through /proc (transports/shm).
  for (const transport of TRANSPORT === 'shm' ? ['shm'] : [TRANSPORT, 'shm']) it(`SIGSTOP of a rank over ${transport}: its peers fail with PEER_LOST within 2x the heartbeat (${HEARTBEAT_MS} ms); the launcher names the stopped rank`, async () => {
    const run = launch(3, 'loop', {}, transport);
    await run.waitFor(/LOOPING \d/, 3);
    const victim = pidsOf(run.stdout).get(2)!;
    frozen.push(victim);
    const injectedAt = Date.now();
    process.kill(victim, 'SIGSTOP');
    const status = await run.done;
    expect(status.code).not.toBe(0);
    const found = detections(run.stdout);
    const blamed = found.filter((d) => d.peer === '2');
    expect(blamed.length).toBeGreaterThan(0);
    for (const d of blamed) {
      expect(d.code).toBe('TCCL_ERR_PEER_LOST');
      expect(d.msg).toContain('no data or heartbeat from rank 2');
      expect(d.at - injectedAt).toBeLessThan(2 * HEARTBEAT_MS);
    }
    expect(run.stderr).toMatch(/tcclrun: rank [01] failed first \(exit code 1\)/);
    expect(run.stderr).toMatch(/last error: .*TCCL_ERR_PEER_LOST.*rank 2/);
    expect(run.stderr).toContain('rank 2 was stopped (SIGSTOP)');
    expect(stopSeconds(run.stderr)).toBeLessThan(5);
    measure('SIGSTOP', injectedAt, found, run.stderr);
  });

  it(`a rank whose main thread is busy for 3 heartbeat intervals is not declared lost (its liveness worker answers probes)`, async () => {
    const run = launch(3, 'busy');
    const status = await run.done;
    expect(detections(run.stdout)).toEqual([]);
    expect(status.code, run.stderr).toBe(0);
    expect(run.stdout.match(/BUSY-DONE \d/g)?.length).toBe(3);
  });

  it('a socket closed under a running collective fails the collective on both ends with PEER_LOST', async () => {
    const run = launch(3, 'close-socket');
    const status = await run.done;
    expect(status.code).toBe(1);
    const injectedAt = Number(/INJECT 1 at=(\d+)/.exec(run.stdout)![1]);
    const found = detections(run.stdout);
    // Rank 1 and the rank waiting on it (its ring successor) fail at once; rank 0 waits on
    // rank 2, so it fails only when rank 2 does (or is stopped by the launcher first).
    expect(found.map((d) => d.rank)).toEqual(expect.arrayContaining([1, 2]));
    for (const d of found) {
      expect(d.code).toBe('TCCL_ERR_PEER_LOST');
      expect(d.msg).toMatch(/allreduce/);
    }
    expect(found.find((d) => d.rank === 2)!.peer).toBe('1');
    measure('socket closed', injectedAt, found, run.stderr);
  });

  it('comm.abort() on one rank fails pending operations on every rank with ABORTED naming it', async () => {
    const run = launch(4, 'abort');
    const status = await run.done;
    expect(status.code).toBe(1);
    const injectedAt = Number(/INJECT 1 at=(\d+)/.exec(run.stdout)![1]);
    expect(run.stdout).toContain('ABORTED-SELF TCCL_ERR_ABORTED');
    const found = detections(run.stdout).filter((d) => d.rank !== 1);
    expect(found.map((d) => d.rank).sort()).toEqual([0, 2, 3]);
    for (const d of found) {
      expect(d.code).toBe('TCCL_ERR_ABORTED');
      expect(d.msg).toContain('rank 1 aborted: injected by the fault test');
    }
    expect(run.stderr).toMatch(/last error: .*TCCL_ERR_ABORTED: rank 1 aborted/);
    measure('abort', injectedAt, found, run.stderr);
  });

  it('TCCL_DEBUG=DETAIL: a rank calling a different collective fails every rank with DESYNC naming what each called', async () => {
    const run = launch(3, 'desync-op', { TCCL_DEBUG: 'DETAIL' });
    await run.done;
    const found = detections(run.stdout);
    expect(found.map((d) => d.rank).sort()).toEqual([0, 1, 2]);
    for (const d of found) {
      expect(d.code).toBe('TCCL_ERR_DESYNC');
      expect(d.msg).toContain('ranks 0,2 called allreduce(count=262144, dtype=float32, op=sum)');
      expect(d.msg).toContain('rank 1 called broadcast(count=262144, dtype=float32, root=0)');
      expect(d.msg).toMatch(/seq 4/);
    }
    expect(found.find((d) => d.rank === 0)!.peer).toBe('[1]');
    expect(found.find((d) => d.rank === 1)!.peer).toBe('[0,2]');
    measure('desync (other collective)', Number(/INJECT 1 at=(\d+)/.exec(run.stdout)![1]), found, run.stderr);
  });

  it('TCCL_DEBUG=DETAIL: the same collective with another count fails with DESYNC naming both counts', async () => {
    const run = launch(3, 'desync-count', { TCCL_DEBUG: 'DETAIL' });
    await run.done;
    const found = detections(run.stdout);
    expect(found.map((d) => d.rank).sort()).toEqual([0, 1, 2]);
    for (const d of found) {
      expect(d.code).toBe('TCCL_ERR_DESYNC');
      expect(d.msg).toContain('rank 1 called allreduce(count=131072, dtype=float32, op=sum)');
      expect(d.msg).toContain('ranks 0,2 called allreduce(count=262144');
    }
    measure('desync (count)', Number(/INJECT 1 at=(\d+)/.exec(run.stdout)![1]), found, run.stderr);
  });

  it('without DETAIL, another count still fails with a coded error instead of hanging', async () => {
    const run = launch(3, 'desync-count', { TCCL_TIMEOUT_MS: '4000' });
    await run.done;
    const found = detections(run.stdout);
    expect(found.length).toBeGreaterThan(0);
    for (const d of found) expect(['TCCL_ERR_DESYNC', 'TCCL_ERR_TIMEOUT', 'TCCL_ERR_PEER_LOST']).toContain(d.code);
    expect(found.some((d) => d.code === 'TCCL_ERR_DESYNC')).toBe(true);
  });

  it('DETAIL check with a rank that never calls: the others time out naming it, and print their flight recorder', async () => {
    const run = launch(3, 'missing', { TCCL_DEBUG: 'DETAIL', TCCL_TIMEOUT_MS: '4000' });
    await run.done;
    const found = detections(run.stdout);
    expect(found.map((d) => d.rank).sort()).toEqual([0, 1]);
    // The first to time out exits; the other may see that loss a moment before its own deadline.
    const timedOut = found.filter((d) => d.code === 'TCCL_ERR_TIMEOUT');
    expect(timedOut.length).toBeGreaterThan(0);
    for (const d of found) expect(['TCCL_ERR_TIMEOUT', 'TCCL_ERR_PEER_LOST']).toContain(d.code);
    for (const d of timedOut) {
      expect(d.msg).toContain('did not complete within 4000 ms during the TCCL_DEBUG=DETAIL call check');
      expect(d.msg).toContain('not heard from rank 2');
      expect(d.msg).toMatch(/op allreduce, seq 4/);
    }
    expect(run.stderr).toMatch(/flight recorder, last \d+ operations of rank 0/);
    expect(run.stderr).toMatch(/ctx 0 seq 4 allreduce allreduce\(count=262144, dtype=float32, op=sum\) algo=\w+ failed/);
    expect(run.stderr).toMatch(/ctx 0 seq 3 allreduce .* done/);
  });

  it('a missing rank without DETAIL: the collective times out with bytes done and the flight recorder', async () => {
    const run = launch(3, 'missing', { TCCL_TIMEOUT_MS: '4000' });
    await run.done;
    const found = detections(run.stdout);
    expect(found.length).toBeGreaterThan(0);
    // The first rank to time out exits, so a later one may see that loss before its own deadline.
    const timedOut = found.filter((d) => d.code === 'TCCL_ERR_TIMEOUT');
    expect(timedOut.length).toBeGreaterThan(0);
    for (const d of found) expect(['TCCL_ERR_TIMEOUT', 'TCCL_ERR_PEER_LOST']).toContain(d.code);
    for (const d of timedOut) expect(d.msg).toMatch(/allreduce did not complete within 4000 ms: not heard from rank \d; \d+ bytes received and \d+ bytes sent so far/);
    expect(run.stderr).toContain('flight recorder');
  });
});
