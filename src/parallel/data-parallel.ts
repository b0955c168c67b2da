/**
 * Data parallelism for trainers, as PyTorch DDP does it: parameters are grouped into buckets
 * in reverse order (the order backward produces their gradients); when every gradient of a
 * bucket is final (`markReady`), the bucket is packed and its allreduce starts at once, while
 * backward goes on computing earlier layers. `finish()` waits for every bucket and writes the
 * averaged gradients back. Buckets start in index order on every rank, so all ranks issue the
 * same collectives in the same order (MPI's rule) whatever order gradients become ready in.
 *
 * Compression 'fp16' / 'bf16' (DDP's fp16_compress_hook): each rank divides by the world size,
 * rounds to 16 bits, the allreduce sums 16-bit values, and the result is widened back —
 * half the bytes on the wire, at 16-bit precision.
 */

import type { Communicator } from '../comm/communicator.js';
import { invalidArgument } from '../errors.js';
import { bf16ToF32Array, f16ToF32Array, f32ToBf16Array, f32ToF16Array } from '../kernels/half.js';
import type { Param } from './param.js';

export type GradCompression = 'none' | 'fp16' | 'bf16';

export interface DataParallelOptions {
  /** Bucket capacity in float32 gradient bytes; default 1 MiB (a parameter never splits). */
  bucketBytes?: number;
  compression?: GradCompression;
  /** Allreduce algorithm for the buckets. */
  algorithm?: string;
  timeoutMs?: number;
}

interface Bucket {
  params: Param[];
  elements: number;
  pending: number;
  request?: PromiseLike<unknown>;
  buffer?: Float32Array | Uint16Array;
}

export interface DataParallelStats {
  buckets: number;
  /** Buckets whose allreduce was started by markReady (during backward), not by finish(). */
  startedDuringBackward: number;
  /** Time finish() spent waiting for allreduces still in flight, ms (the exposed communication). */
  waitMs: number;
}

export class DataParallel {
  private readonly buckets: Bucket[] = [];
  private readonly bucketOf = new Map<Param, number>();
  private readonly ready = new Set<Param>();
  private nextToStart = 0;
  private startedEarly = 0;
  private lastWaitMs = 0;
  private readonly compression: GradCompression;

  constructor(readonly comm: Communicator, params: readonly Param[], private readonly opts: DataParallelOptions = {}) {
    const capacity = opts.bucketBytes ?? 1 << 20;
    if (!(capacity > 0)) throw invalidArgument(`data parallel: bucketBytes must be positive, got ${capacity}`, { rank: comm.rank, op: 'data-parallel' });
    this.compression = opts.compression ?? 'none';
    if (!['none', 'fp16', 'bf16'].includes(this.compression)) throw invalidArgument(`data parallel: unknown compression '${this.compression}' (expected none, fp16 or bf16)`, { rank: comm.rank, op: 'data-parallel' });
    let current: Bucket | undefined;
    for (const p of [...params].reverse()) {
      if (this.bucketOf.has(p)) throw invalidArgument(`data parallel: parameter ${p.name} is listed twice`, { rank: comm.rank, op: 'data-parallel' });
      if (!current || (current.elements > 0 && (current.elements + p.grad.length) * 4 > capacity)) {
        current = { params: [], elements: 0, pending: 0 };
        this.buckets.push(current);
      }
      current.params.push(p);
      current.elements += p.grad.length;
      current.pending++;
      this.bucketOf.set(p, this.buckets.length - 1);
    }
  }

  get stats(): DataParallelStats {
    return { buckets: this.buckets.length, startedDuringBackward: this.startedEarly, waitMs: this.lastWaitMs };
  }

  /** These gradients are final for this step; full buckets start their allreduce now. */
  markReady(...params: Param[]): void {
    for (const p of params) {
      const b = this.bucketOf.get(p);
      if (b === undefined) throw invalidArgument(`data parallel: parameter ${p.name} is not managed here`, { rank: this.comm.rank, op: 'data-parallel' });
      if (this.ready.has(p)) throw invalidArgument(`data parallel: parameter ${p.name} marked ready twice in one step`, { rank: this.comm.rank, op: 'data-parallel' });
      this.ready.add(p);
      this.buckets[b].pending--;
    }
    while (this.nextToStart < this.buckets.length && this.buckets[this.nextToStart].pending === 0) {
      this.start(this.buckets[this.nextToStart++]);
      this.startedEarly++;
    }
  }

  private start(b: Bucket): void {
    const flat = new Float32Array(b.elements);
    let at = 0;
    for (const p of b.params) {
      flat.set(p.grad, at);
      at += p.grad.length;
    }
    const base = { op: 'sum' as const, algorithm: this.opts.algorithm, timeoutMs: this.opts.timeoutMs };
    if (this.compression === 'none') {
      b.buffer = flat;
      b.request = this.comm.iallreduce(flat, base);
      return;
    }
    const inv = 1 / this.comm.size;
    for (let i = 0; i < flat.length; i++) flat[i] *= inv;
    const half = this.compression === 'fp16' ? f32ToF16Array(flat) : f32ToBf16Array(flat);
    b.buffer = half;
    b.request = this.comm.iallreduce(half, { ...base, dtype: this.compression === 'fp16' ? 'float16' : 'bfloat16' });
  }

  /** Start what is left, wait for every bucket, write the averaged gradients back; resets for the next step. */
  async finish(): Promise<void> {
    while (this.nextToStart < this.buckets.length) this.start(this.buckets[this.nextToStart++]);
    const t0 = performance.now();
    await Promise.all(this.buckets.map((b) => b.request));
    this.lastWaitMs = performance.now() - t0;
    const inv = 1 / this.comm.size;
    for (const b of this.buckets) {
      const buf = b.buffer!;
      const avg = buf instanceof Float32Array ? buf : this.compression === 'fp16' ? f16ToF32Array(buf) : bf16ToF32Array(buf);
      if (buf instanceof Float32Array && this.comm.size > 1) for (let i = 0; i < avg.length; i++) avg[i] *= inv;
      let at = 0;
      for (const p of b.params) {
        p.grad.set(avg.subarray(at, at + p.grad.length));
        at += p.grad.length;
      }
      b.request = b.buffer = undefined;
      b.pending = b.params.length;
    }
    this.ready.clear();
    this.nextToStart = 0;
    this.startedEarly = 0;
  }

  /** Make every replica start from rank `root`'s parameter values (DDP does this once). */
  async broadcastParameters(root = 0): Promise<void> {
    for (const b of this.buckets) {
      for (const p of b.params) await this.comm.broadcast(p.data, { root, timeoutMs: this.opts.timeoutMs });
    }
  }
}
