// Fuzz a live job: while 3 ranks run verified collectives over tcp, an outsider (no secret)
// sends FUZZ_FRAMES random and mutated frames at rank 1's listener and as many at the store
// (default 5,000 each; `npm run test:fuzz` sends 100,000 each). Nothing may crash, every
// intruding connection is closed, the job's results stay exact and the store keeps serving it.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildIfStale, killStragglers, tcclrun } from '../launcher/helpers.js';

const FRAMES = Number(process.env.FUZZ_FRAMES ?? 5_000);

beforeAll(() => buildIfStale());
afterEach(() => killStragglers());

describe('fuzzing a live job', () => {
  it(`${FRAMES} frames at a rank and ${FRAMES} at the store while collectives run: exact results, no crash`, async () => {
    const t0 = performance.now();
    const r = await tcclrun(['-n', '3', '--transport', 'tcp', 'test/multiprocess/fixtures/fuzz-job.ts', String(FRAMES), String(FRAMES)]);
    const seconds = (performance.now() - t0) / 1000;
    expect(r.stderr).not.toMatch(/TCCL_ERR_INTERNAL|Uncaught|failed first/);
    expect(r.code).toBe(0);
    const stats = JSON.parse(/FUZZ_STATS (\{.*\})/.exec(r.stdout)![1]) as {
      rank: { sent: number; connections: number; closedByPeer: number };
      store: { sent: number; connections: number; closedByPeer: number };
      firstFrameKinds: Record<string, number>;
      seconds: number;
    };
    expect(stats.rank.sent).toBeGreaterThanOrEqual(FRAMES);
    expect(stats.store.sent).toBeGreaterThanOrEqual(FRAMES);
    expect(Object.keys(stats.firstFrameKinds).length).toBeGreaterThanOrEqual(12);
    expect(r.stdout).not.toMatch(/driver exit/);
    const results = [...r.stdout.matchAll(/RESULT rank=(\d) iterations=(\d+) wrong=(\d+) storeOps=(\d+)/g)];
    expect(results).toHaveLength(3);
    for (const m of results) {
      expect(Number(m[2])).toBeGreaterThan(0);
      expect(Number(m[3])).toBe(0);
    }
    // Every rank listens on loopback only (single-host job).
    expect(r.stdout.match(/LISTEN \d 127\.0\.0\.1/g)).toHaveLength(3);
    // Refusals are logged (rate-limited) by the attacked rank and by the store.
    expect(r.stderr).toMatch(/\[1\] tccl WARN rank 1: refused connection from 127\.0\.0\.1:\d+: (malformed frame|authentication)/);
    expect(r.stderr).toMatch(/tccl WARN: store refused a client/);
    console.log(`MEASURE fuzz: ${stats.rank.sent} frames in ${stats.rank.connections} connections at rank 1, ${stats.store.sent} frames in ${stats.store.connections} connections at the store, in ${stats.seconds.toFixed(1)} s of fuzzing; job ran ${results[0][2]} verified iterations; whole test ${seconds.toFixed(1)} s`);
  }, 600_000);
});
