/**
 * LayerNorm and RMSNorm over the last dimension of a rows×cols Float32Array, with backward.
 * Forward returns the per-row statistics the backward pass needs (mean and 1/σ, or 1/rms);
 * statistics are computed in float64. Gradients of the affine weights accumulate (+=).
 */

export interface LayerNormSaved {
  mean: Float32Array;
  rstd: Float32Array;
}

/** y = (x − mean)/√(var + eps) · gamma + beta; beta may be omitted. */
export function layerNormForward(x: Float32Array, gamma: Float32Array, beta: Float32Array | undefined, rows: number, cols: number, eps = 1e-5, out: Float32Array = new Float32Array(rows * cols)): { y: Float32Array; saved: LayerNormSaved } {
  const mean = new Float32Array(rows);
  const rstd = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[o + c];
    const mu = s / cols;
    let v = 0;
    for (let c = 0; c < cols; c++) v += (x[o + c] - mu) * (x[o + c] - mu);
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) out[o + c] = (x[o + c] - mu) * rs * gamma[c] + (beta ? beta[c] : 0);
  }
  return { y: out, saved: { mean, rstd } };
}

/** dx (overwritten) and dGamma, dBeta (accumulated) from dy. */
export function layerNormBackward(x: Float32Array, gamma: Float32Array, saved: LayerNormSaved, dy: Float32Array, rows: number, cols: number, dGamma: Float32Array, dBeta: Float32Array | undefined, dx: Float32Array = new Float32Array(rows * cols)): Float32Array {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const mu = saved.mean[r];
    const rs = saved.rstd[r];
    // dxhat = dy·gamma; dx = rs·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat))
    let sumD = 0;
    let sumDX = 0;
    for (let c = 0; c < cols; c++) {
      const xhat = (x[o + c] - mu) * rs;
      const d = dy[o + c] * gamma[c];
      sumD += d;
      sumDX += d * xhat;
      dGamma[c] += dy[o + c] * xhat;
      if (dBeta) dBeta[c] += dy[o + c];
    }
    const mD = sumD / cols;
    const mDX = sumDX / cols;
    for (let c = 0; c < cols; c++) {
      const xhat = (x[o + c] - mu) * rs;
      dx[o + c] = rs * (dy[o + c] * gamma[c] - mD - xhat * mDX);
    }
  }
  return dx;
}

/** y = x / √(mean(x²) + eps) · gamma; returns 1/rms per row. */
export function rmsNormForward(x: Float32Array, gamma: Float32Array, rows: number, cols: number, eps = 1e-6, out: Float32Array = new Float32Array(rows * cols)): { y: Float32Array; rrms: Float32Array } {
  const rrms = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[o + c] * x[o + c];
    const rr = 1 / Math.sqrt(s / cols + eps);
    rrms[r] = rr;
    for (let c = 0; c < cols; c++) out[o + c] = x[o + c] * rr * gamma[c];
  }
  return { y: out, rrms };
}

/** dx (overwritten) and dGamma (accumulated) from dy. */
export function rmsNormBackward(x: Float32Array, gamma: Float32Array, rrms: Float32Array, dy: Float32Array, rows: number, cols: number, dGamma: Float32Array, dx: Float32Array = new Float32Array(rows * cols)): Float32Array {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const rr = rrms[r];
    // dx = rr·(g⊙dy) − x·rr³·mean(x⊙g⊙dy)
    let dot = 0;
    for (let c = 0; c < cols; c++) {
      dot += x[o + c] * gamma[c] * dy[o + c];
      dGamma[c] += dy[o + c] * x[o + c] * rr;
    }
    const k = (rr * rr * rr * dot) / cols;
    for (let c = 0; c < cols; c++) dx[o + c] = rr * gamma[c] * dy[o + c] - x[o + c] * k;
  }
  return dx;
}
