/**
 * A tensor-parallel group: the communicator the layers of one model replica share, the
 * counters of what they sent, and where their matmuls run (inline, or on a worker pool so the
 * event loop keeps communication moving meanwhile — DESIGN §4). Layers use only this.
 */

import type { Communicator } from '../comm/communicator.js';
import { matmul, type MatmulOptions } from '../kernels/matmul.js';
import { CommCounters, type Phase } from './counters.js';

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

  async matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, out?: Float32Array, opts?: MatmulOptions): Promise<Float32Array> {
    return this.runner.matmul(a, b, m, k, n, out, opts);
  }

  /** In-place sum over the group; a one-rank group skips the call (TP=1 is the dense layer). */
  async allreduce(buf: Float32Array, phase: Phase): Promise<Float32Array> {
    if (this.size === 1) return buf;
    const t0 = performance.now();
    await this.comm.allreduce(buf, { op: 'sum', algorithm: this.opts.allreduceAlgorithm, timeoutMs: this.opts.timeoutMs });
    this.counters.record('allreduce', phase, buf.byteLength, performance.now() - t0);
    return buf;
  }

  /** Rank-ordered concatenation of every rank's `src` (dst has size × src.length elements). */
  async allgather(src: Float32Array, dst: Float32Array, phase: Phase): Promise<Float32Array> {
    if (this.size === 1) {
      dst.set(src);
      return dst;
    }
    const t0 = performance.now();
    await this.comm.allgather(src, dst, { timeoutMs: this.opts.timeoutMs });
    this.counters.record('allgather', phase, dst.byteLength, performance.now() - t0);
    return dst;
  }

  /** Sum over the group, rank r keeping block r (src has size × dst.length elements). */
  async reduceScatter(src: Float32Array, dst: Float32Array, phase: Phase): Promise<Float32Array> {
    if (this.size === 1) {
      dst.set(src);
      return dst;
    }
    const t0 = performance.now();
    await this.comm.reduceScatter(src, dst, { op: 'sum', timeoutMs: this.opts.timeoutMs });
    this.counters.record('reduceScatter', phase, src.byteLength, performance.now() - t0);
    return dst;
  }
}
