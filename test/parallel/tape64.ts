import { prng } from '../support/prng.js';

/**
 * A scalar reverse-mode autodiff tape in float64: the dense reference every kernel and
 * parallel layer is checked against. Each node stores its value and up to two parents with
 * local derivatives; backward() walks the tape once in reverse. Slow but exact to float64,
 * and independent of the kernels under test (no shared code).
 */
export class Tape {
  readonly val: number[] = [];
  private readonly p1: number[] = [];
  private readonly g1: number[] = [];
  private readonly p2: number[] = [];
  private readonly g2: number[] = [];
  grad: Float64Array = new Float64Array(0);

  private push(v: number, p1 = -1, g1 = 0, p2 = -1, g2 = 0): number {
    this.val.push(v);
    this.p1.push(p1);
    this.g1.push(g1);
    this.p2.push(p2);
    this.g2.push(g2);
    return this.val.length - 1;
  }
  leaf(v: number): number { return this.push(v); }
  leaves(a: ArrayLike<number>): number[] { return Array.from(a, (v) => this.leaf(v)); }
  const(v: number): number { return this.push(v); }
  add(a: number, b: number): number { return this.push(this.val[a] + this.val[b], a, 1, b, 1); }
  sub(a: number, b: number): number { return this.push(this.val[a] - this.val[b], a, 1, b, -1); }
  mul(a: number, b: number): number { return this.push(this.val[a] * this.val[b], a, this.val[b], b, this.val[a]); }
  scale(a: number, c: number): number { return this.push(this.val[a] * c, a, c); }
  addc(a: number, c: number): number { return this.push(this.val[a] + c, a, 1); }
  div(a: number, b: number): number {
    const vb = this.val[b];
    return this.push(this.val[a] / vb, a, 1 / vb, b, -this.val[a] / (vb * vb));
  }
  exp(a: number): number { const e = Math.exp(this.val[a]); return this.push(e, a, e); }
  log(a: number): number { return this.push(Math.log(this.val[a]), a, 1 / this.val[a]); }
  tanh(a: number): number { const t = Math.tanh(this.val[a]); return this.push(t, a, 1 - t * t); }
  sqrt(a: number): number { const s = Math.sqrt(this.val[a]); return this.push(s, a, 0.5 / s); }
  sigmoid(a: number): number { const s = 1 / (1 + Math.exp(-this.val[a])); return this.push(s, a, s * (1 - s)); }
  sum(xs: number[]): number {
    let acc = xs[0];
    for (let i = 1; i < xs.length; i++) acc = this.add(acc, xs[i]);
    return acc;
  }
  dot(xs: number[], ys: number[]): number { return this.sum(xs.map((x, i) => this.mul(x, ys[i]))); }
  /** Σ nodes[i]·weights[i] with constant weights: the "upstream gradient" trick. */
  weightedSum(nodes: number[], weights: ArrayLike<number>): number {
    return this.sum(nodes.map((n, i) => this.scale(n, weights[i])));
  }
  backward(out: number): void {
    const g = new Float64Array(this.val.length);
    g[out] = 1;
    for (let i = out; i >= 0; i--) {
      const gi = g[i];
      if (gi === 0) continue;
      if (this.p1[i] >= 0) g[this.p1[i]] += gi * this.g1[i];
      if (this.p2[i] >= 0) g[this.p2[i]] += gi * this.g2[i];
    }
    this.grad = g;
  }
  values(nodes: number[]): Float64Array { return Float64Array.from(nodes, (n) => this.val[n]); }
  grads(nodes: number[]): Float64Array { return Float64Array.from(nodes, (n) => this.grad[n]); }

  // ---- dense reference layers on node arrays (row-major)

  /** [m×k]·[k×n]. */
  matmul(a: number[], b: number[], m: number, k: number, n: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const terms: number[] = [];
        for (let t = 0; t < k; t++) terms.push(this.mul(a[i * k + t], b[t * n + j]));
        out.push(this.sum(terms));
      }
    }
    return out;
  }
  addBias(y: number[], bias: number[], cols: number): number[] {
    return y.map((v, i) => this.add(v, bias[i % cols]));
  }
  gelu(x: number[]): number[] {
    const c = Math.sqrt(2 / Math.PI);
    return x.map((v) => {
      const cube = this.mul(this.mul(v, v), v);
      const inner = this.scale(this.add(v, this.scale(cube, 0.044715)), c);
      return this.mul(this.scale(v, 0.5), this.addc(this.tanh(inner), 1));
    });
  }
  silu(x: number[]): number[] { return x.map((v) => this.mul(v, this.sigmoid(v))); }
  softmaxRow(xs: number[]): number[] {
    const max = Math.max(...xs.map((x) => this.val[x])); // a constant shift: no gradient
    const e = xs.map((x) => this.exp(this.addc(x, -max)));
    const s = this.sum(e);
    return e.map((v) => this.div(v, s));
  }
  layerNorm(x: number[], gamma: number[], beta: number[] | undefined, rows: number, cols: number, eps: number): number[] {
    const out: number[] = [];
    for (let r = 0; r < rows; r++) {
      const row = x.slice(r * cols, r * cols + cols);
      const mean = this.scale(this.sum(row), 1 / cols);
      const cen = row.map((v) => this.sub(v, mean));
      const variance = this.scale(this.sum(cen.map((v) => this.mul(v, v))), 1 / cols);
      const rstd = this.div(this.const(1), this.sqrt(this.addc(variance, eps)));
      cen.forEach((v, c) => {
        const y = this.mul(this.mul(v, rstd), gamma[c]);
        out.push(beta ? this.add(y, beta[c]) : y);
      });
    }
    return out;
  }
  rmsNorm(x: number[], gamma: number[], rows: number, cols: number, eps: number): number[] {
    const out: number[] = [];
    for (let r = 0; r < rows; r++) {
      const row = x.slice(r * cols, r * cols + cols);
      const ms = this.scale(this.sum(row.map((v) => this.mul(v, v))), 1 / cols);
      const rr = this.div(this.const(1), this.sqrt(this.addc(ms, eps)));
      row.forEach((v, c) => out.push(this.mul(this.mul(v, rr), gamma[c])));
    }
    return out;
  }
  /** Causal GQA attention, token-major layout as in src/kernels/attention.ts. */
  attention(q: number[], k: number[], v: number[], batch: number, seq: number, heads: number, kvHeads: number, d: number): number[] {
    const out = new Array<number>(batch * seq * heads * d);
    const group = heads / kvHeads;
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const g = Math.floor(h / group);
        for (let i = 0; i < seq; i++) {
          const qi = q.slice((b * seq + i) * heads * d + h * d, (b * seq + i) * heads * d + h * d + d);
          const scores: number[] = [];
          for (let j = 0; j <= i; j++) {
            const kj = k.slice((b * seq + j) * kvHeads * d + g * d, (b * seq + j) * kvHeads * d + g * d + d);
            scores.push(this.scale(this.dot(qi, kj), 1 / Math.sqrt(d)));
          }
          const p = this.softmaxRow(scores);
          for (let c = 0; c < d; c++) {
            const terms = p.map((pj, j) => this.mul(pj, v[(b * seq + j) * kvHeads * d + g * d + c]));
            out[(b * seq + i) * heads * d + h * d + c] = this.sum(terms);
          }
        }
      }
    }
    return out;
  }
  /** Mean cross-entropy over rows of logits [rows×vocab]. */
  crossEntropy(logits: number[], targets: ArrayLike<number>, rows: number, vocab: number): number {
    const losses: number[] = [];
    for (let r = 0; r < rows; r++) {
      const row = logits.slice(r * vocab, r * vocab + vocab);
      const max = Math.max(...row.map((x) => this.val[x]));
      const lse = this.addc(this.log(this.sum(row.map((x) => this.exp(this.addc(x, -max))))), max);
      losses.push(this.sub(lse, row[targets[r]]));
    }
    return this.scale(this.sum(losses), 1 / rows);
  }
}

/** Deterministic uniform(-scale, scale) float32 values from the shared seeded PRNG. */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const next = prng(seed);
  return Float32Array.from({ length: n }, () => (2 * next() - 1) * scale);
}

/** Assert |got − want| ≤ atol + rtol·|want| elementwise; the message names the worst element. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = 1e-5, atol = 1e-6): void {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length} != ${want.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < got.length; i++) {
    const excess = Math.abs(got[i] - want[i]) - (atol + rtol * Math.abs(want[i]));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) throw new Error(`${what}: element ${worst} is ${got[worst]}, reference ${want[worst]} (rtol ${rtol}, atol ${atol})`);
}
