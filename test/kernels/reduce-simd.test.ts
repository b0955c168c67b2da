// The WebAssembly SIMD float32 loops must give what the scalar definition gives, element for
// element, bit for bit (NaN: any NaN), across chunk boundaries and odd tails.
import { describe, expect, it } from 'vitest';
import { reduceInto } from '../../src/kernels/reduce.js';
import { reduceF32Simd, SIMD_MIN_ELEMENTS } from '../../src/kernels/reduce-simd.js';
import { prng } from '../support/prng.js';

const SPECIAL = [0, -0, 1, -1, Infinity, -Infinity, NaN, 1e-45, -1e-45, 3.4e38, -3.4e38, 1.1754942e-38];
const scalar: Record<'sum' | 'prod' | 'min' | 'max', (x: number, y: number) => number> = {
  sum: (x, y) => Math.fround(x + y),
  prod: (x, y) => Math.fround(x * y),
  min: (x, y) => Math.min(x, y),
  max: (x, y) => Math.max(x, y),
};

function operands(n: number, seed: number): [Float32Array, Float32Array] {
  const rand = prng(seed);
  const pick = () => (rand() < 0.1 ? SPECIAL[Math.floor(rand() * SPECIAL.length)] : (rand() * 2 - 1) * 10 ** Math.floor(rand() * 8 - 4));
  return [Float32Array.from({ length: n }, pick), Float32Array.from({ length: n }, pick)];
}

const bits = new Uint32Array(1);
const f = new Float32Array(bits.buffer);
const bitsOf = (x: number) => { f[0] = x; return bits[0]; };

describe('float32 reductions on WebAssembly SIMD', () => {
  for (const op of ['sum', 'prod', 'min', 'max'] as const) {
    it(`${op}: equals the scalar definition bit for bit (specials, chunk edges, tails)`, () => {
      for (const n of [SIMD_MIN_ELEMENTS, SIMD_MIN_ELEMENTS + 7, 8192, 8192 * 2 + 5, 40_011]) {
        const [a, b] = operands(n, n * 31 + op.length);
        const want = a.map((x, i) => scalar[op](x, b[i]));
        const got = a.slice();
        reduceInto('float32', op, got, b);
        for (let i = 0; i < n; i++) {
          if (Number.isNaN(want[i])) expect(Number.isNaN(got[i]), `${op} n=${n} i=${i}`).toBe(true);
          else if (bitsOf(got[i]) !== bitsOf(want[i])) expect(`${op} n=${n} i=${i}: ${a[i]} ${op} ${b[i]} = ${got[i]}`).toBe(`${want[i]}`);
        }
      }
    });
  }

  it('does the multiple-of-16 prefix and leaves the tail to the caller', () => {
    const a = new Float32Array(37).fill(1);
    const b = new Float32Array(37).fill(2);
    expect(reduceF32Simd('sum', a, b)).toBe(32);
    expect([a[31], a[32]]).toEqual([3, 1]);
  });
});
