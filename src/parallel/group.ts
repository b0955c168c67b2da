/**
 * A tensor-parallel group: the communicator the layers of one model replica share, the
 * counters of what they sent, and where their matmuls run (inline, or on a worker pool so the
 * event loop keeps communication moving meanwhile — DESIGN §4). Layers use only this.
 */

import type { Communicator } from '../comm/communicator.js';
import { matmul, type MatmulOptions } from '../kernels/matmul.js';
import { CommCounters, type CollectiveKind, type Phase } from './counters.js';

/** Something that runs matmul off the main thread (KernelPool) or on it. */
export interface MatmulRunner {
  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, out?: Float32Array, opts?: MatmulOptions): Float32Array | Promise<Float32Array>;
}

export const inlineMatmul: MatmulRunner = { matmul };

export interface ParallelGroupOptions {
  /** Allreduce algorithm for every allreduce of the layers ('ring', 'rd', 'rabenseifner', 'auto'). */
  allreduceAlgorithm?: string;
  timeoutMs?: number;
  /** Where matmuls run; default inline on this thread. */
  runner?: MatmulRunner;
}

export class ParallelGroup {
  readonly counters = new CommCounters();
  readonly runner: MatmulRunner;

  constructor(readonly comm: Communicator, private readonly opts: ParallelGroupOptions = {}) {
    this.runner = opts.runner ?? inlineMatmul;
  }

  get rank(): number { return this.comm.rank; }
  get size(): number { return this.comm.size; }

  /** Run one collective and count it (bytes of the logical tensor, time awaited). */
  async timed(kind: CollectiveKind, phase: Phase, bytes: number, run: () => PromiseLike<unknown>): Promise<void> {
    const t0 = performance.now();
    await run();
    this.counters.record(kind, phase, bytes, performance.now() - t0);
  }

  async matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, out?: Float32Array, opts?: MatmulOptions): Promise<Float32Array> {
    return this.runner.matmul(a, b, m, k, n, out, opts);
  }

  /** In-place sum over the group; a one-rank group skips the call (TP=1 is the dense layer). */
  async allreduce(buf: Float32Array, phase: Phase): Promise<Float32Array> {
    if (this.size === 1) return buf;
    await this.timed('allreduce', phase, buf.byteLength, () => this.comm.allreduce(buf, { op: 'sum', algorithm: this.opts.allreduceAlgorithm, timeoutMs: this.opts.timeoutMs }));
    return buf;
  }

  /** Rank-ordered concatenation of every rank's `src` (dst has size × src.length elements). */
  async allgather(src: Float32Array, dst: Float32Array, phase: Phase): Promise<Float32Array> {
    if (this.size === 1) {
      dst.set(src);
      return dst;
    }
    await this.timed('allgather', phase, dst.byteLength, () => this.comm.allgather(src, dst, { timeoutMs: this.opts.timeoutMs }));
    return dst;
  }

  /** Sum over the group, rank r keeping block r (src has size × dst.length elements). */
  async reduceScatter(src: Float32Array, dst: Float32Array, phase: Phase): Promise<Float32Array> {
    if (this.size === 1) {
      dst.set(src);
      return dst;
    }
    await this.timed('reduceScatter', phase, src.byteLength, () => this.comm.reduceScatter(src, dst, { op: 'sum', timeoutMs: this.opts.timeoutMs }));
    return dst;
  }
}
