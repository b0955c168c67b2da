/**
 * Data-movement collectives: world sizes × counts × element sizes × every algorithm forced,
 * roots 0 and n-1 for rooted ones. Buffers are guarded views at a nonzero byteOffset; inputs
 * must come back unmodified.
 */
import { describe, expect, it } from 'vitest';
import type { DType, TypedArray } from '../../src/dtype.js';
import {
  allgather, allgatherv, alltoall, alltoallv, broadcast, gather, gatherv, scatter, scatterv,
} from '../../src/collectives/index.js';
import { allocArray } from '../../src/kernels/view.js';
import { runRanks, type Mode } from './harness.js';
import { expectSameBits, guarded, guardedCopy, movementData } from './data.js';

const SIZES = [1, 2, 3, 4, 5, 8];
const COUNTS = [0, 1, 7, 1000];
const MOVE_DTYPES: DType[] = ['int8', 'float16', 'float32', 'float64', 'int64'];
const TINY_SEGMENT = 24;

let seed = 1000;
const nextRun = (): { seed: number; mode: Mode } => ({ seed: ++seed, mode: seed % 3 === 0 ? 'eager' : 'rendezvous' });

/** Concatenate typed arrays of one class. */
function concat(dtype: DType, parts: TypedArray[]): TypedArray {
  const out = allocArray(dtype, parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    new Uint8Array(out.buffer, off * out.BYTES_PER_ELEMENT, p.byteLength).set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
    off += p.length;
  }
  return out;
}

const prefix = (c: readonly number[]) => c.map((_, k) => c.slice(0, k).reduce((a, b) => a + b, 0));
/** Uneven per-rank counts with some zeros. */
const vcounts = (size: number, count: number) => Array.from({ length: size }, (_, k) => (count === 0 ? 0 : (k * 5 + count) % (count + 2)));

describe('allgather / allgatherv', () => {
  for (const algorithm of ['ring', 'rd']) {
    for (const size of SIZES) {
      it(`${algorithm} n=${size}`, async () => {
        const segments = algorithm === 'ring' ? [undefined, TINY_SEGMENT] : [undefined];
        for (const dtype of MOVE_DTYPES) {
          for (const count of COUNTS) {
            for (const segmentBytes of segments) {
              // allgather
              const srcs = Array.from({ length: size }, (_, r) => guardedCopy(movementData(dtype, r, count)));
              const dsts = Array.from({ length: size }, () => guarded(dtype, count * size));
              await runRanks(size, (p2p, r) => allgather(p2p, srcs[r].view, dsts[r].view, { algorithm, segmentBytes }), nextRun());
              const want = concat(dtype, Array.from({ length: size }, (_, r) => movementData(dtype, r, count)));
              for (let r = 0; r < size; r++) {
                const what = `allgather ${algorithm} n=${size} ${dtype} count=${count} seg=${segmentBytes} rank ${r}`;
                expectSameBits(dsts[r].view, want, what);
                expectSameBits(srcs[r].view, movementData(dtype, r, count), `${what}: src modified`);
                dsts[r].checkGuards();
              }
              // allgatherv
              const counts = vcounts(size, count);
              const vs = counts.map((c, r) => guardedCopy(movementData(dtype, r, c, 1)));
              const vd = Array.from({ length: size }, () => guarded(dtype, counts.reduce((a, b) => a + b, 0)));
              await runRanks(size, (p2p, r) => allgatherv(p2p, vs[r].view, vd[r].view, counts, { algorithm, segmentBytes }), nextRun());
              const vwant = concat(dtype, counts.map((c, r) => movementData(dtype, r, c, 1)));
              for (let r = 0; r < size; r++) {
                expectSameBits(vd[r].view, vwant, `allgatherv ${algorithm} n=${size} ${dtype} counts=${counts} rank ${r}`);
                vd[r].checkGuards();
              }
            }
          }
        }
      });
    }
  }

  it('in place: src is already the rank\'s block of dst', async () => {
    const dsts = Array.from({ length: 4 }, () => new Float32Array(4 * 10));
    dsts.forEach((d, r) => d.set(movementData('float32', r, 10) as Float32Array, r * 10));
    await runRanks(4, (p2p, r) => allgather(p2p, dsts[r].subarray(r * 10, r * 10 + 10), dsts[r], { algorithm: 'ring' }));
    const want = concat('float32', [0, 1, 2, 3].map((r) => movementData('float32', r, 10)));
    for (const d of dsts) expectSameBits(d, want, 'in place');
  });
});

describe('alltoall / alltoallv', () => {
  for (const algorithm of ['pairwise', 'bruck']) {
    for (const size of SIZES) {
      it(`${algorithm} n=${size}`, async () => {
        for (const dtype of MOVE_DTYPES) {
          for (const count of COUNTS) {
            // Rank r's block for rank j: movementData(r, count, salt = j).
            const srcs = Array.from({ length: size }, (_, r) =>
              guardedCopy(concat(dtype, Array.from({ length: size }, (_, j) => movementData(dtype, r, count, j)))));
            const pristine = srcs.map((s) => s.view.slice());
            const dsts = Array.from({ length: size }, () => guarded(dtype, count * size));
            await runRanks(size, (p2p, r) => alltoall(p2p, srcs[r].view, dsts[r].view, { algorithm }), nextRun());
            for (let r = 0; r < size; r++) {
              const want = concat(dtype, Array.from({ length: size }, (_, i) => movementData(dtype, i, count, r)));
              const what = `alltoall ${algorithm} n=${size} ${dtype} count=${count} rank ${r}`;
              expectSameBits(dsts[r].view, want, what);
              expectSameBits(srcs[r].view, pristine[r], `${what}: src modified`);
              dsts[r].checkGuards();
            }
          }
        }
      });
    }
  }

  for (const size of SIZES) {
    it(`alltoallv pairwise n=${size} (prefix-sum and custom displacements)`, async () => {
      for (const dtype of MOVE_DTYPES) {
        for (const count of COUNTS) {
          // c(i, j): elements rank i sends to rank j.
          const c = (i: number, j: number) => (count === 0 ? 0 : (i * 7 + j * 3 + count) % (count + 3));
          for (const custom of [false, true]) {
            const sendCounts = Array.from({ length: size }, (_, i) => Array.from({ length: size }, (_, j) => c(i, j)));
            const recvCounts = Array.from({ length: size }, (_, j) => Array.from({ length: size }, (_, i) => c(i, j)));
            // Custom layout: blocks in reverse order with a 2-element gap between them.
            const layout = (counts: number[]) => {
              const d = new Array<number>(size);
              let off = 0;
              for (let k = size - 1; k >= 0; k--) { d[k] = off; off += counts[k] + 2; }
              return { displs: d, len: off };
            };
            const srcs = sendCounts.map((sc, i) => {
              const l = custom ? layout(sc) : { displs: prefix(sc), len: sc.reduce((a, b) => a + b, 0) };
              const buf = allocArray(dtype, l.len);
              sc.forEach((n, j) => new Uint8Array(buf.buffer, l.displs[j] * buf.BYTES_PER_ELEMENT, n * buf.BYTES_PER_ELEMENT)
                .set(new Uint8Array(movementData(dtype, i, n, j).buffer)));
              return { buf, displs: l.displs };
            });
            const dsts = recvCounts.map((rc) => {
              const l = custom ? layout(rc) : { displs: prefix(rc), len: rc.reduce((a, b) => a + b, 0) };
              return { g: guarded(dtype, l.len), displs: l.displs };
            });
            await runRanks(size, (p2p, r) => alltoallv(p2p, srcs[r].buf, sendCounts[r], dsts[r].g.view, recvCounts[r],
              custom ? { sdispls: srcs[r].displs, rdispls: dsts[r].displs } : {}), nextRun());
            for (let j = 0; j < size; j++) {
              for (let i = 0; i < size; i++) {
                const got = dsts[j].g.view.subarray(dsts[j].displs[i], dsts[j].displs[i] + c(i, j)) as TypedArray;
                expectSameBits(got, movementData(dtype, i, c(i, j), j), `alltoallv n=${size} ${dtype} count=${count} custom=${custom} ${i}->${j}`);
              }
              dsts[j].g.checkGuards();
            }
          }
        }
      }
    });
  }
});

describe('broadcast', () => {
  for (const algorithm of ['binomial', 'chain']) {
    for (const size of SIZES) {
      it(`${algorithm} n=${size}, roots 0 and n-1`, async () => {
        const segments = algorithm === 'chain' ? [undefined, TINY_SEGMENT] : [undefined];
        for (const root of new Set([0, size - 1])) {
          for (const dtype of MOVE_DTYPES) {
            for (const count of COUNTS) {
              for (const segmentBytes of segments) {
                const bufs = Array.from({ length: size }, (_, r) => (r === root ? guardedCopy(movementData(dtype, r, count)) : guarded(dtype, count)));
                await runRanks(size, (p2p, r) => broadcast(p2p, bufs[r].view, { root, algorithm, segmentBytes }), nextRun());
                for (let r = 0; r < size; r++) {
                  expectSameBits(bufs[r].view, movementData(dtype, root, count), `broadcast ${algorithm} n=${size} root=${root} ${dtype} count=${count} seg=${segmentBytes} rank ${r}`);
                  bufs[r].checkGuards();
                }
              }
            }
          }
        }
      });
    }
  }

  it('chain: a large buffer goes out in segments, each rank sends it once', async () => {
    const count = 300_000; // 1.2 MB of float32: 3 segments of 512 KiB
    const bufs = Array.from({ length: 4 }, (_, r) => (r === 1 ? movementData('float32', 1, count) : allocArray('float32', count)));
    const { stats } = await runRanks(4, (p2p, r) => broadcast(p2p, bufs[r], { root: 1, algorithm: 'chain' }));
    for (const b of bufs) expectSameBits(b, movementData('float32', 1, count), 'chain');
    expect(stats.messages).toEqual([0, 3, 3, 3]); // root 1 -> 2 -> 3 -> 0
  });
});

describe('gather / gatherv / scatter / scatterv', () => {
  for (const size of SIZES) {
    it(`linear n=${size}, roots 0 and n-1`, async () => {
      for (const root of new Set([0, size - 1])) {
        for (const dtype of MOVE_DTYPES) {
          for (const count of COUNTS) {
            const what = `n=${size} root=${root} ${dtype} count=${count}`;
            // gather
            const srcs = Array.from({ length: size }, (_, r) => movementData(dtype, r, count));
            const gdst = guarded(dtype, count * size);
            await runRanks(size, (p2p, r) => gather(p2p, srcs[r], r === root ? gdst.view : undefined, { root }), nextRun());
            expectSameBits(gdst.view, concat(dtype, srcs), `gather ${what}`);
            gdst.checkGuards();
            // gatherv
            const counts = vcounts(size, count);
            const vsrcs = counts.map((c, r) => movementData(dtype, r, c, 2));
            const vdst = guarded(dtype, counts.reduce((a, b) => a + b, 0));
            await runRanks(size, (p2p, r) => gatherv(p2p, vsrcs[r], r === root ? vdst.view : undefined, counts, { root }), nextRun());
            expectSameBits(vdst.view, concat(dtype, vsrcs), `gatherv ${what}`);
            vdst.checkGuards();
            // scatter
            const whole = concat(dtype, Array.from({ length: size }, (_, r) => movementData(dtype, r, count, 3)));
            const sdsts = Array.from({ length: size }, () => guarded(dtype, count));
            await runRanks(size, (p2p, r) => scatter(p2p, r === root ? whole : undefined, sdsts[r].view, { root }), nextRun());
            for (let r = 0; r < size; r++) {
              expectSameBits(sdsts[r].view, movementData(dtype, r, count, 3), `scatter ${what} rank ${r}`);
              sdsts[r].checkGuards();
            }
            // scatterv
            const vwhole = concat(dtype, counts.map((c, r) => movementData(dtype, r, c, 4)));
            const vd = counts.map((c) => guarded(dtype, c));
            await runRanks(size, (p2p, r) => scatterv(p2p, r === root ? vwhole : undefined, counts, vd[r].view, { root }), nextRun());
            for (let r = 0; r < size; r++) {
              expectSameBits(vd[r].view, movementData(dtype, r, counts[r], 4), `scatterv ${what} rank ${r}`);
              vd[r].checkGuards();
            }
          }
        }
      }
    });
  }
});
