/**
 * Allreduce through shared memory (all ranks on one host; see SharedGroup in p2p.ts): no
 * messages, each byte copied in once and out once. Per chunk of up to slotBytes:
 *   1. every rank copies its chunk into its own slot, then sync;
 *   2. small chunks: every rank reduces all n slots in rank order straight into its output
 *      (one sync per chunk, same bits everywhere since the order is the same);
 *      large chunks: rank r reduces block r of every slot into block r of its own slot (only
 *      it reads that block), sync, then every rank copies block j from rank j's slot.
 * The same reduce-scatter + allgather shape as Rabenseifner, with the peers' memory read
 * directly instead of exchanged (DeepSpeed's CPU shm allreduce and NCCL's intra-node buffers
 * work this way too).
 */
import type { DType, TypedArray } from '../dtype.js';
import { getReducer, type Reducer, type ReduceOp } from '../kernels/reduce.js';
import type { SharedGroup } from './p2p.js';
import { bytesAt } from './util.js';
import { overlaps } from '../kernels/view.js';

/** Chunks up to this size are reduced whole by every rank (saves a sync and a copy). */
export const SHARED_REDUCE_ALL_MAX_BYTES = 64 * 1024;

type TypedArrayCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => TypedArray;

/**
 * Element range [lo, hi) of block `r` when `len` elements are split over `n` ranks, in whole
 * cache lines so two ranks never write one line.
 */
export function sharedBlock(len: number, n: number, r: number, elementBytes: number): [number, number] {
  const unit = Math.max(1, 64 / elementBytes);
  const units = Math.ceil(len / unit);
  const lo = Math.min(len, Math.floor((r * units) / n) * unit);
  const hi = Math.min(len, Math.floor(((r + 1) * units) / n) * unit);
  return [lo, hi];
}

/**
 * dst = op over every rank's src (dst may be src, or overlap it). Returns
 * undefined when it finished without waiting (every peer was already there: the usual case
 * for small messages), else a promise.
 */
export function allreduceShared(g: SharedGroup, src: TypedArray, dst: TypedArray, dtype: DType, op: ReduceOp): Promise<void> | undefined {
  const count = src.length;
  const es = src.BYTES_PER_ELEMENT;
  if (g.size === 1 || count === 0) {
    if (dst !== src) bytesAt(dst, 0, count).set(bytesAt(src, 0, count));
    return undefined;
  }
  const reduce = getReducer(dtype, op);
  if (count * es <= Math.min(g.slotBytes, SHARED_REDUCE_ALL_MAX_BYTES)) {
    // One chunk, reduced whole by everyone: finish here unless a peer is late.
    const half = g.nextHalf();
    g.slotAs(g.rank, half, src).set(src as never);
    const arrived = g.sync();
    if (!arrived) return reduceAll(g, half, dst, reduce);
    return arrived.then(() => reduceAll(g, half, dst, reduce));
  }
  return allreduceChunks(g, src, dst, reduce);
}

/**
 * dst = slot 0 op slot 1 op … in rank order (same order everywhere: same bits everywhere).
 * The slot views are whole halves, longer than dst: the reducers run over dst's length.
 */
function reduceAll(g: SharedGroup, half: number, dst: TypedArray, reduce: Reducer): undefined {
  const first = g.slotAs(0, half, dst);
  dst.set(first.subarray(0, dst.length) as never);
  for (let r = 1; r < g.size; r++) reduce(dst, g.slotAs(r, half, dst));
  return undefined;
}

async function allreduceChunks(g: SharedGroup, src: TypedArray, dst: TypedArray, reduce: Reducer): Promise<void> {
  if (src !== dst && overlaps(src, dst)) {
    dst.set(src as never); // partly overlapping: the copy-in of later chunks would read results
    src = dst;
  }
  const n = g.size;
  const me = g.rank;
  const count = src.length;
  const es = src.BYTES_PER_ELEMENT;
  const srcBytes = bytesAt(src, 0, count);
  const dstBytes = bytesAt(dst, 0, count);
  const Ctor = src.constructor as TypedArrayCtor;
  const chunkElems = Math.floor(g.slotBytes / es);
  for (let off = 0; off < count; off += chunkElems) {
    const len = Math.min(chunkElems, count - off);
    const half = g.nextHalf();
    const elems = (r: number, lo: number, hi: number) => {
      const slot = g.slot(r, half);
      return new Ctor(slot.buffer, slot.byteOffset + lo * es, hi - lo);
    };
    g.slot(me, half).set(srcBytes.subarray(off * es, (off + len) * es));
    await g.sync();
    if (len * es <= SHARED_REDUCE_ALL_MAX_BYTES) {
      reduceAll(g, half, dst.subarray(off, off + len) as TypedArray, reduce);
      continue;
    }
    const [lo, hi] = sharedBlock(len, n, me, es);
    if (hi > lo) {
      const acc = elems(me, lo, hi);
      for (let i = 1; i < n; i++) reduce(acc, elems((me + i) % n, lo, hi));
    }
    await g.sync();
    for (let r = 0; r < n; r++) {
      const [a, b] = sharedBlock(len, n, r, es);
      if (b > a) dstBytes.set(g.slot(r, half).subarray(a * es, b * es), (off + a) * es);
    }
  }
}
