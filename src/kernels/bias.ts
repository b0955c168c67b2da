/** Bias add over rows and its gradient (column sums), on row-major rows×cols Float32Arrays. */

/** y[r][c] += bias[c]. */
export function addBias(y: Float32Array, bias: Float32Array, rows: number, cols: number): Float32Array {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) y[o + c] += bias[c];
  }
  return y;
}

/** dBias[c] += Σ_r dy[r][c]. */
export function biasGrad(dy: Float32Array, rows: number, cols: number, dBias: Float32Array): Float32Array {
  for (let c = 0; c < cols; c++) {
    let s = 0;
    for (let r = 0; r < rows; r++) s += dy[r * cols + c];
    dBias[c] += s;
  }
  return dBias;
}
