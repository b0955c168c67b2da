/**
 * LayerNorm as a module for the parallel stack: its weights are replicated over the
 * tensor-parallel group and it runs on whatever rows this rank holds (all of them, or its
 * sequence-parallel block — then its gradients are partial: tpPartialGrad).
 */

import { layerNormBackward, layerNormForward, type LayerNormSaved } from '../kernels/norms.js';
import { makeParam, type HasParams, type Param } from './param.js';

export class LayerNorm implements HasParams {
  readonly gamma: Param;
  readonly beta: Param;
  private saved?: { x: Float32Array; stats: LayerNormSaved; rows: number };

  constructor(readonly hidden: number, opts: { name?: string; sequenceParallel?: boolean; eps?: number; gamma?: Float32Array; beta?: Float32Array } = {}) {
    const name = opts.name ?? 'ln';
    const partial = opts.sequenceParallel === true;
    this.gamma = makeParam(`${name}.gamma`, opts.gamma ? Float32Array.from(opts.gamma) : new Float32Array(hidden).fill(1), partial);
    this.beta = makeParam(`${name}.beta`, opts.beta ? Float32Array.from(opts.beta) : new Float32Array(hidden), partial);
    this.eps = opts.eps ?? 1e-5;
  }

  private readonly eps: number;

  parameters(): Param[] {
    return [this.gamma, this.beta];
  }

  forward(x: Float32Array): Float32Array {
    const rows = x.length / this.hidden;
    const { y, saved } = layerNormForward(x, this.gamma.data, this.beta.data, rows, this.hidden, this.eps);
    this.saved = { x, stats: saved, rows };
    return y;
  }

  backward(dy: Float32Array): Float32Array {
    const s = this.saved!;
    this.saved = undefined;
    return layerNormBackward(s.x, this.gamma.data, s.stats, dy, s.rows, this.hidden, this.gamma.grad, this.beta.grad);
  }
}
