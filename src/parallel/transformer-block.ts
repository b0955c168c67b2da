/**
 * A pre-LayerNorm decoder block built from the parallel pieces:
 *   x + Attn(LN1(x)),  then  h + MLP(LN2(h)).
 * Per block: forward 2 allreduces of rows×H (attention output projection, MLP down
 * projection), backward 2 (their column layers' input gradients) — Megatron's count.
 * With sequenceParallel each rank holds rows/P of x; the allreduces become allgather +
 * reduce-scatter pairs, and the norm weights get partial gradients (tpPartialGrad).
 */

import type { ParallelGroup } from './group.js';
import { LayerNorm } from './layer-norm.js';
import { ParallelSelfAttention, type AttentionWeights } from './parallel-attention.js';
import { ParallelMLP, type MlpWeights } from './parallel-mlp.js';
import type { HasParams, Param } from './param.js';

export interface BlockConfig {
  hidden: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  sequenceParallel?: boolean;
  name?: string;
}

export interface BlockWeights {
  attn: AttentionWeights;
  mlp: MlpWeights;
}

export class ParallelTransformerBlock implements HasParams {
  readonly ln1: LayerNorm;
  readonly ln2: LayerNorm;
  readonly attn: ParallelSelfAttention;
  readonly mlp: ParallelMLP;

  constructor(group: ParallelGroup, readonly cfg: BlockConfig, w: BlockWeights) {
    const name = cfg.name ?? 'block';
    const sp = cfg.sequenceParallel;
    this.ln1 = new LayerNorm(cfg.hidden, { name: `${name}.ln1`, sequenceParallel: sp && group.size > 1 });
    this.ln2 = new LayerNorm(cfg.hidden, { name: `${name}.ln2`, sequenceParallel: sp && group.size > 1 });
    this.attn = ParallelSelfAttention.fromFull(group, { hidden: cfg.hidden, heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: cfg.hidden / cfg.heads, sequenceParallel: sp, name: `${name}.attn` }, w.attn);
    this.mlp = ParallelMLP.fromFull(group, cfg.hidden, cfg.ffn, w.mlp, { sequenceParallel: sp, name: `${name}.mlp` });
  }

  parameters(): Param[] {
    return [...this.ln1.parameters(), ...this.attn.parameters(), ...this.ln2.parameters(), ...this.mlp.parameters()];
  }

  /** x: this rank's rows × H (all batch·seq rows, or rows/P with sequence parallelism). */
  async forward(x: Float32Array, batch: number, seq: number): Promise<Float32Array> {
    const a = await this.attn.forward(this.ln1.forward(x), batch, seq);
    const h = new Float32Array(x.length);
    for (let i = 0; i < h.length; i++) h[i] = x[i] + a[i];
    const m = await this.mlp.forward(this.ln2.forward(h), h.length / this.cfg.hidden);
    for (let i = 0; i < h.length; i++) m[i] += h[i];
    return m;
  }

  async backward(dy: Float32Array): Promise<Float32Array> {
    const dh = this.ln2.backward(await this.mlp.backward(dy));
    for (let i = 0; i < dh.length; i++) dh[i] += dy[i];
    const dx = this.ln1.backward(await this.attn.backward(dh));
    for (let i = 0; i < dx.length; i++) dx[i] += dh[i];
    return dx;
  }
}
