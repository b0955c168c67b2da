// Tensor-parallel layers against a dense float64 reference computed from the same full
// weights: outputs, input gradients and every rank's weight-gradient shard, P = 1, 2, 4.
import { describe, expect, it } from 'vitest';
import { ColumnParallelLinear } from '../../src/parallel/column-parallel-linear.js';
import { RowParallelLinear } from '../../src/parallel/row-parallel-linear.js';
import { ParallelMLP } from '../../src/parallel/parallel-mlp.js';
import { ParallelSwiGLU } from '../../src/parallel/parallel-swiglu.js';
import { ParallelSelfAttention } from '../../src/parallel/parallel-attention.js';
import { reduceSequenceParallelGrads } from '../../src/parallel/sequence-parallel.js';
import { randomArray, expectClose } from './tape64.js';
import { cols64, denseReference, onEveryRank, rows64 } from './harness.js';

const RTOL = 1e-5;
const ATOL = 1e-6;
const SIZES = [1, 2, 4];

describe('ColumnParallelLinear', () => {
  const [rows, inF, outF] = [6, 8, 12];
  const x = randomArray(rows * inF, 1);
  const w = randomArray(inF * outF, 2, 0.5);
  const b = randomArray(outF, 3);
  const dy = randomArray(rows * outF, 4);
  const ref = denseReference({ x, w, b }, (t, v) => t.addBias(t.matmul(v.x, v.w, rows, inF, outF), v.b, outF), dy);
  for (const P of SIZES) {
    for (const gatherOutput of [false, true]) {
      it(`P=${P} gatherOutput=${gatherOutput}`, async () => {
        await onEveryRank(P, async (g) => {
          const layer = ColumnParallelLinear.fromFull(g, inF, outF, w, b, { gatherOutput });
          const ol = outF / P;
          const y = await layer.forward(x, rows);
          expectClose(y, gatherOutput ? ref.out : cols64(ref.out, rows, outF, g.rank * ol, ol), `y rank ${g.rank}`, RTOL, ATOL);
          const dyIn = gatherOutput ? dy : cols64(dy, rows, outF, g.rank * ol, ol);
          const dx = await layer.backward(Float32Array.from(dyIn));
          expectClose(dx, ref.grads.x, `dx rank ${g.rank}`, RTOL, ATOL);
          expectClose(layer.weight.grad, cols64(ref.grads.w, inF, outF, g.rank * ol, ol), `dW shard ${g.rank}`, RTOL, ATOL);
          expectClose(layer.bias!.grad, cols64(ref.grads.b, 1, outF, g.rank * ol, ol), `db shard ${g.rank}`, RTOL, ATOL);
        });
      });
    }
  }
});

describe('RowParallelLinear', () => {
  const [rows, inF, outF] = [6, 12, 8];
  const x = randomArray(rows * inF, 5);
  const w = randomArray(inF * outF, 6, 0.5);
  const b = randomArray(outF, 7);
  const dy = randomArray(rows * outF, 8);
  const ref = denseReference({ x, w, b }, (t, v) => t.addBias(t.matmul(v.x, v.w, rows, inF, outF), v.b, outF), dy);
  for (const P of SIZES) {
    for (const inputIsParallel of [true, false]) {
      it(`P=${P} inputIsParallel=${inputIsParallel}`, async () => {
        await onEveryRank(P, async (g) => {
          const layer = RowParallelLinear.fromFull(g, inF, outF, w, b, { inputIsParallel });
          const il = inF / P;
          const xIn = inputIsParallel ? Float32Array.from(cols64(x, rows, inF, g.rank * il, il)) : x;
          const y = await layer.forward(xIn, rows);
          expectClose(y, ref.out, `y rank ${g.rank}`, RTOL, ATOL);
          const dx = await layer.backward(Float32Array.from(dy));
          expectClose(dx, inputIsParallel ? cols64(ref.grads.x, rows, inF, g.rank * il, il) : ref.grads.x, `dx rank ${g.rank}`, RTOL, ATOL);
          expectClose(layer.weight.grad, rows64(ref.grads.w, outF, g.rank * il, il), `dW shard ${g.rank}`, RTOL, ATOL);
          expectClose(layer.bias!.grad, ref.grads.b, `db rank ${g.rank}`, RTOL, ATOL);
        });
      });
    }
  }
});

describe('parallel MLP (gelu) and SwiGLU', () => {
  const [rows, H, F] = [8, 8, 16];
  const x = randomArray(rows * H, 9);
  const w1 = randomArray(H * F, 10, 0.5);
  const b1 = randomArray(F, 11, 0.5);
  const w2 = randomArray(F * H, 12, 0.3);
  const b2 = randomArray(H, 13, 0.5);
  const dy = randomArray(rows * H, 14);
  const mlpRef = denseReference({ x, w1, b1, w2, b2 }, (t, v) => {
    const h = t.gelu(t.addBias(t.matmul(v.x, v.w1, rows, H, F), v.b1, F));
    return t.addBias(t.matmul(h, v.w2, rows, F, H), v.b2, H);
  }, dy);
  const gate = randomArray(H * F, 15, 0.5);
  const up = randomArray(H * F, 16, 0.5);
  const down = randomArray(F * H, 17, 0.3);
  const swiRef = denseReference({ x, gate, up, down }, (t, v) => {
    const gx = t.silu(t.matmul(v.x, v.gate, rows, H, F));
    const ux = t.matmul(v.x, v.up, rows, H, F);
    return t.matmul(gx.map((n, i) => t.mul(n, ux[i])), v.down, rows, F, H);
  }, dy);

  for (const P of SIZES) {
    for (const sequenceParallel of P > 1 ? [false, true] : [false]) {
      it(`MLP P=${P}${sequenceParallel ? ' sequence-parallel' : ''}`, async () => {
        await onEveryRank(P, async (g) => {
          const mlp = ParallelMLP.fromFull(g, H, F, { w1, b1, w2, b2 }, { sequenceParallel });
          const fl = F / P;
          const rl = sequenceParallel ? rows / P : rows;
          const r0 = sequenceParallel ? g.rank * rl : 0;
          const y = await mlp.forward(Float32Array.from(rows64(x, H, r0, rl)), rl);
          expectClose(y, rows64(mlpRef.out, H, r0, rl), `y rank ${g.rank}`, RTOL, ATOL);
          const dx = await mlp.backward(Float32Array.from(rows64(dy, H, r0, rl)));
          expectClose(dx, rows64(mlpRef.grads.x, H, r0, rl), `dx rank ${g.rank}`, RTOL, ATOL);
          await reduceSequenceParallelGrads(g, mlp.parameters());
          expectClose(mlp.up.weight.grad, cols64(mlpRef.grads.w1, H, F, g.rank * fl, fl), `dW1 shard ${g.rank}`, RTOL, ATOL);
          expectClose(mlp.up.bias!.grad, cols64(mlpRef.grads.b1, 1, F, g.rank * fl, fl), `db1 shard ${g.rank}`, RTOL, ATOL);
          expectClose(mlp.down.weight.grad, rows64(mlpRef.grads.w2, H, g.rank * fl, fl), `dW2 shard ${g.rank}`, RTOL, ATOL);
          expectClose(mlp.down.bias!.grad, mlpRef.grads.b2, `db2 rank ${g.rank}`, RTOL, ATOL);
        });
      });
    }
    it(`SwiGLU P=${P}: each gate shard stays paired with its up shard`, async () => {
      await onEveryRank(P, async (g) => {
        const m = ParallelSwiGLU.fromFull(g, H, F, { gate, up, down });
        const fl = F / P;
        const y = await m.forward(x, rows);
        expectClose(y, swiRef.out, `y rank ${g.rank}`, RTOL, ATOL);
        const dx = await m.backward(Float32Array.from(dy));
        expectClose(dx, swiRef.grads.x, `dx rank ${g.rank}`, RTOL, ATOL);
        const gu = m.gateUp.weight.grad;
        expectClose(cols64(gu, H, 2 * fl, 0, fl), cols64(swiRef.grads.gate, H, F, g.rank * fl, fl), `dGate shard ${g.rank}`, RTOL, ATOL);
        expectClose(cols64(gu, H, 2 * fl, fl, fl), cols64(swiRef.grads.up, H, F, g.rank * fl, fl), `dUp shard ${g.rank}`, RTOL, ATOL);
        expectClose(m.down.weight.grad, rows64(swiRef.grads.down, H, g.rank * fl, fl), `dDown shard ${g.rank}`, RTOL, ATOL);
      });
    });
  }
});

describe('parallel causal self-attention (heads and GQA groups split)', () => {
  const [batch, seq, H, heads, kvHeads, d] = [2, 4, 8, 4, 2, 4];
  const rows = batch * seq;
  const x = randomArray(rows * H, 20);
  const wq = randomArray(H * heads * d, 21, 0.5);
  const wk = randomArray(H * kvHeads * d, 22, 0.5);
  const wv = randomArray(H * kvHeads * d, 23, 0.5);
  const wo = randomArray(heads * d * H, 24, 0.5);
  const bq = randomArray(heads * d, 25, 0.2);
  const bk = randomArray(kvHeads * d, 26, 0.2);
  const bv = randomArray(kvHeads * d, 27, 0.2);
  const bo = randomArray(H, 28, 0.2);
  const dy = randomArray(rows * H, 29);
  const ref = denseReference({ x, wq, wk, wv, wo, bq, bk, bv, bo }, (t, v) => {
    const q = t.addBias(t.matmul(v.x, v.wq, rows, H, heads * d), v.bq, heads * d);
    const k = t.addBias(t.matmul(v.x, v.wk, rows, H, kvHeads * d), v.bk, kvHeads * d);
    const vv = t.addBias(t.matmul(v.x, v.wv, rows, H, kvHeads * d), v.bv, kvHeads * d);
    const a = t.attention(q, k, vv, batch, seq, heads, kvHeads, d);
    return t.addBias(t.matmul(a, v.wo, rows, heads * d, H), v.bo, H);
  }, dy);
  for (const P of [1, 2]) {
    it(`P=${P}: out, dx, dWqkv / dWo shards, biases`, async () => {
      await onEveryRank(P, async (g) => {
        const attn = ParallelSelfAttention.fromFull(g, { hidden: H, heads, kvHeads, headDim: d }, { wq, wk, wv, wo, bq, bk, bv, bo });
        const y = await attn.forward(x, batch, seq);
        expectClose(y, ref.out, `y rank ${g.rank}`, RTOL, ATOL);
        const dx = await attn.backward(Float32Array.from(dy));
        expectClose(dx, ref.grads.x, `dx rank ${g.rank}`, RTOL, ATOL);
        const ql = (heads / P) * d;
        const kl = (kvHeads / P) * d;
        const width = ql + 2 * kl;
        const gw = attn.qkv.weight.grad;
        const gb = attn.qkv.bias!.grad;
        expectClose(cols64(gw, H, width, 0, ql), cols64(ref.grads.wq, H, heads * d, g.rank * ql, ql), `dWq shard ${g.rank}`, RTOL, ATOL);
        expectClose(cols64(gw, H, width, ql, kl), cols64(ref.grads.wk, H, kvHeads * d, g.rank * kl, kl), `dWk shard ${g.rank}`, RTOL, ATOL);
        expectClose(cols64(gw, H, width, ql + kl, kl), cols64(ref.grads.wv, H, kvHeads * d, g.rank * kl, kl), `dWv shard ${g.rank}`, RTOL, ATOL);
        expectClose(cols64(gb, 1, width, 0, ql), cols64(ref.grads.bq, 1, heads * d, g.rank * ql, ql), `dbq shard ${g.rank}`, RTOL, ATOL);
        expectClose(cols64(gb, 1, width, ql, kl), cols64(ref.grads.bk, 1, kvHeads * d, g.rank * kl, kl), `dbk shard ${g.rank}`, RTOL, ATOL);
        expectClose(cols64(gb, 1, width, ql + kl, kl), cols64(ref.grads.bv, 1, kvHeads * d, g.rank * kl, kl), `dbv shard ${g.rank}`, RTOL, ATOL);
        expectClose(attn.proj.weight.grad, rows64(ref.grads.wo, H, g.rank * ql, ql), `dWo shard ${g.rank}`, RTOL, ATOL);
        expectClose(attn.proj.bias!.grad, ref.grads.bo, `dbo rank ${g.rank}`, RTOL, ATOL);
      });
    });
  }
  it('P=4 with 4 heads and 4 kv groups; sequence parallel', async () => {
    const kv4 = { wk: randomArray(H * heads * d, 30, 0.5), wv: randomArray(H * heads * d, 31, 0.5) };
    const ref4 = denseReference({ x, wq, wo, ...kv4 }, (t, v) => {
      const q = t.matmul(v.x, v.wq, rows, H, heads * d);
      const k = t.matmul(v.x, v.wk, rows, H, heads * d);
      const vv = t.matmul(v.x, v.wv, rows, H, heads * d);
      return t.matmul(t.attention(q, k, vv, batch, seq, heads, heads, d), v.wo, rows, heads * d, H);
    }, dy);
    await onEveryRank(4, async (g) => {
      const attn = ParallelSelfAttention.fromFull(g, { hidden: H, heads, kvHeads: heads, headDim: d, sequenceParallel: true }, { wq, wo, ...kv4 });
      const rl = rows / 4;
      const y = await attn.forward(Float32Array.from(rows64(x, H, g.rank * rl, rl)), batch, seq);
      expectClose(y, rows64(ref4.out, H, g.rank * rl, rl), `y rank ${g.rank}`, RTOL, ATOL);
      const dx = await attn.backward(Float32Array.from(rows64(dy, H, g.rank * rl, rl)));
      expectClose(dx, rows64(ref4.grads.x, H, g.rank * rl, rl), `dx rank ${g.rank}`, RTOL, ATOL);
      expectClose(attn.proj.weight.grad, rows64(ref4.grads.wo, H, g.rank * d, d), `dWo shard ${g.rank}`, RTOL, ATOL);
      expectClose(cols64(attn.qkv.weight.grad, H, 3 * d, 0, d), cols64(ref4.grads.wq, H, heads * d, g.rank * d, d), `dWq shard ${g.rank}`, RTOL, ATOL);
    });
  });
});

describe('sizes that do not divide by the TP degree', () => {
  it('column / row / MLP / attention / embedding reject them with TCCL_ERR_INVALID_ARGUMENT', async () => {
    await onEveryRank(4, async (g) => {
      const w = new Float32Array(6 * 6);
      expect(() => ColumnParallelLinear.fromFull(g, 6, 6, w)).toThrow(/TCCL_ERR_INVALID_ARGUMENT: column output features \(6\) is not divisible by the tensor-parallel size 4/);
      expect(() => RowParallelLinear.fromFull(g, 6, 6, w)).toThrow(/TCCL_ERR_INVALID_ARGUMENT: row input features \(6\) is not divisible by the tensor-parallel size 4 \(rank \d/);
      expect(() => ParallelMLP.fromFull(g, 4, 6, { w1: new Float32Array(24), w2: new Float32Array(24) })).toThrow(/mlp.fc1 output features \(6\) is not divisible/);
      expect(() => ParallelSelfAttention.fromFull(g, { hidden: 8, heads: 4, kvHeads: 2, headDim: 2 }, { wq: new Float32Array(64), wk: new Float32Array(32), wv: new Float32Array(32), wo: new Float32Array(64) }))
        .toThrow(/attn kv heads \(2\) is not divisible by the tensor-parallel size 4/);
      const { VocabParallelEmbedding } = await import('../../src/parallel/vocab-parallel-embedding.js');
      try {
        VocabParallelEmbedding.fromFull(g, 10, 2, new Float32Array(20));
        expect.unreachable();
      } catch (e) {
        expect((e as { code?: string }).code).toBe('TCCL_ERR_INVALID_ARGUMENT');
        expect(String(e)).toMatch(/embedding vocabulary \(10\) is not divisible by the tensor-parallel size 4/);
      }
    });
  });
});
