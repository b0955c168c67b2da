// Train a small decoder-only transformer LM (character level) with tensor parallelism × data
// parallelism, on a generated corpus.
//   npx tcclrun -n 4 examples/train-tp.ts --tp 2 --dp 2 --steps 20 --seed 1
//   npx tcclrun -n 1 examples/train-tp.ts --tp 1 --dp 1 --steps 20 --seed 1   (same losses)
// --pool runs the matmuls on a worker thread (KernelPool), so gradient buckets and TP
// collectives keep moving while they run; results are bitwise the same.
// World rank = dpRank·tp + tpRank: the TP group of a replica is tp consecutive ranks
// (Megatron's layout), made by one split; the DP group of each TP rank by another.
// Every rank builds the same full weights from --seed and keeps its shard, so any tp × dp
// trains the same model: the global batch is fixed and DP splits it.
import { parseArgs } from 'node:util';
import {
  init, ParallelGroup, DataParallel, VocabParallelEmbedding, VocabParallelCrossEntropy, ColumnParallelLinear,
  ParallelTransformerBlock, LayerNorm, KernelPool, makeParam, zeroGrads, adamStep, TcclError, type Param, type BlockWeights,
} from 'tccl';
import { tinyCorpus } from './tiny-corpus.js';

const { values: flags } = parseArgs({
  options: {
    tp: { type: 'string', default: '1' },
    dp: { type: 'string', default: '1' },
    steps: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    batch: { type: 'string', default: '8' }, // global batch, sequences
    seq: { type: 'string', default: '32' },
    layers: { type: 'string', default: '2' },
    hidden: { type: 'string', default: '64' },
    heads: { type: 'string', default: '4' },
    'kv-heads': { type: 'string', default: '2' },
    lr: { type: 'string', default: '0.003' },
    pool: { type: 'boolean', default: false },
  },
});
const int = (name: Exclude<keyof typeof flags, 'pool'>) => {
  const v = Number(flags[name]);
  if (!Number.isInteger(v) || v < 1) throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', `--${name} must be a positive integer, got '${String(flags[name])}'`);
  return v;
};
const [tp, dp, steps, seed, globalBatch, seq, nLayers, hidden, heads, kvHeads] =
  (['tp', 'dp', 'steps', 'seed', 'batch', 'seq', 'layers', 'hidden', 'heads', 'kv-heads'] as const).map(int);
const lr = Number(flags.lr);

const world = await init();
if (world.size !== tp * dp) throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', `--tp ${tp} × --dp ${dp} = ${tp * dp} ranks, but the world has ${world.size}`, { rank: world.rank });
if (globalBatch % dp !== 0) throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', `global batch ${globalBatch} is not divisible by --dp ${dp}`, { rank: world.rank });
const tpRank = world.rank % tp;
const dpRank = Math.floor(world.rank / tp);
const tpSplit = await world.split(dpRank, tpRank);
const dpSplit = await world.split(tpRank, dpRank);
// Every rank passes a color, so both splits give it a communicator (null is MPI_UNDEFINED's).
if (!tpSplit || !dpSplit) throw new TcclError('TCCL_ERR_INTERNAL', 'split returned no communicator for a defined color', { rank: world.rank });
const [tpComm, dpComm] = [tpSplit, dpSplit];
const pool = flags.pool ? new KernelPool({ threads: 1 }) : undefined;
const group = new ParallelGroup(tpComm, { runner: pool });

// ---- data: characters, vocabulary padded to a multiple of 8 so any tp ≤ 8 that divides 8 splits it
const text = tinyCorpus();
const chars = [...new Set(text)].sort();
const vocab = Math.ceil(chars.length / 8) * 8;
const tokenOf = new Map(chars.map((c, i) => [c, i]));
const tokens = Int32Array.from(text, (c) => tokenOf.get(c)!);

// ---- deterministic full weights from --seed (identical on every rank, whatever tp × dp)
let rngState = seed >>> 0;
function uniform(n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    rngState = (rngState + 0x6d2b79f5) >>> 0;
    let t = rngState;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}
const ffn = 4 * hidden;
const headDim = hidden / heads;
const s = (fanIn: number) => Math.sqrt(3 / fanIn); // uniform with variance 1/fanIn
const tokTable = uniform(vocab * hidden, 0.5);
const posTable = uniform(seq * hidden, 0.1);
const blockWeights: BlockWeights[] = Array.from({ length: nLayers }, () => ({
  attn: {
    wq: uniform(hidden * hidden, s(hidden)), wk: uniform(hidden * kvHeads * headDim, s(hidden)),
    wv: uniform(hidden * kvHeads * headDim, s(hidden)), wo: uniform(hidden * hidden, s(hidden) / Math.sqrt(2 * nLayers)),
    bq: new Float32Array(hidden), bk: new Float32Array(kvHeads * headDim), bv: new Float32Array(kvHeads * headDim), bo: new Float32Array(hidden),
  },
  mlp: { w1: uniform(hidden * ffn, s(hidden)), b1: new Float32Array(ffn), w2: uniform(ffn * hidden, s(ffn) / Math.sqrt(2 * nLayers)), b2: new Float32Array(hidden) },
}));
const headW = uniform(hidden * vocab, s(hidden));

// ---- the model, sharded for this rank
const embedding = VocabParallelEmbedding.fromFull(group, vocab, hidden, tokTable, 'tok_embedding');
const pos = makeParam('pos_embedding', posTable);
const blocks = blockWeights.map((w, i) => new ParallelTransformerBlock(group, { hidden, heads, kvHeads, ffn, name: `block${i}` }, w));
const lnFinal = new LayerNorm(hidden, { name: 'ln_f' });
const lmHead = ColumnParallelLinear.fromFull(group, hidden, vocab, headW, undefined, { name: 'lm_head' });
const crossEntropy = new VocabParallelCrossEntropy(group, vocab, vocab / tp);
const params: Param[] = [...embedding.parameters(), pos, ...blocks.flatMap((b) => b.parameters()), ...lnFinal.parameters(), ...lmHead.parameters()];
const ddp = new DataParallel(dpComm, params, { bucketBytes: 32 << 10 }); // small model: small buckets, so several overlap backward
const moments = params.map((p) => ({ m: new Float32Array(p.data.length), v: new Float32Array(p.data.length) }));

// ---- the global batch of this step (same on every rank), of which this DP rank takes a slice
function batchFor(step: number): { ids: Int32Array; targets: Int32Array } {
  const local = globalBatch / dp;
  const ids = new Int32Array(local * seq);
  const targets = new Int32Array(local * seq);
  let x = (Math.imul(seed, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b)) >>> 0;
  for (let b = 0; b < globalBatch; b++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const start = x % (tokens.length - seq - 1);
    const slot = b - dpRank * local;
    if (slot < 0 || slot >= local) continue;
    ids.set(tokens.subarray(start, start + seq), slot * seq);
    targets.set(tokens.subarray(start + 1, start + seq + 1), slot * seq);
  }
  return { ids, targets };
}

const localBatch = globalBatch / dp;
const rows = localBatch * seq;
const lossBuf = new Float64Array(1);
let bucketsEarly = 0;
const t0 = performance.now();
for (let step = 1; step <= steps; step++) {
  zeroGrads(params);
  const { ids, targets } = batchFor(step);

  // forward
  let h = await embedding.forward(ids);
  for (let r = 0; r < rows; r++) for (let c = 0; c < hidden; c++) h[r * hidden + c] += pos.data[(r % seq) * hidden + c];
  for (const block of blocks) h = await block.forward(h, localBatch, seq);
  const logits = await lmHead.forward(lnFinal.forward(h), rows);
  const { mean } = await crossEntropy.forward(logits, targets);

  // backward; each module's gradients join their DP bucket as soon as they are final
  let dh = await lmHead.backward(crossEntropy.backward(1 / rows));
  ddp.markReady(...lmHead.parameters());
  dh = lnFinal.backward(dh);
  ddp.markReady(...lnFinal.parameters());
  for (let i = blocks.length - 1; i >= 0; i--) {
    dh = await blocks[i].backward(dh);
    ddp.markReady(...blocks[i].parameters());
  }
  for (let r = 0; r < rows; r++) for (let c = 0; c < hidden; c++) pos.grad[(r % seq) * hidden + c] += dh[r * hidden + c];
  await embedding.backward(dh);
  ddp.markReady(pos, ...embedding.parameters());
  bucketsEarly += ddp.stats.startedDuringBackward;
  await ddp.finish();

  params.forEach((p, i) => adamStep(p.data, p.grad, moments[i].m, moments[i].v, step, { lr }));

  // the global loss: mean over the DP replicas' equal slices
  lossBuf[0] = mean;
  await dpComm.allreduce(lossBuf, { op: 'sum' });
  if (world.rank === 0) console.log(`step ${step} loss ${(lossBuf[0] / dp).toFixed(6)}`);
}
const seconds = (performance.now() - t0) / 1000;
if (world.rank === 0) {
  const comm = group.counters.total();
  console.log(`tokens/s ${((steps * globalBatch * seq) / seconds).toFixed(0)} (${steps} steps of ${globalBatch}×${seq} tokens in ${seconds.toFixed(2)} s; tp ${tp} dp ${dp}; ${params.reduce((n, p) => n + p.data.length, 0)} parameters on rank 0; TP collectives ${comm.count}, ${(comm.ms / 1000).toFixed(2)} s; DP buckets started during backward ${bucketsEarly} of ${steps * ddp.stats.buckets})`);
}
await pool?.close();
await tpComm.close();
await dpComm.close();
await world.close();
