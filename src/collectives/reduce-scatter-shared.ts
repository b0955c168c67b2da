/**
 * Reduce-scatter through shared memory (all ranks on one host; see SharedGroup in p2p.ts):
 * no messages; every input byte is copied into shared memory once and read once by the rank
 * that reduces it. Per chunk:
 *   1. every rank copies piece c (up to E = slotBytes / n elements) of every block j except its
 *      own (in place, its own too) into its own slot at j × E, then sync;
 *   2. rank r reduces piece c of block r over all ranks, in rank order (rank r's own piece
 *      straight from src, or in place from its slot), into its dst. The order is fixed, so
 *      results are deterministic.
 * Every rank works on every chunk, so the reduction is spread evenly even when blocks are
 * larger than the slot. (Only when the slot holds fewer than n elements does it fall back to
 * cutting the whole input into slot-sized chunks, where only the owners of the blocks in the
 * chunk reduce.)
 *
 * Reuse of the two halves (the rule in p2p.ts): every rank takes nextHalf() and makes one
 * sync() per chunk, whatever its own block's length. Reads of chunk k happen between sync k
 * and this rank's arrival at sync k+1; a rank writes half h again (chunk k+2) only after sync
 * k+1 completed.
 */
import type { DType, TypedArray } from '../dtype.js';
import { getReducer, type ReduceOp, type Reducer } from '../kernels/reduce.js';
import { isBlockAt, overlaps } from '../kernels/view.js';
import type { SharedGroup } from './p2p.js';
import { bytesAt, check, prefixSums, sharedChunks } from './util.js';

type TypedArrayCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => TypedArray;

/** dst (recvCounts[rank] elements) = op over all ranks of block `rank` of src (blocks laid out back to back). */
export function reduceScatterShared(
  g: SharedGroup, src: TypedArray, dst: TypedArray, recvCounts: readonly number[], dtype: DType, op: ReduceOp,
): Promise<void> | undefined {
  const n = g.size;
  const me = g.rank;
  const displs = prefixSums(recvCounts);
  check(recvCounts.length === n, 'reduceScatter: one count per rank');
  check(src.length === displs[n] && dst.length === recvCounts[me], 'reduceScatter: buffer lengths do not match the counts');
  // dst is written while later chunks of src are still to be read. In place (dst is exactly
  // this rank's block of src), this rank's own piece goes through its slot like the others, so
  // it is read there after dst overwrote it in src; any other overlap copies src.
  const inPlace = isBlockAt(dst, src, displs[me]);
  if (!inPlace && overlaps(src, dst)) src = src.slice() as TypedArray;
  if (n === 1) {
    dst.set(src as never);
    return undefined;
  }
  let maxCount = 0;
  for (const c of recvCounts) maxCount = Math.max(maxCount, c);
  if (maxCount === 0) return undefined;
  const reduce = getReducer(dtype, op);
  const es = src.BYTES_PER_ELEMENT;
  const Ctor = src.constructor as TypedArrayCtor;
  const view = (r: number, half: number, at: number, len: number) => {
    const slot = g.slot(r, half);
    return new Ctor(slot.buffer, slot.byteOffset + at * es, len);
  };
  const slotElems = Math.floor(g.slotBytes / es);
  const piece = Math.floor(slotElems / n);
  if (piece === 0) return reduceScatterLinear(g, src, dst, displs, reduce, view, slotElems);
  return sharedChunks(g, Math.ceil(maxCount / piece),
    (k, half) => {
      const off = k * piece;
      const slot = g.slot(me, half);
      for (let j = 0; j < n; j++) {
        const len = Math.min(piece, recvCounts[j] - off);
        if ((j !== me || inPlace) && len > 0) slot.set(bytesAt(src, displs[j] + off, len), j * piece * es);
      }
    },
    (k, half) => {
      const off = k * piece;
      const len = Math.min(piece, recvCounts[me] - off);
      if (len <= 0) return;
      const out = dst.subarray(off, off + len) as TypedArray;
      const part = (r: number) => (r === me && !inPlace ? src.subarray(displs[me] + off, displs[me] + off + len) as TypedArray : view(r, half, me * piece, len));
      out.set(part(0) as never);
      for (let r = 1; r < n; r++) reduce(out, part(r));
    });
}

/** The fallback for slots smaller than n elements: the whole input in slot-sized chunks. */
function reduceScatterLinear(
  g: SharedGroup, src: TypedArray, dst: TypedArray, displs: readonly number[],
  reduce: Reducer,
  view: (r: number, half: number, at: number, len: number) => TypedArray, slotElems: number,
): Promise<void> | undefined {
  const n = g.size;
  const me = g.rank;
  const total = src.length;
  const len = (k: number) => Math.min(slotElems, total - k * slotElems);
  return sharedChunks(g, Math.ceil(total / slotElems),
    (k, half) => { g.slot(me, half).set(bytesAt(src, k * slotElems, len(k))); },
    (k, half) => {
      const off = k * slotElems;
      const lo = Math.max(off, displs[me]);
      const hi = Math.min(off + len(k), displs[me + 1]);
      if (hi <= lo) return;
      const out = dst.subarray(lo - displs[me], hi - displs[me]) as TypedArray;
      out.set(view(0, half, lo - off, hi - lo) as never);
      for (let r = 1; r < n; r++) reduce(out, view(r, half, lo - off, hi - lo));
    });
}
