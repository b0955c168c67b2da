/**
 * Parallel causal self-attention. Query heads and key/value groups (GQA) are split across the
 * group: rank r owns heads [r·nh/P, …) and kv groups [r·nkv/P, …), which keeps each query
 * head with its group since nh/nkv heads share one group. One fused ColumnParallelLinear makes
 * the local [Q_r | K_r | V_r]; attention runs on local heads with no communication; the output
 * projection is a RowParallelLinear. One allreduce forward, one backward.
 */

import { invalidArgument } from '../errors.js';
import { attentionBackward, attentionForward } from '../kernels/attention.js';
import { ColumnParallelLinear } from './column-parallel-linear.js';
import type { ParallelGroup } from './group.js';
import type { HasParams, Param } from './param.js';
import { RowParallelLinear } from './row-parallel-linear.js';
import { concatColumns, divide, shardColumns, sliceColumns } from './shard.js';

export interface AttentionConfig {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  sequenceParallel?: boolean;
  name?: string;
}

export interface AttentionWeights {
  /** H×(heads·headDim), H×(kvHeads·headDim) ×2, (heads·headDim)×H; biases optional. */
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  bo?: Float32Array;
}

export class ParallelSelfAttention implements HasParams {
  readonly headsLocal: number;
  readonly kvHeadsLocal: number;
  private saved?: { q: Float32Array; k: Float32Array; v: Float32Array; probs: Float32Array; batch: number; seq: number };

  constructor(readonly group: ParallelGroup, readonly cfg: AttentionConfig, readonly qkv: ColumnParallelLinear, readonly proj: RowParallelLinear) {
    this.headsLocal = cfg.heads / group.size;
    this.kvHeadsLocal = cfg.kvHeads / group.size;
  }

  static fromFull(group: ParallelGroup, cfg: AttentionConfig, w: AttentionWeights): ParallelSelfAttention {
    const name = cfg.name ?? 'attn';
    const { hidden: h, heads, kvHeads, headDim: d } = cfg;
    if (kvHeads < 1 || heads % kvHeads !== 0) throw invalidArgument(`${name}: heads (${heads}) must be a multiple of kvHeads (${kvHeads})`, { rank: group.rank, op: 'tensor-parallel' });
    const hl = divide(heads, group.size, `${name} heads`, group.rank);
    const kvl = divide(kvHeads, group.size, `${name} kv heads`, group.rank);
    const shard = (m: Float32Array, rows: number, cols: number) => shardColumns(m, rows, cols, group.size, group.rank);
    const parts = [
      { data: shard(w.wq, h, heads * d), cols: hl * d },
      { data: shard(w.wk, h, kvHeads * d), cols: kvl * d },
      { data: shard(w.wv, h, kvHeads * d), cols: kvl * d },
    ];
    const hasBias = w.bq !== undefined;
    const bias = hasBias
      ? concatColumns([
        { data: shard(w.bq!, 1, heads * d), cols: hl * d },
        { data: shard(w.bk!, 1, kvHeads * d), cols: kvl * d },
        { data: shard(w.bv!, 1, kvHeads * d), cols: kvl * d },
      ], 1)
      : undefined;
    const qkv = new ColumnParallelLinear(group, h, (hl + 2 * kvl) * d, concatColumns(parts, h), bias, { name: `${name}.qkv`, sequenceParallel: cfg.sequenceParallel });
    const proj = RowParallelLinear.fromFull(group, heads * d, h, w.wo, w.bo, { name: `${name}.proj`, sequenceParallel: cfg.sequenceParallel });
    return new ParallelSelfAttention(group, cfg, qkv, proj);
  }

  parameters(): Param[] {
    return [...this.qkv.parameters(), ...this.proj.parameters()];
  }

  /** x: (batch·seq)×H token-major (this rank's rows with sequence parallelism). */
  async forward(x: Float32Array, batch: number, seq: number): Promise<Float32Array> {
    const rowsIn = x.length / this.cfg.hidden;
    const qkv = await this.qkv.forward(x, rowsIn);
    const rows = batch * seq;
    const d = this.cfg.headDim;
    const qW = this.headsLocal * d;
    const kvW = this.kvHeadsLocal * d;
    const width = qW + 2 * kvW;
    if (qkv.length !== rows * width) throw invalidArgument(`${this.qkv.weight.name}: ${qkv.length / width} rows do not match batch ${batch} × seq ${seq}`, { rank: this.group.rank, op: 'tensor-parallel' });
    const q = sliceColumns(qkv, rows, width, 0, qW);
    const k = sliceColumns(qkv, rows, width, qW, kvW);
    const v = sliceColumns(qkv, rows, width, qW + kvW, kvW);
    const { out, probs } = attentionForward(q, k, v, { batch, seq, heads: this.headsLocal, kvHeads: this.kvHeadsLocal, headDim: d });
    this.saved = { q, k, v, probs, batch, seq };
    return this.proj.forward(out, rows);
  }

  async backward(dy: Float32Array): Promise<Float32Array> {
    const s = this.saved;
    if (!s) throw invalidArgument(`${this.qkv.weight.name}: backward before forward`, { rank: this.group.rank, op: 'tensor-parallel' });
    const dOut = await this.proj.backward(dy);
    const d = this.cfg.headDim;
    const g = attentionBackward(s.q, s.k, s.v, s.probs, dOut, { batch: s.batch, seq: s.seq, heads: this.headsLocal, kvHeads: this.kvHeadsLocal, headDim: d });
    this.saved = undefined;
    const dqkv = concatColumns([
      { data: g.dq, cols: this.headsLocal * d },
      { data: g.dk, cols: this.kvHeadsLocal * d },
      { data: g.dv, cols: this.kvHeadsLocal * d },
    ], s.batch * s.seq);
    return this.qkv.backward(dqkv);
  }
}
