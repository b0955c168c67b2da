// The parallel layer's public surface (re-exported by src/index.ts).
export { ParallelGroup, inlineMatmul, type ParallelGroupOptions, type MatmulRunner } from './group.js';
export { CommCounters, type CommTally, type CollectiveKind, type Phase } from './counters.js';
export { makeParam, zeroGrads, type Param, type HasParams } from './param.js';
export { divide, shardColumns, shardRows, sliceColumns, concatColumns } from './shard.js';
export {
  copyToParallelRegion, reduceFromParallelRegion, scatterToParallelRegion, gatherFromParallelRegion,
  gatherFromSequenceParallel, reduceScatterToSequenceParallel,
} from './mappings.js';
export { ColumnParallelLinear, type ColumnParallelOptions } from './column-parallel-linear.js';
export { RowParallelLinear, type RowParallelOptions } from './row-parallel-linear.js';
export { ParallelMLP, type MlpWeights, type MlpOptions } from './parallel-mlp.js';
export { ParallelSwiGLU, type SwigluWeights } from './parallel-swiglu.js';
export { ParallelSelfAttention, type AttentionConfig, type AttentionWeights } from './parallel-attention.js';
export { VocabParallelEmbedding } from './vocab-parallel-embedding.js';
export { VocabParallelCrossEntropy } from './vocab-parallel-cross-entropy.js';
export { reduceSequenceParallelGrads } from './sequence-parallel.js';
export { LayerNorm } from './layer-norm.js';
export { ParallelTransformerBlock, type BlockConfig, type BlockWeights } from './transformer-block.js';
export { DataParallel, type DataParallelOptions, type DataParallelStats, type GradCompression } from './data-parallel.js';
