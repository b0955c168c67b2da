/**
 * ColumnParallelLinear: Y = X·W + b with W's output columns split across the group
 * (rank r holds W[:, r·out/P … (r+1)·out/P), in×out/P, and the matching bias slice).
 * Forward: copy-to-parallel-region (identity), local matmul; with gatherOutput the column
 * blocks are allgathered into the full Y. Backward: dW, db locally; dX = dY·Wᵀ is a partial
 * sum over ranks, so it is allreduced (the copy's adjoint).
 * sequenceParallel: X arrives as this rank's block of rows and is allgathered first; dX is then
 * reduce-scattered back to that block instead of allreduced.
 */

import { invalidArgument } from '../errors.js';
import { addBias, biasGrad } from '../kernels/bias.js';
import type { ParallelGroup } from './group.js';
import { copyToParallelRegion, gatherFromParallelRegion, gatherFromSequenceParallel } from './mappings.js';
import { makeParam, type HasParams, type Param } from './param.js';
import { divide, expectShape, shardColumns } from './shard.js';

export interface ColumnParallelOptions {
  /** Allgather the output columns so every rank gets the full Y (default false). */
  gatherOutput?: boolean;
  /** Input rows are split across the group (sequence parallelism). */
  sequenceParallel?: boolean;
  name?: string;
}

export class ColumnParallelLinear implements HasParams {
  readonly weight: Param;
  readonly bias?: Param;
  private input?: Float32Array;
  private rows = 0;

  /** `weight` is this rank's in×outLocal shard, `bias` its outLocal slice. */
  constructor(readonly group: ParallelGroup, readonly inFeatures: number, readonly outLocal: number, weight: Float32Array, bias: Float32Array | undefined, readonly opts: ColumnParallelOptions = {}) {
    const name = opts.name ?? 'column';
    expectShape(weight, inFeatures, outLocal, `${name}: weight shard`, group.rank);
    if (bias) expectShape(bias, 1, outLocal, `${name}: bias shard`, group.rank);
    this.weight = makeParam(`${name}.weight`, weight);
    this.bias = bias ? makeParam(`${name}.bias`, bias) : undefined;
  }

  /** Shard a full in×out weight (and out bias) by columns for this rank. */
  static fromFull(group: ParallelGroup, inFeatures: number, outFeatures: number, weight: Float32Array, bias?: Float32Array, opts: ColumnParallelOptions = {}): ColumnParallelLinear {
    const what = `${opts.name ?? 'column'} output features`;
    const outLocal = divide(outFeatures, group.size, what, group.rank);
    const w = shardColumns(weight, inFeatures, outFeatures, group.size, group.rank, what);
    const b = bias ? shardColumns(bias, 1, outFeatures, group.size, group.rank, what) : undefined;
    return new ColumnParallelLinear(group, inFeatures, outLocal, w, b, opts);
  }

  parameters(): Param[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  /** x: rows×in (this rank's rows with sequenceParallel). Returns rows×outLocal, or rows×out gathered. */
  async forward(x: Float32Array, rows: number): Promise<Float32Array> {
    const full = this.opts.sequenceParallel ? await gatherFromSequenceParallel.forward(this.group, x) : copyToParallelRegion.forward(x);
    this.rows = this.opts.sequenceParallel ? rows * this.group.size : rows;
    this.input = full;
    const y = await this.group.matmul(full, this.weight.data, this.rows, this.inFeatures, this.outLocal);
    if (this.bias) addBias(y, this.bias.data, this.rows, this.outLocal);
    return this.opts.gatherOutput ? gatherFromParallelRegion.forward(this.group, y, this.rows, this.outLocal) : y;
  }

  /** dy matches forward's output; returns dx shaped like forward's input. */
  async backward(dy: Float32Array): Promise<Float32Array> {
    const x = this.input;
    if (!x) throw invalidArgument(`${this.weight.name}: backward before forward`, { rank: this.group.rank, op: 'tensor-parallel' });
    const rows = this.rows;
    const dyLocal = this.opts.gatherOutput ? gatherFromParallelRegion.backward(this.group, dy, rows, this.outLocal * this.group.size) : dy;
    await this.group.matmul(x, dyLocal, this.inFeatures, rows, this.outLocal, this.weight.grad, { transA: true, accumulate: true });
    if (this.bias) biasGrad(dyLocal, rows, this.outLocal, this.bias.grad);
    const dx = await this.group.matmul(dyLocal, this.weight.data, rows, this.outLocal, this.inFeatures, undefined, { transB: true });
    this.input = undefined;
    return this.opts.sequenceParallel ? gatherFromSequenceParallel.backward(this.group, dx, rows) : copyToParallelRegion.backward(this.group, dx);
  }
}
