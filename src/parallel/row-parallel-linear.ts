/**
 * RowParallelLinear: Y = X·W + b with W's input rows split across the group (rank r holds
 * W[r·in/P … (r+1)·in/P, :], inLocal×out; the bias is whole on every rank). Each rank
 * multiplies its column block of X; the partial products are summed by
 * reduce-from-parallel-region (an allreduce) and the bias is added after the reduce, once.
 * Backward needs no reduction: dW = X_localᵀ·dY, dX_local = dY·W_localᵀ.
 * inputIsParallel=false: X arrives whole and each rank takes its column block (its adjoint
 * allgathers dX). sequenceParallel: the reduce becomes a reduce-scatter of rows, and the bias
 * gradient is a partial sum over ranks (marked tpPartialGrad).
 */

import { invalidArgument } from '../errors.js';
import { addBias, biasGrad } from '../kernels/bias.js';
import type { ParallelGroup } from './group.js';
import { reduceFromParallelRegion, reduceScatterToSequenceParallel, scatterToParallelRegion } from './mappings.js';
import { makeParam, type HasParams, type Param } from './param.js';
import { divide, expectShape, shardRows } from './shard.js';

export interface RowParallelOptions {
  /** X is already split by columns across ranks (default true, as after a ColumnParallelLinear). */
  inputIsParallel?: boolean;
  /** Reduce-scatter the output rows instead of allreducing (sequence parallelism). */
  sequenceParallel?: boolean;
  name?: string;
}

export class RowParallelLinear implements HasParams {
  readonly weight: Param;
  readonly bias?: Param;
  private input?: Float32Array;
  private rows = 0;

  /** `weight` is this rank's inLocal×out shard; `bias` the whole out vector. */
  constructor(readonly group: ParallelGroup, readonly inLocal: number, readonly outFeatures: number, weight: Float32Array, bias: Float32Array | undefined, readonly opts: RowParallelOptions = {}) {
    const name = opts.name ?? 'row';
    expectShape(weight, inLocal, outFeatures, `${name}: weight shard`, group.rank);
    if (bias) expectShape(bias, 1, outFeatures, `${name}: bias`, group.rank);
    this.weight = makeParam(`${name}.weight`, weight);
    this.bias = bias ? makeParam(`${name}.bias`, bias, opts.sequenceParallel === true && group.size > 1) : undefined;
  }

  /** Shard a full in×out weight by rows for this rank; the bias stays whole. */
  static fromFull(group: ParallelGroup, inFeatures: number, outFeatures: number, weight: Float32Array, bias?: Float32Array, opts: RowParallelOptions = {}): RowParallelLinear {
    const what = `${opts.name ?? 'row'} input features`;
    const inLocal = divide(inFeatures, group.size, what, group.rank);
    const w = shardRows(weight, inFeatures, outFeatures, group.size, group.rank, what);
    return new RowParallelLinear(group, inLocal, outFeatures, w, bias ? Float32Array.from(bias) : undefined, opts);
  }

  parameters(): Param[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  private get inputIsParallel(): boolean {
    return this.opts.inputIsParallel ?? true;
  }

  /** x: rows×inLocal (or rows×in when !inputIsParallel). Returns rows×out, or this rank's rows/P with sequenceParallel. */
  async forward(x: Float32Array, rows: number): Promise<Float32Array> {
    const xLocal = this.inputIsParallel ? x : scatterToParallelRegion.forward(this.group, x, rows, this.inLocal * this.group.size);
    this.input = xLocal;
    this.rows = rows;
    const partial = await this.group.matmul(xLocal, this.weight.data, rows, this.inLocal, this.outFeatures);
    const y = this.opts.sequenceParallel
      ? await reduceScatterToSequenceParallel.forward(this.group, partial, rows)
      : await reduceFromParallelRegion.forward(this.group, partial);
    if (this.bias) addBias(y, this.bias.data, y.length / this.outFeatures, this.outFeatures);
    return y;
  }

  async backward(dy: Float32Array): Promise<Float32Array> {
    const x = this.input;
    if (!x) throw invalidArgument(`${this.weight.name}: backward before forward`, { rank: this.group.rank, op: 'tensor-parallel' });
    const rows = this.rows;
    if (this.bias) biasGrad(dy, dy.length / this.outFeatures, this.outFeatures, this.bias.grad);
    const dyFull = this.opts.sequenceParallel ? await reduceScatterToSequenceParallel.backward(this.group, dy) : reduceFromParallelRegion.backward(dy);
    await this.group.matmul(x, dyFull, this.inLocal, rows, this.outFeatures, this.weight.grad, { transA: true, accumulate: true });
    const dx = await this.group.matmul(dyFull, this.weight.data, rows, this.outFeatures, this.inLocal, undefined, { transB: true });
    this.input = undefined;
    return this.inputIsParallel ? dx : scatterToParallelRegion.backward(this.group, dx, rows, this.inLocal);
  }
}
