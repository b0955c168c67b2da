/**
 * The MPI_IN_PLACE layouts of allgather(v) and reduce-scatter, the ones ZeRO / FSDP use
 * (all_gather_into_tensor where the input is this rank's block of the output,
 * reduce_scatter_tensor where the output is this rank's block of the input): correct with
 * every algorithm, in several chunks (4096-byte slots for the shared-memory ones), and run
 * without a copy of src (src.slice is never called: a whole-buffer copy per call made them 3-4x
 * slower than out of place). Other overlaps still work (they copy src).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initLocalWorld, type Communicator } from '../../src/index.js';
import { openSharedWorld } from '../support/shared-world.js';

/** A value unique per (seed, rank, index) and exact in float64 sums of up to 8 terms. */
const value = (seed: number, r: number, i: number): number => ((Math.imul(seed * 7919 + r * 104729 + i, 2654435761) >>> 12) % 100_003) + r / 8;

function data(seed: number, r: number, count: number): Float64Array {
  const a = new Float64Array(count);
  for (let i = 0; i < count; i++) a[i] = value(seed, r, i);
  return a;
}

function expectSame(got: Float64Array, want: Float64Array, what: string): void {
  let at = got.length === want.length ? -1 : 0;
  if (at < 0) for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) { at = i; break; }
  expect(at, `${what}: first difference at ${at}: got ${got[at]}, want ${want[at]}`).toBe(-1);
}

const SLOT = 4096;
/** Elements per rank: 1 (tiny), 700 (several 4096-byte chunks of float64 at every n), 2 × 1000 + 1 (odd). */
const COUNTS = [1, 700, 2001];

interface World { label: string; comms: Communicator[]; algorithms: (string | undefined)[] }
const worlds: World[] = [];

beforeAll(async () => {
  for (const n of [2, 3, 5]) {
    const shm = await openSharedWorld('shm', n, SLOT);
    worlds.push({ label: `shm n=${n}`, comms: shm.comms, algorithms: ['shm'] });
    worlds.push({ label: `memory n=${n}`, comms: await initLocalWorld(n, { transport: 'memory' }), algorithms: ['ring', undefined] });
  }
  const threads = await openSharedWorld('threads', 4, SLOT);
  worlds.push({ label: 'threads n=4', comms: threads.comms, algorithms: ['shm'] });
});

afterAll(async () => {
  for (const w of worlds) await Promise.all(w.comms.map((c) => c.close()));
});

let seed = 1;

describe('allgather in place: src is this rank\'s block of dst', () => {
  it('every algorithm, several chunks, without copying src', async () => {
    for (const w of worlds) {
      const n = w.comms.length;
      for (const algorithm of [...w.algorithms, 'rd']) {
        if (algorithm === 'rd' && w.algorithms.includes('shm')) continue;
        for (const count of COUNTS) {
          const s = seed++;
          const want = new Float64Array(n * count);
          for (let r = 0; r < n; r++) want.set(data(s, r, count), r * count);
          await Promise.all(w.comms.map(async (c, r) => {
            const dst = new Float64Array(n * count).fill(-1);
            dst.set(data(s, r, count), r * count);
            const src = dst.subarray(r * count, (r + 1) * count);
            const slice = vi.spyOn(src, 'slice');
            expect(await c.allgather(src, dst, { algorithm })).toBe(dst);
            expect(slice, `${w.label} ${algorithm} count ${count}: src copied`).not.toHaveBeenCalled();
            expectSame(dst, want, `${w.label} allgather ${algorithm ?? 'auto'} count ${count} rank ${r}`);
          }));
        }
      }
    }
  });

  it('allgatherv in place with uneven and empty blocks', async () => {
    for (const w of worlds) {
      const n = w.comms.length;
      const counts = w.comms.map((_, r) => (r === 1 ? 0 : 300 * r + 7));
      const at = counts.map((_, r) => counts.slice(0, r).reduce((a, b) => a + b, 0));
      const total = counts.reduce((a, b) => a + b, 0);
      const s = seed++;
      const want = new Float64Array(total);
      for (let r = 0; r < n; r++) want.set(data(s, r, counts[r]), at[r]);
      await Promise.all(w.comms.map(async (c, r) => {
        const dst = new Float64Array(total).fill(-1);
        dst.set(data(s, r, counts[r]), at[r]);
        const src = dst.subarray(at[r], at[r] + counts[r]);
        const slice = vi.spyOn(src, 'slice');
        await c.allgatherv(src, dst, counts, { algorithm: w.algorithms[0] });
        expect(slice).not.toHaveBeenCalled();
        expectSame(dst, want, `${w.label} allgatherv rank ${r}`);
      }));
    }
  });
});

describe('reduce-scatter in place: dst is this rank\'s block of src', () => {
  it('every algorithm, several chunks, without copying src', async () => {
    for (const w of worlds) {
      const n = w.comms.length;
      for (const algorithm of [...w.algorithms, 'rh']) {
        if (algorithm === 'rh' && w.algorithms.includes('shm')) continue;
        for (const count of COUNTS) {
          const s = seed++;
          const inputs = w.comms.map((_, r) => data(s, r, n * count));
          const want = new Float64Array(n * count);
          for (const x of inputs) for (let i = 0; i < want.length; i++) want[i] += x[i];
          await Promise.all(w.comms.map(async (c, r) => {
            const src = inputs[r].slice();
            const dst = src.subarray(r * count, (r + 1) * count);
            const slice = vi.spyOn(src, 'slice');
            expect(await c.reduceScatter(src, dst, { algorithm })).toBe(dst);
            expect(slice, `${w.label} ${algorithm} count ${count}: src copied`).not.toHaveBeenCalled();
            expectSame(dst, want.subarray(r * count, (r + 1) * count), `${w.label} reduceScatter ${algorithm ?? 'auto'} count ${count} rank ${r}`);
            // The other blocks of src are this rank's input, untouched.
            for (let b = 0; b < n; b++) {
              if (b !== r) expectSame(src.subarray(b * count, (b + 1) * count), inputs[r].subarray(b * count, (b + 1) * count), `${w.label} ${algorithm} src block ${b} rank ${r}`);
            }
          }));
        }
      }
    }
  });

  it('a dst that overlaps src elsewhere than its own block still gets the right answer (src is copied)', async () => {
    const w = worlds.find((x) => x.label === 'shm n=3')!;
    const n = 3;
    const count = 500;
    const s = seed++;
    const inputs = w.comms.map((_, r) => data(s, r, n * count));
    const want = new Float64Array(n * count);
    for (const x of inputs) for (let i = 0; i < want.length; i++) want[i] += x[i];
    await Promise.all(w.comms.map(async (c, r) => {
      const src = inputs[r].slice();
      // The block after this rank's own (wrapping), shifted by 3 elements: not the in-place layout.
      const at = (((r + 1) % n) * count + 3) % (n * count - count);
      const dst = src.subarray(at, at + count);
      await c.reduceScatter(src, dst, {});
      expectSame(dst, want.subarray(r * count, (r + 1) * count), `overlapping dst rank ${r}`);
    }));
  });
});
