/**
 * Elementwise activations and their backward passes, on Float32Array:
 * GeLU (tanh approximation, as GPT-2 / Megatron use) and SiLU (x·σ(x), the SwiGLU gate).
 * Backward takes the forward input `x` and the upstream gradient `dy`; outputs may alias inputs.
 */

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/** y = 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))). */
export function geluForward(x: Float32Array, out: Float32Array = new Float32Array(x.length)): Float32Array {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    out[i] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + GELU_A * v * v * v)));
  }
  return out;
}

/** dx = dy · gelu'(x). */
export function geluBackward(x: Float32Array, dy: Float32Array, out: Float32Array = new Float32Array(x.length)): Float32Array {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    const t = Math.tanh(GELU_C * (v + GELU_A * v * v * v));
    const dInner = GELU_C * (1 + 3 * GELU_A * v * v);
    out[i] = dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * dInner);
  }
  return out;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** y = x·σ(x). */
export function siluForward(x: Float32Array, out: Float32Array = new Float32Array(x.length)): Float32Array {
  for (let i = 0; i < x.length; i++) out[i] = x[i] * sigmoid(x[i]);
  return out;
}

/** dx = dy · σ(x)(1 + x(1 − σ(x))). */
export function siluBackward(x: Float32Array, dy: Float32Array, out: Float32Array = new Float32Array(x.length)): Float32Array {
  for (let i = 0; i < x.length; i++) {
    const s = sigmoid(x[i]);
    out[i] = dy[i] * s * (1 + x[i] * (1 - s));
  }
  return out;
}

/** SwiGLU: y = silu(gate) ⊙ up. */
export function swigluForward(gate: Float32Array, up: Float32Array, out: Float32Array = new Float32Array(gate.length)): Float32Array {
  for (let i = 0; i < gate.length; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  return out;
}

/** Gradients of SwiGLU into dGate and dUp (overwritten). */
export function swigluBackward(gate: Float32Array, up: Float32Array, dy: Float32Array, dGate: Float32Array, dUp: Float32Array): void {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    const s = sigmoid(g);
    dUp[i] = dy[i] * g * s;
    dGate[i] = dy[i] * up[i] * s * (1 + g * (1 - s));
  }
}
