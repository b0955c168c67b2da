/**
 * All-to-all(v) through shared memory (src/collectives/alltoall-shared.ts) through the real
 * Communicator over in-process shm and thread worlds with 4096-byte slots, so most calls take
 * several chunks: per-(sender, receiver, index) unique values so a misplaced element shows,
 * zero and uneven blocks, displacements with gaps, and the number of steps each call takes
 * (alltoall: one per chunk; alltoallv: one to agree on the largest block, then one per chunk).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initLocalWorld, isTcclError, type Communicator } from '../../src/index.js';
import { openSharedWorld, type SharedWorld } from '../support/shared-world.js';

const SLOT = 4096;
/** Elements one chunk carries per destination (float64). */
const piece = (n: number) => Math.floor(SLOT / 8 / n);

/** What rank `from` sends rank `to` at element i (exact in float64, unique per triple). */
const val = (seed: number, from: number, to: number, i: number) => seed * 1e9 + from * 1e7 + to * 1e5 + i + 0.5;

function expectSame(got: Float64Array, want: Float64Array, what: string): void {
  let at = got.length === want.length ? -1 : 0;
  if (at < 0) for (let i = 0; i < got.length; i++) if (!Object.is(got[i], want[i])) { at = i; break; }
  expect(at, `${what}: first difference at ${at}: got ${got[at]}, want ${want[at]}`).toBe(-1);
}

const worlds: SharedWorld[] = [];
let seed = 1;

beforeAll(async () => {
  for (const n of [2, 3, 5]) worlds.push(await openSharedWorld('shm', n, SLOT));
  worlds.push(await openSharedWorld('threads', 4, SLOT));
});
afterAll(async () => {
  for (const w of worlds) await Promise.all(w.comms.map((c) => c.close()));
});

describe('alltoall over shared memory', () => {
  it('equal blocks of 0, 1, one chunk and several chunks: every element lands where it belongs', async () => {
    for (const w of worlds) {
      const n = w.comms.length;
      for (const count of [0, 1, piece(n), piece(n) + 1, 3 * piece(n) + 7]) {
        const s = seed++;
        w.resetSteps();
        await Promise.all(w.comms.map(async (c, r) => {
          const src = new Float64Array(n * count);
          for (let j = 0; j < n; j++) for (let i = 0; i < count; i++) src[j * count + i] = val(s, r, j, i);
          const dst = new Float64Array(n * count).fill(-1);
          expect(await c.alltoall(src, dst)).toBe(dst);
          const want = new Float64Array(n * count);
          for (let j = 0; j < n; j++) for (let i = 0; i < count; i++) want[j * count + i] = val(s, j, r, i);
          expectSame(dst, want, `${w.label} alltoall count ${count} rank ${r}`);
        }));
        expect(w.steps(), `${w.label} count ${count}: one step per chunk`).toEqual(Array(n).fill(Math.ceil(count / piece(n))));
      }
    }
  });

  it("'pairwise' forced on a shared world takes no shared steps; 'shm' where there is no shared memory is refused", async () => {
    const w = worlds[1];
    const n = w.comms.length;
    w.resetSteps();
    await Promise.all(w.comms.map(async (c, r) => {
      const src = Float64Array.from({ length: 2 * n }, (_, i) => val(9, r, i >> 1, i & 1));
      const dst = new Float64Array(2 * n);
      await c.alltoall(src, dst, { algorithm: 'pairwise' });
      expectSame(dst, Float64Array.from({ length: 2 * n }, (_, i) => val(9, i >> 1, r, i & 1)), `pairwise rank ${r}`);
    }));
    expect(w.steps()).toEqual(Array(n).fill(0));
    const mem = await initLocalWorld(2, { transport: 'memory' });
    try {
      const e = await mem[0].alltoall(new Float64Array(2), new Float64Array(2), { algorithm: 'shm' }).catch((x: unknown) => x);
      expect(isTcclError(e) && e.code === 'TCCL_ERR_INVALID_ARGUMENT' && /alltoall algorithm 'shm' needs shared memory/.test(e.message), String(e)).toBe(true);
    } finally {
      await Promise.all(mem.map((c) => c.close()));
    }
  });
});

describe('alltoallv over shared memory', () => {
  /** Elements rank `from` sends rank `to`: uneven, some zero, one pair several chunks long. */
  const pairCount = (n: number, from: number, to: number) => (from === 1 && to === n - 1 ? 2 * piece(n) + 3 : (from * 3 + to * 5) % 7 === 0 ? 0 : (from * 31 + to * 17) % 90);

  it('uneven and zero blocks, displacements with gaps: right data, one agreement step plus one per chunk of the largest block', async () => {
    for (const w of worlds) {
      const n = w.comms.length;
      const s = seed++;
      let largest = 0;
      for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) if (a !== b) largest = Math.max(largest, pairCount(n, a, b));
      w.resetSteps();
      await Promise.all(w.comms.map(async (c, r) => {
        const sendCounts = w.comms.map((_, j) => pairCount(n, r, j));
        const recvCounts = w.comms.map((_, j) => pairCount(n, j, r));
        // Blocks in reverse rank order with a 2-element gap after each.
        const layout = (counts: number[]) => {
          const displs = new Array<number>(n);
          let at = 0;
          for (let j = n - 1; j >= 0; j--) { displs[j] = at; at += counts[j] + 2; }
          return { displs, length: at };
        };
        const sl = layout(sendCounts);
        const rl = layout(recvCounts);
        const src = new Float64Array(sl.length).fill(-7);
        for (let j = 0; j < n; j++) for (let i = 0; i < sendCounts[j]; i++) src[sl.displs[j] + i] = val(s, r, j, i);
        const dst = new Float64Array(rl.length).fill(-1);
        await c.alltoallv(src, sendCounts, dst, recvCounts, { sdispls: sl.displs, rdispls: rl.displs });
        const want = new Float64Array(rl.length).fill(-1); // gaps untouched
        for (let j = 0; j < n; j++) for (let i = 0; i < recvCounts[j]; i++) want[rl.displs[j] + i] = val(s, j, r, i);
        expectSame(dst, want, `${w.label} alltoallv rank ${r}`);
      }));
      expect(w.steps(), `${w.label} alltoallv steps (largest block ${largest})`).toEqual(Array(n).fill(1 + Math.ceil(largest / piece(n))));
    }
  });

  it('every block empty: just the agreement step; a rank whose own blocks are all empty still takes every chunk', async () => {
    const w = worlds[2]; // shm n=5
    const n = w.comms.length;
    w.resetSteps();
    await Promise.all(w.comms.map((c) => c.alltoallv(new Float64Array(0), Array(n).fill(0), new Float64Array(0), Array(n).fill(0))));
    expect(w.steps()).toEqual(Array(n).fill(1));
    // Only rank 0 sends (to rank 2, several chunks); every rank still steps through them.
    const big = 2 * piece(n) + 1;
    w.resetSteps();
    await Promise.all(w.comms.map(async (c, r) => {
      const sendCounts = w.comms.map((_, j) => (r === 0 && j === 2 ? big : 0));
      const recvCounts = w.comms.map((_, j) => (r === 2 && j === 0 ? big : 0));
      const src = Float64Array.from({ length: r === 0 ? big : 0 }, (_, i) => val(3, 0, 2, i));
      const dst = new Float64Array(r === 2 ? big : 0);
      await c.alltoallv(src, sendCounts, dst, recvCounts);
      if (r === 2) expectSame(dst, src.length ? src : Float64Array.from({ length: big }, (_, i) => val(3, 0, 2, i)), 'rank 2 got rank 0\'s block');
    }));
    expect(w.steps()).toEqual(Array(n).fill(1 + Math.ceil(big / piece(n))));
  });

  it('a rank whose own send and receive counts differ is refused before the call, naming both', async () => {
    const c: Communicator = worlds[0].comms[0];
    const e = await c.alltoallv(new Float64Array(4), [1, 1], new Float64Array(4), [2, 1]).catch((x: unknown) => x);
    expect(isTcclError(e) && e.code === 'TCCL_ERR_INVALID_ARGUMENT', String(e)).toBe(true);
    expect(String(e)).toMatch(/sendCounts\[0\] is 1 but recvCounts\[0\] is 2.*rank 0, op alltoallv/);
  });
});
