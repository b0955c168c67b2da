import { describe, expect, it } from 'vitest';
import { matmul } from '../../src/kernels/matmul.js';
import { isTcclError } from '../../src/errors.js';
import { randomArray, expectClose } from '../parallel/tape64.js';

/** float64 reference of op(A)·op(B). */
function ref(a: Float32Array, b: Float32Array, m: number, k: number, n: number, transA: boolean, transB: boolean): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += (transA ? a[t * m + i] : a[i * k + t]) * (transB ? b[j * k + t] : b[t * n + j]);
      out[i * n + j] = s;
    }
  }
  return out;
}

describe('matmul (wasm SIMD)', () => {
  // Shapes that hit every padding path (M % 4, K % 4, N % 8), exact multiples, M > MC (64)
  // row blocks and N > NC (128) column slabs.
  const shapes: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [4, 4, 8], [5, 9, 17], [64, 32, 48], [67, 130, 33], [130, 70, 9], [21, 36, 300]];
  for (const [m, k, n] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`${m}x${k}x${n} transA=${transA} transB=${transB}`, () => {
          const a = randomArray(m * k, m * 7 + k, 1);
          const b = randomArray(k * n, n * 13 + k, 1);
          const got = matmul(a, b, m, k, n, undefined, { transA, transB });
          expectClose(got, ref(a, b, m, k, n, transA, transB), 'C', 1e-5, 1e-5 * Math.sqrt(k));
        });
      }
    }
  }

  it('accumulates into out, and overwrites without accumulate', () => {
    const [m, k, n] = [6, 10, 11];
    const a = randomArray(m * k, 1);
    const b = randomArray(k * n, 2);
    const base = randomArray(m * n, 3);
    const out = Float32Array.from(base);
    matmul(a, b, m, k, n, out, { accumulate: true });
    const want = ref(a, b, m, k, n, false, false).map((v, i) => v + base[i]);
    expectClose(out, want, 'C+=', 1e-5, 1e-5);
    matmul(a, b, m, k, n, out);
    expectClose(out, ref(a, b, m, k, n, false, false), 'C=', 1e-5, 1e-5);
  });

  it('K = 0 gives zeros; M or N = 0 is a no-op', () => {
    const out = new Float32Array([1, 2, 3, 4]);
    matmul(new Float32Array(0), new Float32Array(0), 2, 0, 2, out);
    expect(Array.from(out)).toEqual([0, 0, 0, 0]);
    expect(matmul(new Float32Array(0), new Float32Array(5), 0, 1, 5).length).toBe(0);
  });

  it('rejects short buffers and bad sizes with TCCL_ERR_INVALID_ARGUMENT', () => {
    expect(() => matmul(new Float32Array(3), new Float32Array(4), 2, 2, 2)).toThrow(/A has 3 elements, needs 4/);
    try {
      matmul(new Float32Array(4), new Float32Array(4), 2, 2, 2.5);
      expect.unreachable();
    } catch (e) {
      expect(isTcclError(e, 'TCCL_ERR_INVALID_ARGUMENT')).toBe(true);
    }
  });

  it('is deterministic: the same inputs give bitwise the same output', () => {
    const a = randomArray(33 * 40, 5);
    const b = randomArray(40 * 21, 6);
    expect(matmul(a, b, 33, 40, 21)).toEqual(matmul(a, b, 33, 40, 21));
  });
});
