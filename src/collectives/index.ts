/**
 * Collectives over a CollectiveP2P: one function per collective, choosing an algorithm (see
 * select.ts) and dispatching to its file. Arguments are assumed validated by the Communicator;
 * only cheap invariants are checked here. Every rank must call with matching shapes.
 * 'avg' = sum with the chosen algorithm, then finishAvg on the final result.
 */
import type { DType, TypedArray } from '../dtype.js';
import { finishAvg, validateOp, type ReduceOp } from '../kernels/reduce.js';
import { ARRAY_CTORS, isBlockAt } from '../kernels/view.js';
import type { CollectiveP2P, SharedGroup } from './p2p.js';
import { allgatherRing, allgathervRing } from './allgather-ring.js';
import { allgatherRecursiveDoubling, allgathervRecursiveDoubling } from './allgather-recursive-doubling.js';
import { allgatherShared, allgathervShared } from './allgather-shared.js';
import { allreduceRing } from './allreduce-ring.js';
import { allreduceRecursiveDoubling } from './allreduce-recursive-doubling.js';
import { allreduceRabenseifner } from './allreduce-rabenseifner.js';
import { allreduceShared } from './allreduce-shared.js';
import { alltoallBruck } from './alltoall-bruck.js';
import { alltoallShared, alltoallSharedPiece, alltoallvShared } from './alltoall-shared.js';
import { alltoallPairwise, alltoallvPairwise } from './alltoall-pairwise.js';
import { barrierDissemination } from './barrier-dissemination.js';
import { barrierShared } from './barrier-shared.js';
import { broadcastBinomial } from './broadcast-binomial.js';
import { broadcastChain } from './broadcast-chain.js';
import { broadcastShared } from './broadcast-shared.js';
import { gatherLinear, gathervLinear } from './gather.js';
import { reduceBinomial } from './reduce-binomial.js';
import { reduceScatterRecursiveHalving } from './reduce-scatter-recursive-halving.js';
import { reduceScatterRing } from './reduce-scatter-ring.js';
import { reduceScatterShared } from './reduce-scatter-shared.js';
import { scatterLinear, scattervLinear } from './scatter.js';
import {
  selectAllgather, selectAllreduce, selectAlltoall, selectAlltoallv, selectBarrier, selectBroadcast, selectReduceScatter, type AlgorithmOption, type AllreduceAlgorithm,
} from './select.js';
import { allocLike, check } from './util.js';

export type { CollectiveP2P } from './p2p.js';
export type { ReduceOp } from '../kernels/reduce.js';
export * from './select.js';
export { SEGMENT_BYTES, MAX_MESSAGE_BYTES } from './util.js';
export {
  allgatherRing, allgathervRing, allgatherRecursiveDoubling, allgathervRecursiveDoubling, allreduceRing,
  allreduceRecursiveDoubling, allreduceRabenseifner, alltoallBruck, alltoallPairwise, alltoallvPairwise,
  alltoallShared, alltoallvShared, barrierDissemination, broadcastBinomial, broadcastChain, gatherLinear, gathervLinear, reduceBinomial,
  reduceScatterRecursiveHalving, reduceScatterRing, scatterLinear, scattervLinear,
  allgatherShared, allgathervShared, barrierShared, broadcastShared, reduceScatterShared,
};

export interface ReductionOptions {
  dtype: DType;
  op: ReduceOp;
}
export interface AllreduceOptions extends ReductionOptions {
  /** 'ring' | 'rd' | 'rabenseifner' | 'shm' | 'auto' (default: TCCL_ALGO_ALLREDUCE, then size rules). */
  algorithm?: AlgorithmOption;
  /** Ring segment size in bytes (default SEGMENT_BYTES). */
  segmentBytes?: number;
  /** Out of place: reduce this (unchanged) into buf. Same type and length as buf. */
  src?: TypedArray;
}
export interface ReduceScatterOptions extends ReductionOptions {
  /** 'ring' | 'rh' | 'shm' | 'auto'. */
  algorithm?: AlgorithmOption;
  /** Elements each rank receives (default: dst.length for every rank). */
  recvCounts?: readonly number[];
  segmentBytes?: number;
}
export interface AllgatherOptions {
  /** 'ring' | 'rd' | 'shm' | 'auto'. */
  algorithm?: AlgorithmOption;
  segmentBytes?: number;
}
export interface AlltoallOptions {
  /** 'pairwise' | 'bruck' | 'shm' | 'auto'. */
  algorithm?: AlgorithmOption;
}
export interface AlltoallvOptions {
  /** 'pairwise' | 'shm' | 'auto'. */
  algorithm?: AlgorithmOption;
  /** Element offsets of each block (default: prefix sums of the counts). */
  sdispls?: readonly number[];
  rdispls?: readonly number[];
}
export interface BroadcastOptions {
  root: number;
  /** 'binomial' | 'chain' | 'shm' | 'auto'. */
  algorithm?: AlgorithmOption;
  segmentBytes?: number;
}
export interface RootedReductionOptions extends ReductionOptions {
  root: number;
}
export interface RootOptions {
  root: number;
}
export interface RootedVOptions extends RootOptions {
  /** Element offsets of each rank's block at the root (default: prefix sums of the counts). */
  displs?: readonly number[];
}

function checkDtype(buf: TypedArray, dtype: DType, what: string): void {
  check(buf.constructor === ARRAY_CTORS[dtype], `${what}: a ${buf.constructor.name} cannot hold dtype ${dtype}`);
}

/**
 * In place: every rank's buf becomes op over all ranks' buf (or over their `src`, when given:
 * out of place). Undefined when it finished within the call (shared memory, peers ready).
 */
export function allreduce(p2p: CollectiveP2P, buf: TypedArray, opts: AllreduceOptions): Promise<void> | undefined {
  try {
    const { dtype, op } = opts;
    checkDtype(buf, dtype, 'allreduce');
    validateOp(dtype, op);
    const src = opts.src ?? buf;
    check(src.length === buf.length && src.constructor === buf.constructor, 'allreduce: src and buf must have the same type and length');
    const algo = selectAllreduce(buf.byteLength, p2p.size, opts.algorithm, process.env, p2p.shared !== undefined);
    return runAllreduce(p2p, buf, src, dtype, op, algo, opts.segmentBytes);
  } catch (e) {
    return Promise.reject(e); // argument errors reject, as from the async algorithms
  }
}

/**
 * allreduce for a caller that checked the arguments and chose the algorithm (the
 * Communicator): the dispatch alone, since a small allreduce over shared memory costs about
 * a microsecond and checking twice was a tenth of it.
 */
export function runAllreduce(
  p2p: CollectiveP2P, buf: TypedArray, src: TypedArray, dtype: DType, op: ReduceOp, algo: AllreduceAlgorithm, segmentBytes?: number,
): Promise<void> | undefined {
  if (p2p.size === 1) { // the copy is the whole job (and avg over one rank is the value)
    if (src !== buf) buf.set(src as never);
    return undefined;
  }
  const shared = p2p.shared;
  if (algo === 'shm' && shared) {
    const done = shared.exclusive(() => allreduceShared(shared, src, buf, dtype, op === 'avg' ? 'sum' : op));
    if (done) return op === 'avg' ? done.then(() => finishAvg(dtype, buf, p2p.size)) : done;
    if (op === 'avg') finishAvg(dtype, buf, p2p.size);
    return undefined;
  }
  if (src !== buf) buf.set(src as never); // (set copies correctly when they overlap)
  return allreduceMessages(p2p, buf, dtype, op, algo, segmentBytes);
}

async function allreduceMessages(p2p: CollectiveP2P, buf: TypedArray, dtype: DType, op: ReduceOp, algo: string, segmentBytes: number | undefined): Promise<void> {
  const sumOp = op === 'avg' ? 'sum' : op;
  if (algo === 'ring') await allreduceRing(p2p, buf, dtype, sumOp, segmentBytes);
  else if (algo === 'rd') await allreduceRecursiveDoubling(p2p, buf, dtype, sumOp);
  else await allreduceRabenseifner(p2p, buf, dtype, sumOp);
  if (op === 'avg') finishAvg(dtype, buf, p2p.size);
}

/**
 * A collective's start: a throw (an argument error) becomes a rejected promise, as from the
 * async algorithms. Undefined: it finished within the call (shared memory, peers ready).
 */
function started(start: () => Promise<void> | undefined): Promise<void> | undefined {
  try {
    return start();
  } catch (e) {
    return Promise.reject(e);
  }
}

/** A shared-memory algorithm, run after every earlier one (SharedGroup.exclusive); undefined when it finished within the call. */
const exclusively = (g: SharedGroup, body: () => Promise<void> | undefined): Promise<void> | undefined =>
  g.exclusive(body) as Promise<void> | undefined;

/** Then `after`, now or once `running` is done. */
const andThen = (running: Promise<void> | undefined, after: () => void): Promise<void> | undefined => {
  if (running) return running.then(after);
  after();
  return undefined;
};

/** dst (recvCounts[rank] elements) = op over all ranks of block `rank` of src; src is not modified. */
export function reduceScatter(p2p: CollectiveP2P, src: TypedArray, dst: TypedArray, opts: ReduceScatterOptions): Promise<void> | undefined {
  return started(() => {
    const { dtype, op } = opts;
    checkDtype(src, dtype, 'reduceScatter');
    checkDtype(dst, dtype, 'reduceScatter');
    validateOp(dtype, op);
    const counts = opts.recvCounts ?? new Array<number>(p2p.size).fill(dst.length);
    const shared = p2p.shared;
    const algo = selectReduceScatter(src.byteLength, p2p.size, opts.algorithm, process.env, shared !== undefined);
    const sumOp = op === 'avg' ? 'sum' : op;
    const avg = () => { if (op === 'avg') finishAvg(dtype, dst, p2p.size); };
    // (Shared collectives queue on exclusive() before any await, so every rank queues them in call order.)
    if (algo === 'shm' && shared) return andThen(exclusively(shared, () => reduceScatterShared(shared, src, dst, counts, dtype, sumOp)), avg);
    // In place (dst is this rank's block of src): the message algorithms write dst before
    // they are done reading that block, so they reduce into a block-sized buffer (not a
    // copy of all of src).
    const own = p2p.size > 1 && isBlockAt(dst, src, counts.slice(0, p2p.rank).reduce((a, b) => a + b, 0));
    const out = own ? allocLike(dst, dst.length) : dst;
    const running = algo === 'ring'
      ? reduceScatterRing(p2p, src, out, counts, dtype, sumOp, opts.segmentBytes)
      : reduceScatterRecursiveHalving(p2p, src, out, counts, dtype, sumOp);
    return andThen(running, () => {
      if (own) dst.set(out as never);
      avg();
    });
  });
}

/** dst = concat over ranks of src (dst.length = size × src.length). */
export function allgather(p2p: CollectiveP2P, src: TypedArray, dst: TypedArray, opts: AllgatherOptions = {}): Promise<void> | undefined {
  return started(() => {
    check(dst.length === src.length * p2p.size && src.constructor === dst.constructor, 'allgather: dst must hold size × src of the same type');
    const shared = p2p.shared;
    const algo = selectAllgather(dst.byteLength, p2p.size, opts.algorithm, process.env, shared !== undefined);
    if (algo === 'shm' && shared) return exclusively(shared, () => allgatherShared(shared, src, dst));
    if (algo === 'ring') return allgatherRing(p2p, src, dst, opts.segmentBytes);
    return allgatherRecursiveDoubling(p2p, src, dst);
  });
}

/** dst = concat over ranks of src; rank k contributes recvCounts[k] elements. */
export function allgatherv(
  p2p: CollectiveP2P, src: TypedArray, dst: TypedArray, recvCounts: readonly number[], opts: AllgatherOptions = {},
): Promise<void> | undefined {
  return started(() => {
    check(src.constructor === dst.constructor, 'allgatherv: src and dst must be the same type');
    const shared = p2p.shared;
    const algo = selectAllgather(dst.byteLength, p2p.size, opts.algorithm, process.env, shared !== undefined);
    if (algo === 'shm' && shared) return exclusively(shared, () => allgathervShared(shared, src, dst, recvCounts));
    if (algo === 'ring') return allgathervRing(p2p, src, dst, recvCounts, opts.segmentBytes);
    return allgathervRecursiveDoubling(p2p, src, dst, recvCounts);
  });
}

/** Block j of src goes to rank j; block i of dst comes from rank i (equal blocks). */
export function alltoall(p2p: CollectiveP2P, src: TypedArray, dst: TypedArray, opts: AlltoallOptions = {}): Promise<void> | undefined {
  return started(() => {
    check(src.constructor === dst.constructor, 'alltoall: src and dst must be the same type');
    const shared = p2p.shared;
    const algo = selectAlltoall(src.byteLength / p2p.size, p2p.size, opts.algorithm, process.env, shared !== undefined);
    // (A slot too small for one element per rank, n > 512 or so, cannot take the shared path.)
    if (algo === 'shm' && shared && alltoallSharedPiece(shared, src.BYTES_PER_ELEMENT) > 0) return exclusively(shared, () => alltoallShared(shared, src, dst));
    if (algo === 'bruck') return alltoallBruck(p2p, src, dst);
    return alltoallPairwise(p2p, src, dst);
  });
}

/** All-to-all with per-peer counts: shared memory, or pairwise exchange. */
export function alltoallv(
  p2p: CollectiveP2P, src: TypedArray, sendCounts: readonly number[], dst: TypedArray, recvCounts: readonly number[],
  opts: AlltoallvOptions = {},
): Promise<void> | undefined {
  return started(() => {
    check(src.constructor === dst.constructor, 'alltoallv: src and dst must be the same type');
    const shared = p2p.shared;
    const algo = selectAlltoallv(p2p.size, opts.algorithm, process.env, shared !== undefined);
    if (algo === 'shm' && shared && alltoallSharedPiece(shared, src.BYTES_PER_ELEMENT) > 0) {
      return exclusively(shared, () => alltoallvShared(shared, src, sendCounts, dst, recvCounts, opts.sdispls, opts.rdispls));
    }
    return alltoallvPairwise(p2p, src, sendCounts, dst, recvCounts, opts.sdispls, opts.rdispls);
  });
}

/** In place: buf on every rank becomes the root's buf. */
export function broadcast(p2p: CollectiveP2P, buf: TypedArray, opts: BroadcastOptions): Promise<void> | undefined {
  return started(() => {
    const shared = p2p.shared;
    const algo = selectBroadcast(buf.byteLength, p2p.size, opts.algorithm, process.env, shared !== undefined);
    if (algo === 'shm' && shared) return exclusively(shared, () => broadcastShared(shared, buf, opts.root));
    if (algo === 'chain') return broadcastChain(p2p, buf, opts.root, opts.segmentBytes);
    return broadcastBinomial(p2p, buf, opts.root);
  });
}

/** out (root only) = op over all ranks' src, combined in a fixed order (binomial tree). */
export async function reduce(p2p: CollectiveP2P, src: TypedArray, out: TypedArray | undefined, opts: RootedReductionOptions): Promise<void> {
  const { dtype, op, root } = opts;
  checkDtype(src, dtype, 'reduce');
  if (out !== undefined) checkDtype(out, dtype, 'reduce');
  validateOp(dtype, op);
  await reduceBinomial(p2p, src, out, root, dtype, op === 'avg' ? 'sum' : op);
  if (op === 'avg' && p2p.rank === root) finishAvg(dtype, out!, p2p.size);
}

/** dst (root only, size × src.length) = concat over ranks of src. */
export async function gather(p2p: CollectiveP2P, src: TypedArray, dst: TypedArray | undefined, opts: RootOptions): Promise<void> {
  if (p2p.rank === opts.root) check(dst !== undefined && dst.length === src.length * p2p.size, 'gather: root dst must hold size × src');
  await gatherLinear(p2p, src, dst, opts.root);
}

/** Rank k's src (recvCounts[k] elements) lands in the root's dst; counts matter only at the root. */
export async function gatherv(
  p2p: CollectiveP2P, src: TypedArray, dst: TypedArray | undefined, recvCounts: readonly number[], opts: RootedVOptions,
): Promise<void> {
  await gathervLinear(p2p, src, dst, recvCounts, opts.root, opts.displs);
}

/** Block k of the root's src (size × dst.length) goes to rank k's dst. */
export async function scatter(p2p: CollectiveP2P, src: TypedArray | undefined, dst: TypedArray, opts: RootOptions): Promise<void> {
  if (p2p.rank === opts.root) check(src !== undefined && src.length === dst.length * p2p.size, 'scatter: root src must hold size × dst');
  await scatterLinear(p2p, src, dst, opts.root);
}

/** Block k (sendCounts[k] elements) of the root's src goes to rank k's dst; counts matter only at the root. */
export async function scatterv(
  p2p: CollectiveP2P, src: TypedArray | undefined, sendCounts: readonly number[], dst: TypedArray, opts: RootedVOptions,
): Promise<void> {
  await scattervLinear(p2p, src, sendCounts, dst, opts.root, opts.displs);
}

export interface BarrierOptions {
  /** 'dissemination' | 'shm' | 'auto' (default: TCCL_ALGO_BARRIER, then 'shm' when there is shared memory). */
  algorithm?: AlgorithmOption;
}

/**
 * Returns once every rank has entered the barrier. Undefined when it finished within the call
 * (shared memory, every rank already there).
 */
export function barrier(p2p: CollectiveP2P, opts: BarrierOptions = {}): Promise<void> | undefined {
  const shared = p2p.shared;
  const algo = selectBarrier(p2p.size, opts.algorithm, process.env, shared !== undefined);
  if (algo === 'shm' && shared) {
    const waiting = shared.exclusive(() => barrierShared(shared));
    return waiting ? waiting : undefined;
  }
  return barrierDissemination(p2p);
}
