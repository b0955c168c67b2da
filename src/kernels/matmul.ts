/**
 * Float32 matrix multiply on the WebAssembly SIMD GEMM (wasm/gen-gemm.mjs), with the
 * transposed forms a backward pass needs:
 *   out[M×N] (+)= op(A)[M×K] · op(B)[K×N],   op(A) = Aᵀ if transA (A stored K×M),
 *                                            op(B) = Bᵀ if transB (B stored N×K).
 * For Y = X·W:  dX = dY·Wᵀ  -> matmul(dY, W, M, N, K, dX, { transB: true })
 *               dW += Xᵀ·dY -> matmul(X, dY, K, M, N, dW, { transA: true, accumulate: true })
 * The operands are packed (and zero padded) into wasm memory, so any layout costs one O(n²)
 * copy next to the O(n³) product. Synchronous and pure: one wasm instance per thread.
 */

import { invalidArgument } from '../errors.js';
import { GEMM_WASM_BASE64 } from './wasm/gemm-wasm.js';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** Add the product to `out` instead of overwriting it (gradient accumulation). */
  accumulate?: boolean;
}

// tsconfig's lib has no WebAssembly types: the three members used here, typed locally.
interface WasmMemory { readonly buffer: ArrayBuffer; grow(pages: number): number }
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface GemmInstance {
  memory: WasmMemory;
  gemm: (a: number, bp: number, c: number, m: number, n: number, k: number) => void;
}

let instance: GemmInstance | undefined;

function gemmInstance(): GemmInstance {
  if (!instance) {
    const module = new wasmApi.Module(Buffer.from(GEMM_WASM_BASE64, 'base64'));
    const exports = new wasmApi.Instance(module).exports as unknown as GemmInstance;
    instance = { memory: exports.memory, gemm: exports.gemm };
  }
  return instance;
}

const roundUp = (x: number, to: number) => Math.ceil(x / to) * to;

function checkDims(m: number, k: number, n: number): void {
  for (const [name, v] of [['M', m], ['K', k], ['N', n]] as const) {
    if (!Number.isInteger(v) || v < 0) throw invalidArgument(`matmul: ${name} must be a non-negative integer, got ${v}`, { op: 'matmul' });
  }
}

function checkLength(what: string, arr: Float32Array, need: number): void {
  if (arr.length < need) throw invalidArgument(`matmul: ${what} has ${arr.length} elements, needs ${need}`, { op: 'matmul' });
}

/** out (+)= op(A)·op(B); returns `out` (allocated M×N when not given). */
export function matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, out?: Float32Array, opts: MatmulOptions = {}): Float32Array {
  checkDims(m, k, n);
  checkLength('A', a, m * k);
  checkLength('B', b, k * n);
  const c = out ?? new Float32Array(m * n);
  checkLength('out', c, m * n);
  if (m === 0 || n === 0) return c;
  if (k === 0) {
    if (!opts.accumulate) c.fill(0, 0, m * n);
    return c;
  }
  const mp = roundUp(m, 4);
  const kp = roundUp(k, 4);
  const np = roundUp(n, 8);
  const g = gemmInstance();
  const aOff = 0;
  const bOff = aOff + mp * kp * 4;
  const cOff = bOff + kp * np * 4;
  const need = cOff + mp * np * 4;
  if (g.memory.buffer.byteLength < need) g.memory.grow(Math.ceil((need - g.memory.buffer.byteLength) / 65536));
  const mem = new Float32Array(g.memory.buffer);

  // A -> rows of Kp (padding zero), Mp rows.
  const ap = mem.subarray(aOff / 4, aOff / 4 + mp * kp);
  ap.fill(0);
  if (opts.transA) {
    for (let kk = 0; kk < k; kk++) {
      const row = kk * m;
      for (let i = 0; i < m; i++) ap[i * kp + kk] = a[row + i];
    }
  } else if (kp === k) {
    ap.set(a.subarray(0, m * k));
  } else {
    for (let i = 0; i < m; i++) ap.set(a.subarray(i * k, i * k + k), i * kp);
  }

  // B -> panels of 8 columns, each Kp×8 contiguous.
  const bp = mem.subarray(bOff / 4, bOff / 4 + kp * np);
  bp.fill(0);
  for (let j0 = 0; j0 < n; j0 += 8) {
    const panel = j0 * kp;
    const w = Math.min(8, n - j0);
    if (opts.transB) {
      for (let jj = 0; jj < w; jj++) {
        const row = (j0 + jj) * k;
        for (let kk = 0; kk < k; kk++) bp[panel + kk * 8 + jj] = b[row + kk];
      }
    } else {
      for (let kk = 0; kk < k; kk++) {
        const src = kk * n + j0;
        const dst = panel + kk * 8;
        for (let jj = 0; jj < w; jj++) bp[dst + jj] = b[src + jj];
      }
    }
  }

  g.gemm(aOff, bOff, cOff, mp, np, kp);

  const cp = mem.subarray(cOff / 4, cOff / 4 + mp * np);
  if (opts.accumulate) {
    for (let i = 0; i < m; i++) {
      const src = i * np;
      const dst = i * n;
      for (let j = 0; j < n; j++) c[dst + j] += cp[src + j];
    }
  } else if (np === n) {
    c.set(cp.subarray(0, m * n));
  } else {
    for (let i = 0; i < m; i++) c.set(cp.subarray(i * np, i * np + n), i * n);
  }
  return c;
}
