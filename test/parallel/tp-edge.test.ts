// Edge cases of tensor parallelism: TP=1 is bitwise the dense layer (the same kernels composed
// with no parallel machinery); vocab-parallel embedding + LM head + cross-entropy against the
// float64 reference, including logits scaled by 1000.
import { describe, expect, it } from 'vitest';
import { matmul } from '../../src/kernels/matmul.js';
import { addBias, biasGrad } from '../../src/kernels/bias.js';
import { geluBackward, geluForward } from '../../src/kernels/activations.js';
import { attentionBackward, attentionForward } from '../../src/kernels/attention.js';
import { ParallelMLP } from '../../src/parallel/parallel-mlp.js';
import { ParallelSelfAttention } from '../../src/parallel/parallel-attention.js';
import { ColumnParallelLinear } from '../../src/parallel/column-parallel-linear.js';
import { VocabParallelEmbedding } from '../../src/parallel/vocab-parallel-embedding.js';
import { VocabParallelCrossEntropy } from '../../src/parallel/vocab-parallel-cross-entropy.js';
import { Tape, randomArray, expectClose } from './tape64.js';
import { cols64, denseReference, onEveryRank } from './harness.js';

describe('TP=1 is bitwise identical to the dense layer', () => {
  const [rows, H, F] = [8, 8, 16];
  const x = randomArray(rows * H, 40);
  const w1 = randomArray(H * F, 41, 0.5);
  const b1 = randomArray(F, 42);
  const w2 = randomArray(F * H, 43, 0.3);
  const b2 = randomArray(H, 44);
  const dy = randomArray(rows * H, 45);

  it('MLP: output, dx, every gradient', async () => {
    // Dense: the kernels composed directly.
    const pre = addBias(matmul(x, w1, rows, H, F), b1, rows, F);
    const act = geluForward(pre);
    const y = addBias(matmul(act, w2, rows, F, H), b2, rows, H);
    const dW2 = matmul(act, dy, F, rows, H, new Float32Array(F * H), { transA: true, accumulate: true });
    const db2 = biasGrad(dy, rows, H, new Float32Array(H));
    const dAct = matmul(dy, w2, rows, H, F, undefined, { transB: true });
    const dPre = geluBackward(pre, dAct);
    const dW1 = matmul(x, dPre, H, rows, F, new Float32Array(H * F), { transA: true, accumulate: true });
    const db1 = biasGrad(dPre, rows, F, new Float32Array(F));
    const dx = matmul(dPre, w1, rows, F, H, undefined, { transB: true });

    const [got] = await onEveryRank(1, async (g) => {
      const mlp = ParallelMLP.fromFull(g, H, F, { w1, b1, w2, b2 });
      const yTp = await mlp.forward(x, rows);
      const dxTp = await mlp.backward(Float32Array.from(dy));
      return { yTp, dxTp, grads: mlp.parameters().map((p) => p.grad) };
    });
    expect(got.yTp).toEqual(y);
    expect(got.dxTp).toEqual(dx);
    expect(got.grads).toEqual([dW1, db1, dW2, db2]);
  });

  it('attention: output, dx, every gradient', async () => {
    const [batch, seq, heads, d] = [2, 4, 2, 4];
    const wq = randomArray(H * H, 46, 0.5);
    const wk = randomArray(H * H, 47, 0.5);
    const wv = randomArray(H * H, 48, 0.5);
    const wo = randomArray(H * H, 49, 0.5);
    const qkvW = new Float32Array(H * 3 * H);
    for (let r = 0; r < H; r++) {
      qkvW.set(wq.subarray(r * H, r * H + H), r * 3 * H);
      qkvW.set(wk.subarray(r * H, r * H + H), r * 3 * H + H);
      qkvW.set(wv.subarray(r * H, r * H + H), r * 3 * H + 2 * H);
    }
    const qkv = matmul(x, qkvW, rows, H, 3 * H);
    const col = (m: Float32Array, start: number) => Float32Array.from(cols64(m, rows, 3 * H, start, H));
    const [q, k, v] = [col(qkv, 0), col(qkv, H), col(qkv, 2 * H)];
    const shape = { batch, seq, heads, kvHeads: heads, headDim: d };
    const { out, probs } = attentionForward(q, k, v, shape);
    const y = matmul(out, wo, rows, H, H);
    const dWo = matmul(out, dy, H, rows, H, new Float32Array(H * H), { transA: true, accumulate: true });
    const dOut = matmul(dy, wo, rows, H, H, undefined, { transB: true });
    const g = attentionBackward(q, k, v, probs, dOut, shape);
    const dqkv = new Float32Array(rows * 3 * H);
    for (let r = 0; r < rows; r++) {
      dqkv.set(g.dq.subarray(r * H, r * H + H), r * 3 * H);
      dqkv.set(g.dk.subarray(r * H, r * H + H), r * 3 * H + H);
      dqkv.set(g.dv.subarray(r * H, r * H + H), r * 3 * H + 2 * H);
    }
    const dQkvW = matmul(x, dqkv, H, rows, 3 * H, new Float32Array(H * 3 * H), { transA: true, accumulate: true });
    const dx = matmul(dqkv, qkvW, rows, 3 * H, H, undefined, { transB: true });

    const [got] = await onEveryRank(1, async (grp) => {
      const attn = ParallelSelfAttention.fromFull(grp, { hidden: H, heads, kvHeads: heads, headDim: d }, { wq, wk, wv, wo });
      const yTp = await attn.forward(x, batch, seq);
      const dxTp = await attn.backward(Float32Array.from(dy));
      return { yTp, dxTp, grads: attn.parameters().map((p) => p.grad) };
    });
    expect(got.yTp).toEqual(y);
    expect(got.dxTp).toEqual(dx);
    expect(got.grads).toEqual([dQkvW, dWo]);
  });
});

describe('vocab-parallel embedding, LM head and cross-entropy', () => {
  const [rows, H, V] = [6, 4, 16];
  const ids = Int32Array.from([3, 15, 0, 8, 8, 12]);
  const targets = Int32Array.from([15, 0, 7, 8, 4, 3]);
  const table = randomArray(V * H, 50);
  const head = randomArray(H * V, 51, 0.5);

  for (const scale of [1, 1000]) {
    for (const P of [1, 2, 4]) {
      it(`P=${P}, logits ×${scale}: loss, dlogits shard, dHead shard, dTable shard`, async () => {
        const headScaled = head.map((v) => v * scale);
        // Reference: embedding rows are the table's own leaves, so their gradients accumulate there.
        const tape = new Tape();
        const tab = tape.leaves(table);
        const hd = tape.leaves(headScaled);
        const emb: number[] = [];
        for (const id of ids) emb.push(...tab.slice(id * H, id * H + H));
        const logits = tape.matmul(emb, hd, rows, H, V);
        const loss = tape.crossEntropy(logits, targets, rows, V);
        tape.backward(loss);
        const refLoss = tape.val[loss];
        const refDLogits = tape.grads(logits);
        const refDHead = tape.grads(hd);
        const refDTable = tape.grads(tab);
        expect(Number.isFinite(refLoss)).toBe(true);

        await onEveryRank(P, async (g) => {
          const vl = V / P;
          const embedding = VocabParallelEmbedding.fromFull(g, V, H, table);
          const lm = ColumnParallelLinear.fromFull(g, H, V, headScaled, undefined, { name: 'lm_head' });
          const ce = new VocabParallelCrossEntropy(g, V, vl);
          const x = await embedding.forward(ids);
          const lg = await lm.forward(x, rows);
          const { losses, mean } = await ce.forward(lg, targets);
          expect(losses.every(Number.isFinite)).toBe(true);
          expectClose([mean], [refLoss], `loss rank ${g.rank}`, 1e-5, 1e-6);
          const dLogits = ce.backward(1 / rows);
          expectClose(dLogits, cols64(refDLogits, rows, V, g.rank * vl, vl), `dlogits shard ${g.rank}`, 1e-5, 1e-6);
          const dx = await lm.backward(dLogits);
          expectClose(lm.weight.grad, cols64(refDHead, H, V, g.rank * vl, vl), `dHead shard ${g.rank}`, 1e-5, 1e-6);
          await embedding.backward(dx);
          expectClose(embedding.weight.grad, refDTable.subarray(g.rank * vl * H, (g.rank + 1) * vl * H), `dTable shard ${g.rank}`, 1e-5, 1e-6);
        });
      });
    }
  }

  it('sequence parallel, P=2: each rank gets its block of rows; dTable shard matches', async () => {
    const dy = randomArray(rows * H, 53);
    // Dense: out[t] = table[ids[t]]; dTable[v] = Σ_{t: ids[t] = v} dy[t].
    const dTable = new Float64Array(V * H);
    ids.forEach((id, t) => { for (let c = 0; c < H; c++) dTable[id * H + c] += dy[t * H + c]; });
    await onEveryRank(2, async (g) => {
      const emb = VocabParallelEmbedding.fromFull(g, V, H, table, 'embedding', true);
      const rl = rows / 2;
      const y = await emb.forward(ids);
      const want = new Float32Array(rl * H);
      for (let t = 0; t < rl; t++) want.set(table.subarray(ids[g.rank * rl + t] * H, ids[g.rank * rl + t] * H + H), t * H);
      expect(y).toEqual(want);
      await emb.backward(dy.slice(g.rank * rl * H, (g.rank + 1) * rl * H));
      expectClose(emb.weight.grad, dTable.subarray(g.rank * (V / 2) * H, (g.rank + 1) * (V / 2) * H), `dTable shard ${g.rank}`, 1e-5, 1e-6);
    });
  });

  it('rejects token ids outside the vocabulary', async () => {
    await onEveryRank(2, async (g) => {
      const embedding = VocabParallelEmbedding.fromFull(g, V, H, table);
      await expect(embedding.forward(Int32Array.from([1, 16]))).rejects.toThrow(/TCCL_ERR_INVALID_ARGUMENT: embedding.weight: token 1 is 16, outside the vocabulary \[0, 16\)/);
    });
  });

  it('the dense reference itself: logits ×1000 give finite loss and gradients', () => {
    const big = randomArray(rows * V, 52, 1000);
    const ref = denseReference({ big }, (t, v) => [t.crossEntropy(v.big, targets, rows, V)], [1]);
    expect(Number.isFinite(ref.out[0])).toBe(true);
    expect(ref.grads.big.every(Number.isFinite)).toBe(true);
  });
});
