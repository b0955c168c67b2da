/**
 * Grid: world sizes × counts × dtypes × ops × every algorithm forced, for allreduce,
 * reduceScatter (equal blocks and recvCounts) and reduce (roots 0 and n-1). Ring variants also
 * run with a tiny segment so multi-segment pipelining is exercised at small counts.
 */
import { describe, expect, it } from 'vitest';
import type { DType, TypedArray } from '../../src/dtype.js';
import { allreduce, reduce, reduceScatter } from '../../src/collectives/index.js';
import { allocArray } from '../../src/kernels/view.js';
import type { ReduceOpName } from '../../src/kernels/reduce.js';
import { runRanks, type Mode } from './harness.js';
import { DTYPES, expectSameBits, guarded, guardedCopy, opsFor, rankInput, reference } from './data.js';

const SIZES = [1, 2, 3, 4, 5, 8];
const COUNTS = [0, 1, 7, 1000];
const TINY_SEGMENT = 24; // bytes: 3 float64 / 24 int8 elements per segment

let seed = 0;
const nextRun = (): { seed: number; mode: Mode } => ({ seed: ++seed, mode: seed % 3 === 0 ? 'eager' : 'rendezvous' });

function refCache() {
  const m = new Map<string, TypedArray>();
  return (dtype: DType, op: ReduceOpName, size: number, count: number) => {
    const k = `${dtype}/${op}/${size}/${count}`;
    let v = m.get(k);
    if (!v) m.set(k, (v = reference(dtype, op, size, count)));
    return v;
  };
}
const ref = refCache();

describe('allreduce', () => {
  for (const algorithm of ['ring', 'rd', 'rabenseifner']) {
    for (const size of SIZES) {
      for (const dtype of DTYPES) {
        it(`${algorithm} n=${size} ${dtype}`, async () => {
          const segments = algorithm === 'ring' ? [undefined, TINY_SEGMENT] : [undefined];
          for (const count of COUNTS) {
            for (const op of opsFor(dtype)) {
              for (const segmentBytes of segments) {
                const bufs = Array.from({ length: size }, (_, r) => guardedCopy(rankInput(dtype, op, r, count)));
                await runRanks(size, (p2p, r) => allreduce(p2p, bufs[r].view, { dtype, op, algorithm, segmentBytes }), nextRun());
                const want = ref(dtype, op, size, count);
                for (let r = 0; r < size; r++) {
                  expectSameBits(bufs[r].view, want, `${algorithm} n=${size} ${dtype} ${op} count=${count} seg=${segmentBytes} rank ${r}`);
                  bufs[r].checkGuards();
                }
              }
            }
          }
        });
      }
    }
  }

  for (const algorithm of ['ring', 'rd', 'rabenseifner']) {
    it(`${algorithm}: user function ops (float64 and int64), n=5`, async () => {
      for (const count of [7, 1000]) {
        const f = Array.from({ length: 5 }, (_, r) => rankInput('float64', 'sum', r, count));
        await runRanks(5, (p2p, r) => allreduce(p2p, f[r], { dtype: 'float64', op: (a, b) => (a as number) + (b as number), algorithm }), nextRun());
        for (const b of f) expectSameBits(b, ref('float64', 'sum', 5, count), 'float64 fn');
        const g = Array.from({ length: 5 }, (_, r) => rankInput('int64', 'max', r, count));
        await runRanks(5, (p2p, r) => allreduce(p2p, g[r], { dtype: 'int64', op: (a, b) => ((a as bigint) > (b as bigint) ? a : b), algorithm }), nextRun());
        for (const b of g) expectSameBits(b, ref('int64', 'max', 5, count), 'int64 fn');
      }
    });
  }

  for (const algorithm of ['ring', 'rd', 'rabenseifner']) {
    for (const size of [3, 8]) {
      it(`${algorithm} n=${size} float32 sum, count 2^20+3`, async () => {
        const count = 2 ** 20 + 3;
        const bufs = Array.from({ length: size }, (_, r) => rankInput('float32', 'sum', r, count));
        const { stats } = await runRanks(size, (p2p, r) => allreduce(p2p, bufs[r], { dtype: 'float32', op: 'sum', algorithm }), nextRun());
        const want = ref('float32', 'sum', size, count);
        for (let r = 0; r < size; r++) expectSameBits(bufs[r], want, `rank ${r}`);
        if (algorithm === 'ring') {
          // 2(n-1) chunk transfers of ~count/n elements each, cut into segments.
          expect(stats.bytes[0]).toBeLessThanOrEqual(Math.ceil((2 * (size - 1) * (count * 4)) / size) + 8 * size);
          expect(stats.messages[0]).toBeGreaterThan(2 * (size - 1));
        }
      });
    }
  }
});

describe('reduceScatter', () => {
  const uneven = (size: number, count: number) =>
    Array.from({ length: size }, (_, k) => ((k * 7 + count) % 4 === 0 ? 0 : Math.floor(count / size) + k));
  for (const algorithm of ['ring', 'rh']) {
    for (const size of SIZES) {
      for (const dtype of DTYPES) {
        it(`${algorithm} n=${size} ${dtype}`, async () => {
          const segments = algorithm === 'ring' ? [undefined, TINY_SEGMENT] : [undefined];
          for (const count of COUNTS) {
            for (const counts of [new Array<number>(size).fill(count), uneven(size, count)]) {
              const total = counts.reduce((a, b) => a + b, 0);
              const displs = counts.map((_, k) => counts.slice(0, k).reduce((a, b) => a + b, 0));
              for (const op of opsFor(dtype)) {
                for (const segmentBytes of segments) {
                  const srcs = Array.from({ length: size }, (_, r) => guardedCopy(rankInput(dtype, op, r, total)));
                  const pristine = srcs.map((s) => s.view.slice());
                  const dsts = counts.map((c) => guarded(dtype, c));
                  await runRanks(size, (p2p, r) =>
                    reduceScatter(p2p, srcs[r].view, dsts[r].view, { dtype, op, algorithm, segmentBytes, recvCounts: counts }), nextRun());
                  const want = ref(dtype, op, size, total);
                  for (let r = 0; r < size; r++) {
                    const what = `${algorithm} n=${size} ${dtype} ${op} counts=${counts} seg=${segmentBytes} rank ${r}`;
                    expectSameBits(dsts[r].view, want.subarray(displs[r], displs[r] + counts[r]) as TypedArray, what);
                    expectSameBits(srcs[r].view, pristine[r], `${what}: src modified`);
                    dsts[r].checkGuards();
                    srcs[r].checkGuards();
                  }
                }
              }
            }
          }
        });
      }
    }
  }

  for (const algorithm of ['ring', 'rh']) {
    it(`${algorithm} n=5 float32 sum, total 2^20+3 (uneven blocks)`, async () => {
      const total = 2 ** 20 + 3;
      const counts = [209716, 209715, 209716, 209716, 209716];
      expect(counts.reduce((a, b) => a + b)).toBe(total);
      const srcs = Array.from({ length: 5 }, (_, r) => rankInput('float32', 'sum', r, total));
      const dsts = counts.map((c) => allocArray('float32', c));
      await runRanks(5, (p2p, r) => reduceScatter(p2p, srcs[r], dsts[r], { dtype: 'float32', op: 'sum', algorithm, recvCounts: counts }), nextRun());
      const want = ref('float32', 'sum', 5, total);
      let off = 0;
      for (let r = 0; r < 5; r++) {
        expectSameBits(dsts[r], want.subarray(off, off + counts[r]) as TypedArray, `rank ${r}`);
        off += counts[r];
      }
    });
  }
});

describe('reduce', () => {
  for (const size of SIZES) {
    for (const dtype of DTYPES) {
      it(`binomial n=${size} ${dtype}, roots 0 and n-1`, async () => {
        for (const root of new Set([0, size - 1])) {
          for (const count of COUNTS) {
            for (const op of opsFor(dtype)) {
              const srcs = Array.from({ length: size }, (_, r) => guardedCopy(rankInput(dtype, op, r, count)));
              const pristine = srcs.map((s) => s.view.slice());
              const out = guarded(dtype, count);
              await runRanks(size, (p2p, r) => reduce(p2p, srcs[r].view, r === root ? out.view : undefined, { root, dtype, op }), nextRun());
              const what = `n=${size} ${dtype} ${op} count=${count} root=${root}`;
              expectSameBits(out.view, ref(dtype, op, size, count), what);
              out.checkGuards();
              for (let r = 0; r < size; r++) expectSameBits(srcs[r].view, pristine[r], `${what}: rank ${r} src modified`);
            }
          }
        }
      });
    }
  }

  it('in place at the root (out === src)', async () => {
    const bufs = Array.from({ length: 5 }, (_, r) => rankInput('int32', 'sum', r, 100));
    await runRanks(5, (p2p, r) => reduce(p2p, bufs[r], r === 2 ? bufs[r] : undefined, { root: 2, dtype: 'int32', op: 'sum' }));
    expectSameBits(bufs[2], ref('int32', 'sum', 5, 100), 'root');
  });
});
