// Activations, softmax, norms and causal GQA attention: forward values and every gradient
// against the float64 tape (independent reference), through the upstream-gradient trick
// loss = Σ y ⊙ dy, so the tape's input gradients are exactly what backward must return.
import { describe, expect, it } from 'vitest';
import { geluBackward, geluForward, siluBackward, siluForward, swigluBackward, swigluForward } from '../../src/kernels/activations.js';
import { softmaxBackward, softmaxForward } from '../../src/kernels/softmax.js';
import { layerNormBackward, layerNormForward, rmsNormBackward, rmsNormForward } from '../../src/kernels/norms.js';
import { attentionBackward, attentionForward } from '../../src/kernels/attention.js';
import { addBias, biasGrad } from '../../src/kernels/bias.js';
import { Tape, expectClose, randomArray } from '../parallel/tape64.js';

const RTOL = 1e-5;
const ATOL = 1e-6;

describe('activations', () => {
  const x = randomArray(64, 1, 4);
  const dy = randomArray(64, 2);
  for (const [name, fwd, bwd] of [['gelu', geluForward, geluBackward], ['silu', siluForward, siluBackward]] as const) {
    it(`${name} forward and backward`, () => {
      const t = new Tape();
      const xs = t.leaves(x);
      const ys = name === 'gelu' ? t.gelu(xs) : t.silu(xs);
      t.backward(t.weightedSum(ys, dy));
      expectClose(fwd(x), t.values(ys), `${name} y`, RTOL, ATOL);
      expectClose(bwd(x, dy), t.grads(xs), `${name} dx`, RTOL, ATOL);
    });
  }
  it('swiglu forward and backward', () => {
    const up = randomArray(64, 3, 2);
    const t = new Tape();
    const gs = t.leaves(x);
    const us = t.leaves(up);
    const ys = t.silu(gs).map((s, i) => t.mul(s, us[i]));
    t.backward(t.weightedSum(ys, dy));
    expectClose(swigluForward(x, up), t.values(ys), 'swiglu y', RTOL, ATOL);
    const dG = new Float32Array(64);
    const dU = new Float32Array(64);
    swigluBackward(x, up, dy, dG, dU);
    expectClose(dG, t.grads(gs), 'dGate', RTOL, ATOL);
    expectClose(dU, t.grads(us), 'dUp', RTOL, ATOL);
  });
});

describe('softmax, bias', () => {
  it('softmax forward/backward; logits ×1000 stay finite', () => {
    for (const scale of [1, 1000]) {
      const [rows, cols] = [5, 11];
      const x = randomArray(rows * cols, 4, 3 * scale);
      const dy = randomArray(rows * cols, 5);
      const t = new Tape();
      const xs = t.leaves(x);
      const ys: number[] = [];
      for (let r = 0; r < rows; r++) ys.push(...t.softmaxRow(xs.slice(r * cols, r * cols + cols)));
      t.backward(t.weightedSum(ys, dy));
      const y = softmaxForward(x, rows, cols);
      expect(y.every(Number.isFinite)).toBe(true);
      expectClose(y, t.values(ys), `softmax y ×${scale}`, RTOL, ATOL);
      expectClose(softmaxBackward(y, dy, rows, cols), t.grads(xs), `softmax dx ×${scale}`, RTOL, ATOL);
    }
  });
  it('bias add and its gradient', () => {
    const y = randomArray(12, 6);
    const b = randomArray(4, 7);
    const want = Array.from(y, (v, i) => Math.fround(v + b[i % 4]));
    expect(Array.from(addBias(Float32Array.from(y), b, 3, 4))).toEqual(want);
    const db = biasGrad(y, 3, 4, new Float32Array(4));
    expectClose(db, [0, 1, 2, 3].map((c) => y[c] + y[c + 4] + y[c + 8]), 'db', RTOL, ATOL);
  });
});

describe('norms', () => {
  const [rows, cols] = [4, 24];
  const x = randomArray(rows * cols, 8, 2);
  const gamma = randomArray(cols, 9, 1);
  const beta = randomArray(cols, 10, 1);
  const dy = randomArray(rows * cols, 11);
  it('layernorm forward and backward (x, gamma, beta)', () => {
    const t = new Tape();
    const [xs, gs, bs] = [t.leaves(x), t.leaves(gamma), t.leaves(beta)];
    const ys = t.layerNorm(xs, gs, bs, rows, cols, 1e-5);
    t.backward(t.weightedSum(ys, dy));
    const { y, saved } = layerNormForward(x, gamma, beta, rows, cols, 1e-5);
    expectClose(y, t.values(ys), 'ln y', RTOL, ATOL);
    const dG = new Float32Array(cols);
    const dB = new Float32Array(cols);
    const dx = layerNormBackward(x, gamma, saved, dy, rows, cols, dG, dB);
    expectClose(dx, t.grads(xs), 'ln dx', RTOL, ATOL);
    expectClose(dG, t.grads(gs), 'ln dgamma', RTOL, ATOL);
    expectClose(dB, t.grads(bs), 'ln dbeta', RTOL, ATOL);
  });
  it('rmsnorm forward and backward (x, gamma)', () => {
    const t = new Tape();
    const [xs, gs] = [t.leaves(x), t.leaves(gamma)];
    const ys = t.rmsNorm(xs, gs, rows, cols, 1e-6);
    t.backward(t.weightedSum(ys, dy));
    const { y, rrms } = rmsNormForward(x, gamma, rows, cols, 1e-6);
    expectClose(y, t.values(ys), 'rms y', RTOL, ATOL);
    const dG = new Float32Array(cols);
    expectClose(rmsNormBackward(x, gamma, rrms, dy, rows, cols, dG), t.grads(xs), 'rms dx', RTOL, ATOL);
    expectClose(dG, t.grads(gs), 'rms dgamma', RTOL, ATOL);
  });
});

describe('causal attention (GQA)', () => {
  for (const [heads, kvHeads] of [[4, 4], [4, 2], [4, 1]]) {
    it(`heads ${heads}, kvHeads ${kvHeads}: out, dq, dk, dv`, () => {
      const s = { batch: 2, seq: 5, heads, kvHeads, headDim: 4 };
      const rowsQ = s.batch * s.seq;
      const q = randomArray(rowsQ * heads * 4, 12);
      const k = randomArray(rowsQ * kvHeads * 4, 13);
      const v = randomArray(rowsQ * kvHeads * 4, 14);
      const dOut = randomArray(rowsQ * heads * 4, 15);
      const t = new Tape();
      const [qs, ks, vs] = [t.leaves(q), t.leaves(k), t.leaves(v)];
      const ys = t.attention(qs, ks, vs, s.batch, s.seq, heads, kvHeads, 4);
      t.backward(t.weightedSum(ys, dOut));
      const { out, probs } = attentionForward(q, k, v, s);
      expectClose(out, t.values(ys), 'attn out', RTOL, ATOL);
      const g = attentionBackward(q, k, v, probs, dOut, s);
      expectClose(g.dq, t.grads(qs), 'dq', RTOL, ATOL);
      expectClose(g.dk, t.grads(ks), 'dk', RTOL, ATOL);
      expectClose(g.dv, t.grads(vs), 'dv', RTOL, ATOL);
    });
  }
  it('rejects heads not divisible by kvHeads', () => {
    expect(() => attentionForward(new Float32Array(12), new Float32Array(8), new Float32Array(8), { batch: 1, seq: 1, heads: 3, kvHeads: 2, headDim: 4 })).toThrow(/TCCL_ERR_INVALID_ARGUMENT.*multiple of kvHeads/);
  });
});
