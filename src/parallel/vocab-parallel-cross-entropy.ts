/**
 * Cross-entropy over logits whose vocabulary is split across the group (each rank holds
 * rows×V/P columns, the output of a ColumnParallelLinear LM head without gatherOutput).
 * Forward: allreduce(max) of the row maxima, allreduce(sum) of the target logit (only its
 * owner contributes), allreduce(sum) of Σ exp(logit − max). Loss = log Σexp + max − target.
 * Backward needs no communication: dLogits = (softmax − onehot)·dLoss on the local columns.
 * Subtracting the global max first keeps logits in the thousands finite.
 */

import { invalidArgument } from '../errors.js';
import type { ParallelGroup } from './group.js';

export class VocabParallelCrossEntropy {
  private saved?: { probs: Float32Array; targets: Int32Array; rows: number };

  constructor(readonly group: ParallelGroup, readonly vocab: number, readonly vocabLocal: number) {
    if (vocabLocal * group.size !== vocab) throw invalidArgument(`cross-entropy: vocab ${vocab} is not ${group.size} × ${vocabLocal}`, { rank: group.rank, op: 'tensor-parallel' });
  }

  get vocabStart(): number {
    return this.group.rank * this.vocabLocal;
  }

  /** Per-row losses (float32) and their mean. logits: rows×vocabLocal, targets: rows. */
  async forward(logits: Float32Array, targets: Int32Array): Promise<{ losses: Float32Array; mean: number }> {
    const rows = targets.length;
    const vl = this.vocabLocal;
    if (logits.length !== rows * vl) throw invalidArgument(`cross-entropy: logits have ${logits.length} elements, expected ${rows}×${vl}`, { rank: this.group.rank, op: 'tensor-parallel' });
    const start = this.vocabStart;
    const max = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let m = -Infinity;
      for (let c = 0; c < vl; c++) if (logits[r * vl + c] > m) m = logits[r * vl + c];
      max[r] = m;
    }
    if (this.group.size > 1) await this.group.timed('allreduce', 'forward', max.byteLength, () => this.group.comm.allreduce(max, { op: 'max' }));
    const target = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (!Number.isInteger(t) || t < 0 || t >= this.vocab) throw invalidArgument(`cross-entropy: target ${r} is ${t}, outside [0, ${this.vocab})`, { rank: this.group.rank, op: 'tensor-parallel' });
      if (t >= start && t < start + vl) target[r] = logits[r * vl + t - start] - max[r];
    }
    await this.group.allreduce(target, 'forward');
    const probs = new Float32Array(rows * vl);
    const sumExp = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < vl; c++) {
        const e = Math.exp(logits[r * vl + c] - max[r]);
        probs[r * vl + c] = e;
        s += e;
      }
      sumExp[r] = s;
    }
    await this.group.allreduce(sumExp, 'forward');
    const losses = new Float32Array(rows);
    let total = 0;
    for (let r = 0; r < rows; r++) {
      losses[r] = Math.log(sumExp[r]) - target[r];
      total += losses[r];
      const inv = 1 / sumExp[r];
      for (let c = 0; c < vl; c++) probs[r * vl + c] *= inv;
    }
    this.saved = { probs, targets, rows };
    return { losses, mean: total / rows };
  }

  /** dLogits for loss = scale · Σ_rows loss (scale 1/rows gives the mean's gradient). */
  backward(scale: number): Float32Array {
    const s = this.saved;
    if (!s) throw invalidArgument('cross-entropy: backward before forward', { rank: this.group.rank, op: 'tensor-parallel' });
    const vl = this.vocabLocal;
    const d = s.probs;
    const start = this.vocabStart;
    for (let r = 0; r < s.rows; r++) {
      const t = s.targets[r] - start;
      if (t >= 0 && t < vl) d[r * vl + t] -= 1;
      for (let c = 0; c < vl; c++) d[r * vl + c] *= scale;
    }
    this.saved = undefined;
    return d;
  }
}
