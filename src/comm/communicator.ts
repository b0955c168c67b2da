import { serialize, deserialize } from 'node:v8';
import * as coll from '../collectives/index.js';
import { dtypeOf, type DType, type TypedArray } from '../dtype.js';
import { TcclError, invalidArgument } from '../errors.js';
import { validateOp, type ReduceOp } from '../kernels/reduce.js';
import { isBlockAt, unaliased } from '../kernels/view.js';
import { CommunicatorBase } from './base.js';
import type { Request } from './request.js';

/**
 * The request's own promise (not an async method's extra thenable hop: small collectives over
 * shared memory are done before the call returns); an argument error still rejects.
 */
function awaited<T>(start: () => Request<T>): Promise<T> {
  try {
    return start().wait();
  } catch (e) {
    return Promise.reject(e);
  }
}

/** `value` once `running` is done; `value` itself when it finished within the call. */
const then = <T>(running: Promise<void> | undefined, value: T): T | Promise<T> => (running ? running.then(() => value) : value);

/** The options of a call given none (not a new object per call). */
const NO_OPTIONS = Object.freeze({});

export { TAG_UB, DEFAULT_TIMEOUT_MS, type P2POptions, type SendRecvOptions, type WorldHooks } from './base.js';

/** Every collective accepts these. */
export interface CollectiveOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}
export interface ReductionCallOptions extends CollectiveOptions {
  /** Default 'sum'. */
  op?: ReduceOp;
  /** Required for float16 / bfloat16 (Uint16Array); otherwise taken from the array type. */
  dtype?: DType;
}
export interface AllreduceCallOptions extends ReductionCallOptions {
  /** Write the result here instead of in place. */
  out?: TypedArray;
  /** 'ring' | 'rd' | 'rabenseifner' | 'shm' | 'auto' (env TCCL_ALGO_ALLREDUCE). */
  algorithm?: string;
}
export interface ReduceScatterCallOptions extends ReductionCallOptions {
  /** 'ring' | 'rh' | 'shm' | 'auto' (env TCCL_ALGO_REDUCE_SCATTER). */
  algorithm?: string;
}
export interface AlgorithmCallOptions extends CollectiveOptions {
  algorithm?: string;
  dtype?: DType;
}
export interface AlltoallvCallOptions extends CollectiveOptions {
  dtype?: DType;
  /** Element offset of each block in src / dst (default: prefix sums of the counts). */
  sdispls?: readonly number[];
  rdispls?: readonly number[];
  /** 'pairwise' | 'shm' | 'auto' (env TCCL_ALGO_ALLTOALLV). */
  algorithm?: string;
}
export interface RootCallOptions extends CollectiveOptions {
  /** Default 0. */
  root?: number;
  dtype?: DType;
}
export interface BroadcastCallOptions extends RootCallOptions {
  /** 'binomial' | 'chain' | 'shm' | 'auto' (env TCCL_ALGO_BROADCAST). */
  algorithm?: string;
}
export interface ReduceCallOptions extends ReductionCallOptions {
  root?: number;
  /** Result at the root (required there unless reducing in place into src). */
  out?: TypedArray;
}

/**
 * The communicator users hold: point-to-point and communicator management from
 * CommunicatorBase, plus every collective in blocking and `i` (request-returning) form.
 * Arguments are checked on the calling rank before the call takes a sequence number, so a
 * local argument error leaves the communicator usable; disagreement between ranks surfaces as
 * TCCL_ERR_DESYNC or a timeout naming the operation and its sequence number.
 */
export class Communicator extends CommunicatorBase {
  // ---- allreduce -------------------------------------------------------------------------

  iallreduce<T extends TypedArray>(buf: T, opts: AllreduceCallOptions = NO_OPTIONS): Request<T> {
    const op = opts.op ?? 'sum';
    // (Checked inline rather than through checked(): this is the call small messages make most.)
    this.checkOpen('allreduce');
    let dtype: DType;
    let algorithm: coll.AllreduceAlgorithm;
    try {
      dtype = dtypeOf(buf, opts.dtype, 'allreduce buffer');
      validateOp(dtype, op);
      if (opts.out !== undefined) sameShape(opts.out, buf, dtype, 'allreduce out');
      // Chosen once here (options and env read once); the dispatcher gets the name.
      algorithm = coll.selectAllreduce(buf.byteLength, this.size, opts.algorithm, this.algorithmEnv, this.hasSharedMemory);
    } catch (e) {
      throw this.argumentError(e, 'allreduce');
    }
    const out = (opts.out ?? buf) as T;
    return this.runCollective('allreduce', opts.timeoutMs, opts.signal, (p2p) => {
      const running = coll.runAllreduce(p2p, out, buf, dtype, op, algorithm);
      return running ? running.then(() => out) : out;
    }, { count: buf.length, dtype, reduceOp: opName(op), algorithm });
  }
  /** op over every rank's buf, in place (or into `out`); every rank gets the result. */
  allreduce<T extends TypedArray>(buf: T, opts: AllreduceCallOptions = NO_OPTIONS): Promise<T> {
    return awaited(() => this.iallreduce(buf, opts));
  }

  // ---- reduce-scatter --------------------------------------------------------------------

  ireduceScatter<T extends TypedArray>(src: T, dst: T, opts: ReduceScatterCallOptions = {}): Request<T> {
    const op = opts.op ?? 'sum';
    const target = this.checked('reduceScatter', () => {
      const dtype = dtypeOf(src, opts.dtype, 'reduceScatter src');
      dtypeOf(dst, opts.dtype, 'reduceScatter dst');
      validateOp(dtype, op);
      sameType(dst, src, 'reduceScatter dst');
      if (src.length !== dst.length * this.size) throw invalidArgument(`reduceScatter src has ${src.length} elements; it must have size × dst = ${this.size} × ${dst.length} = ${dst.length * this.size}`);
      return { dtype, algorithm: coll.selectReduceScatter(src.byteLength, this.size, opts.algorithm, this.algorithmEnv, this.hasSharedMemory) };
    });
    return this.runCollective('reduceScatter', opts.timeoutMs, opts.signal, (p2p) => {
      // In place (dst is this rank's block of src) runs without a copy of src; other overlaps copy it.
      const input = isBlockAt(dst, src, this.rank * dst.length) ? src : unaliased(src, dst);
      return then(coll.reduceScatter(p2p, input, dst, { dtype: target.dtype, op, algorithm: target.algorithm }), dst);
    }, { count: dst.length, dtype: target.dtype, reduceOp: opName(op), algorithm: target.algorithm });
  }
  /** dst = block `rank` (dst.length elements) of op over every rank's src. */
  reduceScatter<T extends TypedArray>(src: T, dst: T, opts: ReduceScatterCallOptions = {}): Promise<T> {
    return awaited(() => this.ireduceScatter(src, dst, opts));
  }

  // ---- allgather -------------------------------------------------------------------------

  iallgather<T extends TypedArray>(src: T, dst: T, opts: AlgorithmCallOptions = {}): Request<T> {
    const algorithm = this.checked('allgather', () => {
      dtypeOf(src, opts.dtype, 'allgather src');
      sameType(dst, src, 'allgather dst');
      if (dst.length !== src.length * this.size) throw invalidArgument(`allgather dst has ${dst.length} elements; it must have size × src = ${this.size} × ${src.length} = ${src.length * this.size}`);
      return coll.selectAllgather(dst.byteLength, this.size, opts.algorithm, this.algorithmEnv, this.hasSharedMemory);
    });
    return this.runCollective('allgather', opts.timeoutMs, opts.signal, (p2p) => {
      // In place (src is this rank's block of dst) runs without a copy of src; other overlaps copy it.
      return then(coll.allgather(p2p, isBlockAt(src, dst, this.rank * src.length) ? src : unaliased(src, dst), dst, { algorithm }), dst);
    }, { count: src.length, dtype: dtypeOf(src, opts.dtype), algorithm });
  }
  /** dst = every rank's src, concatenated in rank order. */
  allgather<T extends TypedArray>(src: T, dst: T, opts: AlgorithmCallOptions = {}): Promise<T> {
    return awaited(() => this.iallgather(src, dst, opts));
  }

  iallgatherv<T extends TypedArray>(src: T, dst: T, recvCounts: readonly number[], opts: AlgorithmCallOptions = {}): Request<T> {
    const algorithm = this.checked('allgatherv', () => {
      dtypeOf(src, opts.dtype, 'allgatherv src');
      sameType(dst, src, 'allgatherv dst');
      const total = this.checkCounts(recvCounts, 'recvCounts');
      if (recvCounts[this.rank] !== src.length) throw invalidArgument(`allgatherv recvCounts[${this.rank}] is ${recvCounts[this.rank]} but this rank's src has ${src.length} elements`);
      if (dst.length < total) throw invalidArgument(`allgatherv dst has ${dst.length} elements; recvCounts add up to ${total}`);
      return coll.selectAllgather(total * dst.BYTES_PER_ELEMENT, this.size, opts.algorithm, this.algorithmEnv, this.hasSharedMemory);
    });
    return this.runCollective('allgatherv', opts.timeoutMs, opts.signal, (p2p) => {
      // A longer dst is allowed (as MPI's recvbuf); the blocks fill its start.
      const filled = dst.subarray(0, sum(recvCounts)) as T;
      const own = isBlockAt(src, filled, sum(recvCounts.slice(0, this.rank)));
      return then(coll.allgatherv(p2p, own ? src : unaliased(src, filled), filled, recvCounts, { algorithm }), dst);
    }, { count: sum(recvCounts), dtype: dtypeOf(src, opts.dtype), algorithm });
  }
  /** dst = every rank's src (rank k contributes recvCounts[k] elements), in rank order. */
  allgatherv<T extends TypedArray>(src: T, dst: T, recvCounts: readonly number[], opts: AlgorithmCallOptions = {}): Promise<T> {
    return awaited(() => this.iallgatherv(src, dst, recvCounts, opts));
  }

  // ---- all-to-all ------------------------------------------------------------------------

  ialltoall<T extends TypedArray>(src: T, dst: T, opts: AlgorithmCallOptions = {}): Request<T> {
    const algorithm = this.checked('alltoall', () => {
      dtypeOf(src, opts.dtype, 'alltoall src');
      sameType(dst, src, 'alltoall dst');
      if (src.length !== dst.length) throw invalidArgument(`alltoall src has ${src.length} elements and dst ${dst.length}; they must be equal`);
      if (src.length % this.size !== 0) throw invalidArgument(`alltoall buffers have ${src.length} elements, not divisible into ${this.size} equal blocks (use alltoallv)`);
      return coll.selectAlltoall(src.byteLength / this.size, this.size, opts.algorithm, this.algorithmEnv, this.hasSharedMemory);
    });
    return this.runCollective('alltoall', opts.timeoutMs, opts.signal, (p2p) => then(coll.alltoall(p2p, unaliased(src, dst), dst, { algorithm }), dst), { count: src.length, dtype: dtypeOf(src, opts.dtype), algorithm });
  }
  /** Block j of src goes to rank j; block i of dst comes from rank i. */
  alltoall<T extends TypedArray>(src: T, dst: T, opts: AlgorithmCallOptions = {}): Promise<T> {
    return awaited(() => this.ialltoall(src, dst, opts));
  }

  ialltoallv<T extends TypedArray>(src: T, sendCounts: readonly number[], dst: T, recvCounts: readonly number[], opts: AlltoallvCallOptions = {}): Request<T> {
    const algorithm = this.checked('alltoallv', () => {
      dtypeOf(src, opts.dtype, 'alltoallv src');
      sameType(dst, src, 'alltoallv dst');
      this.checkLayout(src.length, sendCounts, opts.sdispls, 'sendCounts', 'src');
      this.checkLayout(dst.length, recvCounts, opts.rdispls, 'recvCounts', 'dst');
      if (sendCounts[this.rank] !== recvCounts[this.rank]) throw invalidArgument(`alltoallv sendCounts[${this.rank}] is ${sendCounts[this.rank]} but recvCounts[${this.rank}] is ${recvCounts[this.rank]}: the block a rank sends itself must match what it receives`);
      return coll.selectAlltoallv(this.size, opts.algorithm, this.algorithmEnv, this.hasSharedMemory);
    });
    return this.runCollective('alltoallv', opts.timeoutMs, opts.signal, (p2p) =>
      then(coll.alltoallv(p2p, unaliased(src, dst), sendCounts, dst, recvCounts, { sdispls: opts.sdispls, rdispls: opts.rdispls, algorithm }), dst), { dtype: dtypeOf(src, opts.dtype), algorithm });
  }
  /** All-to-all with per-peer element counts (and optional displacements). */
  alltoallv<T extends TypedArray>(src: T, sendCounts: readonly number[], dst: T, recvCounts: readonly number[], opts: AlltoallvCallOptions = {}): Promise<T> {
    return awaited(() => this.ialltoallv(src, sendCounts, dst, recvCounts, opts));
  }

  // ---- rooted ----------------------------------------------------------------------------

  ibroadcast<T extends TypedArray>(buf: T, opts: BroadcastCallOptions = {}): Request<T> {
    const root = opts.root ?? 0;
    const algorithm = this.checked('broadcast', () => {
      dtypeOf(buf, opts.dtype, 'broadcast buffer');
      this.checkRank(root, 'broadcast', 'root');
      return coll.selectBroadcast(buf.byteLength, this.size, opts.algorithm, this.algorithmEnv, this.hasSharedMemory);
    });
    return this.runCollective('broadcast', opts.timeoutMs, opts.signal, (p2p) => then(coll.broadcast(p2p, buf, { root, algorithm }), buf), { count: buf.length, dtype: dtypeOf(buf, opts.dtype), root, algorithm });
  }
  /** buf on every rank becomes the root's buf. */
  broadcast<T extends TypedArray>(buf: T, opts: BroadcastCallOptions = {}): Promise<T> {
    return awaited(() => this.ibroadcast(buf, opts));
  }

  ireduce<T extends TypedArray>(src: T, opts: ReduceCallOptions = {}): Request<T | undefined> {
    const root = opts.root ?? 0;
    const op = opts.op ?? 'sum';
    const dtype = this.checked('reduce', () => {
      const dtype = dtypeOf(src, opts.dtype, 'reduce src');
      validateOp(dtype, op);
      this.checkRank(root, 'reduce', 'root');
      if (opts.out !== undefined) sameShape(opts.out, src, dtype, 'reduce out');
      return dtype;
    });
    const out = this.rank === root ? ((opts.out ?? src) as T) : undefined;
    return this.runCollective('reduce', opts.timeoutMs, opts.signal, async (p2p) => {
      // In place (or overlapping) at the root: reduce from a copy so the tree reads unmodified input.
      const input = out ? unaliased(src, out) : src;
      await coll.reduce(p2p, input, out, { root, dtype, op });
      return out;
    }, { count: src.length, dtype, reduceOp: opName(op), root });
  }
  /** op over every rank's src, into `out` (or src) at the root; undefined elsewhere. */
  async reduce<T extends TypedArray>(src: T, opts: ReduceCallOptions = {}): Promise<T | undefined> {
    return this.ireduce(src, opts);
  }

  igather<T extends TypedArray>(src: T, dst: T | undefined, opts: RootCallOptions = {}): Request<T | undefined> {
    const root = opts.root ?? 0;
    this.checked('gather', () => {
      dtypeOf(src, opts.dtype, 'gather src');
      this.checkRank(root, 'gather', 'root');
      if (this.rank === root) {
        if (dst === undefined) throw invalidArgument('gather needs a dst buffer at the root');
        sameType(dst, src, 'gather dst');
        if (dst.length !== src.length * this.size) throw invalidArgument(`gather dst has ${dst.length} elements; it must have size × src = ${src.length * this.size}`);
      }
    });
    return this.runCollective('gather', opts.timeoutMs, opts.signal, async (p2p) => {
      await coll.gather(p2p, this.rank === root ? unaliased(src, dst) : src, this.rank === root ? dst : undefined, { root });
      return this.rank === root ? dst : undefined;
    }, { count: src.length, dtype: dtypeOf(src, opts.dtype), root });
  }
  /** The root's dst = every rank's src in rank order (dst may be undefined off the root). */
  async gather<T extends TypedArray>(src: T, dst: T | undefined, opts: RootCallOptions = {}): Promise<T | undefined> {
    return this.igather(src, dst, opts);
  }

  igatherv<T extends TypedArray>(src: T, dst: T | undefined, recvCounts: readonly number[], opts: RootCallOptions & { displs?: readonly number[] } = {}): Request<T | undefined> {
    const root = opts.root ?? 0;
    this.checked('gatherv', () => {
      dtypeOf(src, opts.dtype, 'gatherv src');
      this.checkRank(root, 'gatherv', 'root');
      this.checkCounts(recvCounts, 'recvCounts');
      if (recvCounts[this.rank] !== src.length) throw invalidArgument(`gatherv recvCounts[${this.rank}] is ${recvCounts[this.rank]} but this rank's src has ${src.length} elements`);
      if (this.rank === root) {
        if (dst === undefined) throw invalidArgument('gatherv needs a dst buffer at the root');
        sameType(dst, src, 'gatherv dst');
        this.checkLayout(dst.length, recvCounts, opts.displs, 'recvCounts', 'dst');
      }
    });
    return this.runCollective('gatherv', opts.timeoutMs, opts.signal, async (p2p) => {
      await coll.gatherv(p2p, this.rank === root ? unaliased(src, dst) : src, this.rank === root ? dst : undefined, recvCounts, { root, displs: opts.displs });
      return this.rank === root ? dst : undefined;
    }, { count: sum(recvCounts), dtype: dtypeOf(src, opts.dtype), root });
  }
  async gatherv<T extends TypedArray>(src: T, dst: T | undefined, recvCounts: readonly number[], opts: RootCallOptions & { displs?: readonly number[] } = {}): Promise<T | undefined> {
    return this.igatherv(src, dst, recvCounts, opts);
  }

  iscatter<T extends TypedArray>(src: T | undefined, dst: T, opts: RootCallOptions = {}): Request<T> {
    const root = opts.root ?? 0;
    this.checked('scatter', () => {
      dtypeOf(dst, opts.dtype, 'scatter dst');
      this.checkRank(root, 'scatter', 'root');
      if (this.rank === root) {
        if (src === undefined) throw invalidArgument('scatter needs a src buffer at the root');
        sameType(src, dst, 'scatter src');
        if (src.length !== dst.length * this.size) throw invalidArgument(`scatter src has ${src.length} elements; it must have size × dst = ${dst.length * this.size}`);
      }
    });
    return this.runCollective('scatter', opts.timeoutMs, opts.signal, async (p2p) => {
      await coll.scatter(p2p, this.rank === root ? unaliased(src!, dst) : undefined, dst, { root });
      return dst;
    }, { count: dst.length, dtype: dtypeOf(dst, opts.dtype), root });
  }
  /** Block k of the root's src goes to rank k's dst. */
  async scatter<T extends TypedArray>(src: T | undefined, dst: T, opts: RootCallOptions = {}): Promise<T> {
    return this.iscatter(src, dst, opts);
  }

  iscatterv<T extends TypedArray>(src: T | undefined, sendCounts: readonly number[], dst: T, opts: RootCallOptions & { displs?: readonly number[] } = {}): Request<T> {
    const root = opts.root ?? 0;
    this.checked('scatterv', () => {
      dtypeOf(dst, opts.dtype, 'scatterv dst');
      this.checkRank(root, 'scatterv', 'root');
      this.checkCounts(sendCounts, 'sendCounts');
      if (sendCounts[this.rank] > dst.length) throw invalidArgument(`scatterv sendCounts[${this.rank}] is ${sendCounts[this.rank]} but dst holds ${dst.length} elements`);
      if (this.rank === root) {
        if (src === undefined) throw invalidArgument('scatterv needs a src buffer at the root');
        sameType(src, dst, 'scatterv src');
        this.checkLayout(src.length, sendCounts, opts.displs, 'sendCounts', 'src');
      }
    });
    return this.runCollective('scatterv', opts.timeoutMs, opts.signal, async (p2p) => {
      await coll.scatterv(p2p, this.rank === root ? unaliased(src!, dst) : undefined, sendCounts, dst, { root, displs: opts.displs });
      return dst;
    }, { count: sum(sendCounts), dtype: dtypeOf(dst, opts.dtype), root });
  }
  async scatterv<T extends TypedArray>(src: T | undefined, sendCounts: readonly number[], dst: T, opts: RootCallOptions & { displs?: readonly number[] } = {}): Promise<T> {
    return this.iscatterv(src, sendCounts, dst, opts);
  }

  // ---- synchronisation and objects --------------------------------------------------------

  ibarrier(opts: CollectiveOptions = {}): Request<void> {
    const algorithm = this.checked('barrier', () => coll.selectBarrier(this.size, undefined, this.algorithmEnv, this.hasSharedMemory));
    return this.runCollective('barrier', opts.timeoutMs, opts.signal, (p2p) => coll.barrier(p2p, { algorithm }), { algorithm });
  }
  /** Returns once every rank has entered the barrier. */
  barrier(opts: CollectiveOptions = {}): Promise<void> {
    return awaited(() => this.ibarrier(opts));
  }

  /** Every rank's value (structured-clone serializable), in rank order: for small control data. */
  async allgatherObject<V>(value: V, opts: CollectiveOptions = {}): Promise<V[]> {
    const bytes = new Uint8Array(serialize(value));
    const lengths = await this.allgather(new Int32Array([bytes.length]), new Int32Array(this.size), opts);
    const all = await this.allgatherv(bytes, new Uint8Array(lengths.reduce((a, b) => a + b, 0)), Array.from(lengths), opts);
    const out: V[] = [];
    for (let r = 0, off = 0; r < this.size; off += lengths[r], r++) out.push(deserialize(all.subarray(off, off + lengths[r])) as V);
    return out;
  }

  /** The root's value on every rank (structured-clone serializable). */
  async broadcastObject<V>(value: V, opts: CollectiveOptions & { root?: number } = {}): Promise<V> {
    const root = opts.root ?? 0;
    const bytes = this.rank === root ? new Uint8Array(serialize(value)) : undefined;
    const length = await this.broadcast(new Int32Array([bytes?.length ?? 0]), { ...opts, root });
    const payload = await this.broadcast(bytes ?? new Uint8Array(length[0]), { ...opts, root });
    return this.rank === root ? value : (deserialize(payload) as V);
  }

  // ---- argument checks -------------------------------------------------------------------

  /** Run local argument checks; errors get this rank and op attached. */
  private checked<R>(op: string, check: () => R): R {
    this.checkOpen(op);
    try {
      return check();
    } catch (e) {
      throw this.argumentError(e, op);
    }
  }

  private argumentError(e: unknown, op: string): unknown {
    return e instanceof TcclError && e.rank === undefined ? new TcclError(e.code, e.detail, { rank: this.rank, op, cause: e }) : e;
  }

  private checkCounts(counts: readonly number[], what: string): number {
    if (!Array.isArray(counts) || counts.length !== this.size) throw invalidArgument(`${what} must list one count per rank (${this.size}), got ${Array.isArray(counts) ? counts.length : typeof counts}`);
    let total = 0;
    for (const c of counts) {
      if (!Number.isInteger(c) || c < 0) throw invalidArgument(`${what} holds ${c}, not a non-negative integer`);
      total += c;
    }
    return total;
  }

  private checkLayout(length: number, counts: readonly number[], displs: readonly number[] | undefined, what: string, buf: string): void {
    const total = this.checkCounts(counts, what);
    if (displs === undefined) {
      if (length < total) throw invalidArgument(`${buf} has ${length} elements; ${what} add up to ${total}`);
      return;
    }
    if (!Array.isArray(displs) || displs.length !== this.size) throw invalidArgument(`displacements for ${buf} must list one offset per rank (${this.size})`);
    displs.forEach((d, r) => {
      if (!Number.isInteger(d) || d < 0 || d + counts[r] > length) throw invalidArgument(`${buf} block ${r} (offset ${d}, ${counts[r]} elements) lies outside its ${length} elements`);
    });
  }
}

function sameType(buf: unknown, like: TypedArray, what: string): void {
  if (!(buf instanceof (like.constructor as new () => TypedArray))) {
    const got = buf === null || buf === undefined ? String(buf) : (buf as object).constructor?.name;
    throw invalidArgument(`${what} is a ${got}; it must be a ${like.constructor.name} like the input`);
  }
}

function sameShape(buf: TypedArray, like: TypedArray, dtype: DType, what: string): void {
  dtypeOf(buf, dtype, what);
  if (buf.length !== like.length) throw invalidArgument(`${what} has ${buf.length} elements; the input has ${like.length}`);
}

const sum = (counts: readonly number[]): number => counts.reduce((a, b) => a + b, 0);
/** Custom reduce functions are compared by name in the desync check. */
const opName = (op: ReduceOp): string => (typeof op === 'string' ? op : `custom:${op.name || 'anonymous'}`);
