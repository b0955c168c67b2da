/**
 * Vocab-parallel embedding: rank r holds rows [r·V/P, (r+1)·V/P) of the V×H table. Each rank
 * looks up the tokens in its range (zeros elsewhere) and an allreduce assembles the full
 * T×H output. Backward is the allreduce's adjoint (identity): each rank scatters dY into its
 * own rows, with no communication. With sequenceParallel the allreduce becomes a reduce-scatter
 * (rank r keeps rows block r, ready for a sequence-parallel block) and backward allgathers dY.
 */

import { invalidArgument } from '../errors.js';
import type { ParallelGroup } from './group.js';
import { reduceFromParallelRegion, reduceScatterToSequenceParallel } from './mappings.js';
import { makeParam, type HasParams, type Param } from './param.js';
import { divide, expectShape, shardRows } from './shard.js';

export class VocabParallelEmbedding implements HasParams {
  readonly weight: Param;
  readonly vocabStart: number;
  readonly vocabLocal: number;
  private ids?: Int32Array;

  constructor(readonly group: ParallelGroup, readonly vocab: number, readonly hidden: number, weightShard: Float32Array, name = 'embedding', readonly sequenceParallel = false) {
    this.vocabLocal = divide(vocab, group.size, `${name} vocabulary`, group.rank);
    this.vocabStart = group.rank * this.vocabLocal;
    expectShape(weightShard, this.vocabLocal, hidden, `${name}: shard`, group.rank);
    this.weight = makeParam(`${name}.weight`, weightShard);
  }

  static fromFull(group: ParallelGroup, vocab: number, hidden: number, table: Float32Array, name = 'embedding', sequenceParallel = false): VocabParallelEmbedding {
    return new VocabParallelEmbedding(group, vocab, hidden, shardRows(table, vocab, hidden, group.size, group.rank, `${name} vocabulary`), name, sequenceParallel);
  }

  parameters(): Param[] {
    return [this.weight];
  }

  async forward(ids: Int32Array): Promise<Float32Array> {
    const h = this.hidden;
    const out = new Float32Array(ids.length * h);
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocab) throw invalidArgument(`${this.weight.name}: token ${t} is ${id}, outside the vocabulary [0, ${this.vocab})`, { rank: this.group.rank, op: 'tensor-parallel' });
      const local = id - this.vocabStart;
      if (local >= 0 && local < this.vocabLocal) out.set(this.weight.data.subarray(local * h, local * h + h), t * h);
    }
    this.ids = ids;
    return this.sequenceParallel ? reduceScatterToSequenceParallel.forward(this.group, out, ids.length) : reduceFromParallelRegion.forward(this.group, out);
  }

  /** dy: rows×H (this rank's rows/P block with sequenceParallel). */
  async backward(dyIn: Float32Array): Promise<void> {
    const ids = this.ids;
    if (!ids) throw invalidArgument(`${this.weight.name}: backward before forward`, { rank: this.group.rank, op: 'tensor-parallel' });
    const dy = this.sequenceParallel ? await reduceScatterToSequenceParallel.backward(this.group, dyIn) : dyIn;
    const h = this.hidden;
    const g = this.weight.grad;
    for (let t = 0; t < ids.length; t++) {
      const local = ids[t] - this.vocabStart;
      if (local < 0 || local >= this.vocabLocal) continue;
      for (let c = 0; c < h; c++) g[local * h + c] += dy[t * h + c];
    }
    this.ids = undefined;
  }
}
