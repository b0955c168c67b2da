/**
 * Row softmax over a rows×cols Float32Array and its backward pass. The row maximum is
 * subtracted first, so large logits stay finite; sums run in float64.
 */

/** out[r] = softmax(x[r]) for each row. */
export function softmaxForward(x: Float32Array, rows: number, cols: number, out: Float32Array = new Float32Array(rows * cols)): Float32Array {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (x[o + c] > max) max = x[o + c];
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      const e = Math.exp(x[o + c] - max);
      out[o + c] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let c = 0; c < cols; c++) out[o + c] *= inv;
  }
  return out;
}

/** dx = y ⊙ (dy − Σ dy⊙y) per row, from the forward output y. */
export function softmaxBackward(y: Float32Array, dy: Float32Array, rows: number, cols: number, out: Float32Array = new Float32Array(rows * cols)): Float32Array {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += dy[o + c] * y[o + c];
    for (let c = 0; c < cols; c++) out[o + c] = y[o + c] * (dy[o + c] - dot);
  }
  return out;
}
