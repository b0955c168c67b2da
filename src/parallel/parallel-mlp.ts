/**
 * Megatron's parallel MLP: ColumnParallelLinear (H -> F/P per rank) -> GeLU -> RowParallelLinear
 * (F/P -> H, allreduce). One allreduce forward (in the row layer), one backward (the column
 * layer's input gradient); the activation needs none since each rank owns whole columns.
 */

import { geluBackward, geluForward } from '../kernels/activations.js';
import { ColumnParallelLinear } from './column-parallel-linear.js';
import type { ParallelGroup } from './group.js';
import type { HasParams, Param } from './param.js';
import { RowParallelLinear } from './row-parallel-linear.js';

export interface MlpWeights {
  /** H×F and F (optional). */
  w1: Float32Array;
  b1?: Float32Array;
  /** F×H and H (optional). */
  w2: Float32Array;
  b2?: Float32Array;
}

export interface MlpOptions {
  sequenceParallel?: boolean;
  name?: string;
}

export class ParallelMLP implements HasParams {
  private hidden?: Float32Array;

  constructor(readonly up: ColumnParallelLinear, readonly down: RowParallelLinear) {}

  /** Shard full weights (hidden H, ffn F) for this rank of `group`. */
  static fromFull(group: ParallelGroup, hidden: number, ffn: number, w: MlpWeights, opts: MlpOptions = {}): ParallelMLP {
    const name = opts.name ?? 'mlp';
    const sp = opts.sequenceParallel;
    return new ParallelMLP(
      ColumnParallelLinear.fromFull(group, hidden, ffn, w.w1, w.b1, { name: `${name}.fc1`, sequenceParallel: sp }),
      RowParallelLinear.fromFull(group, ffn, hidden, w.w2, w.b2, { name: `${name}.fc2`, sequenceParallel: sp }),
    );
  }

  parameters(): Param[] {
    return [...this.up.parameters(), ...this.down.parameters()];
  }

  async forward(x: Float32Array, rows: number): Promise<Float32Array> {
    const h = await this.up.forward(x, rows);
    this.hidden = h;
    const fullRows = h.length / this.up.outLocal;
    return this.down.forward(geluForward(h), fullRows);
  }

  async backward(dy: Float32Array): Promise<Float32Array> {
    const dAct = await this.down.backward(dy);
    const dh = geluBackward(this.hidden!, dAct, dAct);
    this.hidden = undefined;
    return this.up.backward(dh);
  }
}
