/**
 * Gated MLP (SwiGLU, as in LLaMA): y = (silu(X·Wg) ⊙ X·Wu)·Wd. The gate and up projections are
 * one ColumnParallelLinear whose rank-r shard is [Wg block r | Wu block r]: each gate column
 * stays on the same rank as the up column it multiplies, so the product needs no
 * communication. Communication is the parallel MLP's: one allreduce forward, one backward.
 */

import { swigluBackward, swigluForward } from '../kernels/activations.js';
import { ColumnParallelLinear } from './column-parallel-linear.js';
import type { ParallelGroup } from './group.js';
import type { HasParams, Param } from './param.js';
import { RowParallelLinear } from './row-parallel-linear.js';
import { concatColumns, divide, shardColumns, sliceColumns } from './shard.js';

export interface SwigluWeights {
  /** H×F each. */
  gate: Float32Array;
  up: Float32Array;
  /** F×H. */
  down: Float32Array;
}

export class ParallelSwiGLU implements HasParams {
  private gate?: Float32Array;
  private upOut?: Float32Array;
  private rows = 0;

  constructor(readonly gateUp: ColumnParallelLinear, readonly down: RowParallelLinear, readonly ffnLocal: number) {}

  static fromFull(group: ParallelGroup, hidden: number, ffn: number, w: SwigluWeights, opts: { sequenceParallel?: boolean; name?: string } = {}): ParallelSwiGLU {
    const name = opts.name ?? 'swiglu';
    const what = `${name} ffn features`;
    const ffnLocal = divide(ffn, group.size, what, group.rank);
    const gate = shardColumns(w.gate, hidden, ffn, group.size, group.rank, what);
    const up = shardColumns(w.up, hidden, ffn, group.size, group.rank, what);
    const fused = concatColumns([{ data: gate, cols: ffnLocal }, { data: up, cols: ffnLocal }], hidden);
    return new ParallelSwiGLU(
      new ColumnParallelLinear(group, hidden, 2 * ffnLocal, fused, undefined, { name: `${name}.gate_up`, sequenceParallel: opts.sequenceParallel }),
      RowParallelLinear.fromFull(group, ffn, hidden, w.down, undefined, { name: `${name}.down`, sequenceParallel: opts.sequenceParallel }),
      ffnLocal,
    );
  }

  parameters(): Param[] {
    return [...this.gateUp.parameters(), ...this.down.parameters()];
  }

  async forward(x: Float32Array, rows: number): Promise<Float32Array> {
    const gu = await this.gateUp.forward(x, rows);
    const f = this.ffnLocal;
    this.rows = gu.length / (2 * f);
    this.gate = sliceColumns(gu, this.rows, 2 * f, 0, f);
    this.upOut = sliceColumns(gu, this.rows, 2 * f, f, f);
    return this.down.forward(swigluForward(this.gate, this.upOut), this.rows);
  }

  async backward(dy: Float32Array): Promise<Float32Array> {
    const dAct = await this.down.backward(dy);
    const f = this.ffnLocal;
    const dGate = new Float32Array(dAct.length);
    const dUp = new Float32Array(dAct.length);
    swigluBackward(this.gate!, this.upOut!, dAct, dGate, dUp);
    this.gate = this.upOut = undefined;
    return this.gateUp.backward(concatColumns([{ data: dGate, cols: f }, { data: dUp, cols: f }], this.rows));
  }
}
