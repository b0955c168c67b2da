// A whole pre-LN transformer block (LN, GQA attention, residual, LN, MLP, residual) at P = 1, 2
// and with sequence parallelism, against the float64 dense reference; and the same layers with
// their matmuls on the worker-thread kernel pool are bitwise the inline ones.
import { describe, expect, it } from 'vitest';
import { ParallelTransformerBlock } from '../../src/parallel/transformer-block.js';
import { ParallelMLP } from '../../src/parallel/parallel-mlp.js';
import { ParallelGroup } from '../../src/parallel/group.js';
import { reduceSequenceParallelGrads } from '../../src/parallel/sequence-parallel.js';
import { KernelPool } from '../../src/kernels/pool/kernel-pool.js';
import { initLocalWorld } from '../../src/comm/init.js';
import { randomArray, expectClose } from './tape64.js';
import { denseReference, onEveryRank, rows64 } from './harness.js';

const RTOL = 1e-5;
const ATOL = 1e-6;

describe('ParallelTransformerBlock vs the dense reference', () => {
  const [batch, seq, H, heads, kvHeads, F] = [2, 4, 8, 4, 2, 16];
  const d = H / heads;
  const rows = batch * seq;
  const x = randomArray(rows * H, 80);
  const dy = randomArray(rows * H, 81);
  const w = {
    attn: { wq: randomArray(H * H, 82, 0.5), wk: randomArray(H * kvHeads * d, 83, 0.5), wv: randomArray(H * kvHeads * d, 84, 0.5), wo: randomArray(H * H, 85, 0.5) },
    mlp: { w1: randomArray(H * F, 86, 0.5), b1: randomArray(F, 87, 0.2), w2: randomArray(F * H, 88, 0.3), b2: randomArray(H, 89, 0.2) },
  };
  const ones = new Float32Array(H).fill(1);
  const zeros = new Float32Array(H);
  const ref = denseReference({ x, ...w.attn, ...w.mlp, g1: ones, b1n: zeros, g2: ones, b2n: zeros }, (t, v) => {
    const n1 = t.layerNorm(v.x, v.g1, v.b1n, rows, H, 1e-5);
    const q = t.matmul(n1, v.wq, rows, H, H);
    const k = t.matmul(n1, v.wk, rows, H, kvHeads * d);
    const vv = t.matmul(n1, v.wv, rows, H, kvHeads * d);
    const a = t.matmul(t.attention(q, k, vv, batch, seq, heads, kvHeads, d), v.wo, rows, H, H);
    const h = v.x.map((xi, i) => t.add(xi, a[i]));
    const n2 = t.layerNorm(h, v.g2, v.b2n, rows, H, 1e-5);
    const m = t.addBias(t.matmul(t.gelu(t.addBias(t.matmul(n2, v.w1, rows, H, F), v.b1, F)), v.w2, rows, F, H), v.b2, H);
    return h.map((hi, i) => t.add(hi, m[i]));
  }, dy);

  for (const [P, sequenceParallel] of [[1, false], [2, false], [2, true]] as const) {
    it(`P=${P}${sequenceParallel ? ' sequence-parallel' : ''}: out, dx, LayerNorm grads`, async () => {
      await onEveryRank(P, async (g) => {
        const block = new ParallelTransformerBlock(g, { hidden: H, heads, kvHeads, ffn: F, sequenceParallel }, w);
        const rl = sequenceParallel ? rows / P : rows;
        const r0 = sequenceParallel ? g.rank * rl : 0;
        const y = await block.forward(Float32Array.from(rows64(x, H, r0, rl)), batch, seq);
        expectClose(y, rows64(ref.out, H, r0, rl), `y rank ${g.rank}`, RTOL, ATOL);
        const dx = await block.backward(Float32Array.from(rows64(dy, H, r0, rl)));
        expectClose(dx, rows64(ref.grads.x, H, r0, rl), `dx rank ${g.rank}`, RTOL, ATOL);
        await reduceSequenceParallelGrads(g, block.parameters());
        expectClose(block.ln1.gamma.grad, ref.grads.g1, `ln1 dgamma rank ${g.rank}`, RTOL, ATOL);
        expectClose(block.ln2.beta.grad, ref.grads.b2n, `ln2 dbeta rank ${g.rank}`, RTOL, ATOL);
        expectClose(block.mlp.down.bias!.grad, ref.grads.b2, `mlp db2 rank ${g.rank}`, RTOL, ATOL);
      });
    });
  }
});

describe('layers with matmuls on the kernel pool', () => {
  it('parallel MLP, P=2: bitwise the inline result (outputs, dx, grads)', async () => {
    const [rows, H, F] = [16, 32, 64];
    const x = randomArray(rows * H, 90);
    const dy = randomArray(rows * H, 91);
    const wts = { w1: randomArray(H * F, 92, 0.3), b1: randomArray(F, 93), w2: randomArray(F * H, 94, 0.3), b2: randomArray(H, 95) };
    const pool = new KernelPool({ threads: 2 });
    const comms = await initLocalWorld(2, { timeoutMs: 20_000 });
    try {
      const run = (runner?: KernelPool) => Promise.all(comms.map(async (c) => {
        const mlp = ParallelMLP.fromFull(new ParallelGroup(c, { runner }), H, F, wts);
        const y = await mlp.forward(x, rows);
        const dx = await mlp.backward(Float32Array.from(dy));
        return { y, dx, grads: mlp.parameters().map((p) => p.grad) };
      }));
      expect(await run(pool)).toEqual(await run());
    } finally {
      await Promise.all(comms.map((c) => c.close()));
      await pool.close();
    }
  });
});
