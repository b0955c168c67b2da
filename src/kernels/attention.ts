/**
 * Causal scaled-dot-product attention with grouped key/value heads (GQA), forward and
 * backward. Layout is token-major, as a QKV projection produces it:
 *   q, out: [batch·seq, heads·headDim]     k, v: [batch·seq, kvHeads·headDim]
 * Query head h reads key/value group ⌊h / (heads/kvHeads)⌋. The forward pass returns the
 * attention probabilities [batch, heads, seq, seq] for the backward pass. Sums run in float64.
 */

import { invalidArgument } from '../errors.js';

export interface AttentionShape {
  batch: number;
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
}

function check(s: AttentionShape): number {
  if (s.kvHeads < 1 || s.heads % s.kvHeads !== 0) {
    throw invalidArgument(`attention: heads (${s.heads}) must be a multiple of kvHeads (${s.kvHeads})`, { op: 'attention' });
  }
  return s.heads / s.kvHeads;
}

export function attentionForward(q: Float32Array, k: Float32Array, v: Float32Array, s: AttentionShape, out: Float32Array = new Float32Array(s.batch * s.seq * s.heads * s.headDim)): { out: Float32Array; probs: Float32Array } {
  const group = check(s);
  const { batch, seq, heads, kvHeads, headDim: d } = s;
  const qStride = heads * d;
  const kvStride = kvHeads * d;
  const scale = 1 / Math.sqrt(d);
  const probs = new Float32Array(batch * heads * seq * seq);
  const row = new Float64Array(seq);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const kvOff = Math.floor(h / group) * d;
      for (let i = 0; i < seq; i++) {
        const qi = (b * seq + i) * qStride + h * d;
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          const kj = (b * seq + j) * kvStride + kvOff;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[qi + c] * k[kj + c];
          row[j] = dot * scale;
          if (row[j] > max) max = row[j];
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) {
          row[j] = Math.exp(row[j] - max);
          sum += row[j];
        }
        const pOff = ((b * heads + h) * seq + i) * seq;
        for (let j = 0; j <= i; j++) probs[pOff + j] = row[j] / sum;
        for (let c = 0; c < d; c++) {
          let acc = 0;
          for (let j = 0; j <= i; j++) acc += probs[pOff + j] * v[(b * seq + j) * kvStride + kvOff + c];
          out[qi + c] = acc;
        }
      }
    }
  }
  return { out, probs };
}

/** Gradients dq, dk, dv (overwritten) from dOut and the saved probabilities. */
export function attentionBackward(q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array, dOut: Float32Array, s: AttentionShape): { dq: Float32Array; dk: Float32Array; dv: Float32Array } {
  const group = check(s);
  const { batch, seq, heads, kvHeads, headDim: d } = s;
  const qStride = heads * d;
  const kvStride = kvHeads * d;
  const scale = 1 / Math.sqrt(d);
  const dq = new Float32Array(q.length);
  // dk, dv gather contributions from several query heads and rows: accumulate in float64.
  const dk64 = new Float64Array(k.length);
  const dv64 = new Float64Array(v.length);
  const dP = new Float64Array(seq);
  const dq64 = new Float64Array(d);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const kvOff = Math.floor(h / group) * d;
      for (let i = 0; i < seq; i++) {
        const qi = (b * seq + i) * qStride + h * d;
        const pOff = ((b * heads + h) * seq + i) * seq;
        let dot = 0;
        for (let j = 0; j <= i; j++) {
          const vj = (b * seq + j) * kvStride + kvOff;
          let acc = 0;
          for (let c = 0; c < d; c++) {
            acc += dOut[qi + c] * v[vj + c];
            dv64[vj + c] += probs[pOff + j] * dOut[qi + c];
          }
          dP[j] = acc;
          dot += acc * probs[pOff + j];
        }
        dq64.fill(0);
        for (let j = 0; j <= i; j++) {
          const dS = probs[pOff + j] * (dP[j] - dot) * scale;
          const kj = (b * seq + j) * kvStride + kvOff;
          for (let c = 0; c < d; c++) {
            dq64[c] += dS * k[kj + c];
            dk64[kj + c] += dS * q[qi + c];
          }
        }
        for (let c = 0; c < d; c++) dq[qi + c] = dq64[c];
      }
    }
  }
  return { dq, dk: Float32Array.from(dk64), dv: Float32Array.from(dv64) };
}
