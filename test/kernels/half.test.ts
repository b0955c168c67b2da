import { describe, expect, it } from 'vitest';
import {
  bf16ToF32, bf16ToF32Array, f16ToF32, f16ToF32Array, f32BitsToBf16, f32BitsToF16, f32ToBf16, f32ToBf16Array,
  f32ToF16, f32ToF16Array,
} from '../../src/kernels/half.js';
import { prngUint32 } from '../support/prng.js';

// ---- independent references (no bit tricks): decode by formula, encode by search over all values.

function refF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
function refBf16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 0) return s * m * 2 ** -133;
  if (e === 255) return m ? NaN : s * Infinity;
  return s * (1 + m / 128) * 2 ** (e - 127);
}

/** Nearest-even encoding by binary search over the positive finite values (maxBits) plus the overflow step. */
function refEncode(x: number, decode: (h: number) => number, maxBits: number, infBits: number, overflowAt: number): number {
  if (Number.isNaN(x)) return -1;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= overflowAt) return sign | infBits; // overflowAt is the tie point to inf, and inf's mantissa is even
  let lo = 0;
  let hi = maxBits;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (decode(mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  if (decode(lo) === a || lo === maxBits) return sign | lo;
  const m = (decode(lo) + decode(lo + 1)) / 2; // exact: one more bit than the format
  if (a < m) return sign | lo;
  if (a > m) return sign | (lo + 1);
  return sign | (lo & 1 ? lo + 1 : lo);
}
const F16_MAX = 0x7bff;
const F16_OVERFLOW = (65504 + 65536) / 2;
const BF16_MAX = 0x7f7f;
const BF16_OVERFLOW = (refBf16(BF16_MAX) + 2 ** 128) / 2;
const refToF16 = (x: number) => refEncode(x, refF16, F16_MAX, 0x7c00, F16_OVERFLOW);
const refToBf16 = (x: number) => refEncode(x, refBf16, BF16_MAX, 0x7f80, BF16_OVERFLOW);

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
const nextUp = (x: number) => { f64[0] = x; u64[0] += x >= 0 ? 1n : -1n; return f64[0]; };
const nextDown = (x: number) => { f64[0] = x; u64[0] += x > 0 ? -1n : 1n; return f64[0]; };
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const f32FromBits = (b: number) => { u32[0] = b; return f32[0]; };
const f32Bits = (x: number) => { f32[0] = x; return u32[0]; };

const seeded = prngUint32;

describe('float16', () => {
  it('decodes all 65536 bit patterns exactly (incl. -0, subnormals, inf, NaN)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const arr = f16ToF32Array(all);
    for (let h = 0; h < 65536; h++) {
      const ref = refF16(h);
      if (Number.isNaN(ref)) {
        expect(Number.isNaN(f16ToF32(h))).toBe(true);
      } else if (!Object.is(f16ToF32(h), ref) || !Object.is(arr[h], ref)) {
        throw new Error(`f16 0x${h.toString(16)} decoded to ${f16ToF32(h)}, expected ${ref}`);
      }
    }
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x7bff)).toBe(65504);
  });

  it('round-trips all 65536 bit patterns; NaNs stay NaN with sign and quiet bit', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16Array(f16ToF32Array(all));
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      const want = isNaN ? h | 0x200 : h;
      if (f32ToF16(f16ToF32(h)) !== want || back[h] !== want) {
        throw new Error(`f16 0x${h.toString(16)} round-tripped to 0x${f32ToF16(f16ToF32(h)).toString(16)}`);
      }
    }
  });

  it('rounds every midpoint to even and every neighbour of a midpoint the right way (both signs)', () => {
    for (let h = 0; h < F16_MAX; h++) {
      const lo = refF16(h);
      const hi = refF16(h + 1);
      const mid = (lo + hi) / 2;
      const even = h & 1 ? h + 1 : h;
      for (const s of [1, -1]) {
        const sb = s < 0 ? 0x8000 : 0;
        const got = [f32ToF16(s * mid), f32ToF16(nextUp(s * mid)), f32ToF16(nextDown(s * mid))];
        const up = s > 0 ? [sb | even, sb | (h + 1), sb | h] : [sb | even, sb | h, sb | (h + 1)];
        // nextUp/nextDown move away from / toward zero depending on sign
        if (got[0] !== up[0] || got[1] !== up[1] || got[2] !== up[2]) {
          throw new Error(`midpoint of 0x${h.toString(16)}/0x${(h + 1).toString(16)} (sign ${s}): got ${got.map((g) => g.toString(16))}`);
        }
        // The float32-bits path on the same (float32-exact) midpoint and its float32 neighbours.
        const mb = f32Bits(s * mid);
        const got32 = [f32BitsToF16(mb), f32BitsToF16(mb + 1), f32BitsToF16(mb - 1)];
        const want32 = [sb | even, sb | (h + 1), sb | h];
        if (got32.join() !== want32.join()) throw new Error(`f32 midpoint of 0x${h.toString(16)}: got ${got32}`);
      }
    }
  });

  it('handles overflow, underflow and the subnormal edges', () => {
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65519.99)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00); // tie goes to the even neighbour, which is inf
    expect(f32ToF16(1e9)).toBe(0x7c00);
    expect(f32ToF16(-1e9)).toBe(0xfc00);
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    expect(f32ToF16(2 ** -25)).toBe(0); // exact half of the smallest subnormal: ties to even (0)
    expect(f32ToF16(nextUp(2 ** -25))).toBe(1);
    expect(f32ToF16(-(2 ** -25))).toBe(0x8000);
    expect(f32ToF16(1.5 * 2 ** -24)).toBe(2); // tie between 1 and 2 -> 2
    expect(f32ToF16(2.5 * 2 ** -24)).toBe(2);
    expect(f32ToF16(2 ** -14 - 2 ** -25)).toBe(0x0400); // largest subnormal + half ulp rounds up into the normals
    expect(f32ToF16(1e-30)).toBe(0);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(Number.MIN_VALUE)).toBe(0);
    const nan = f32ToF16(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
    expect(f32BitsToF16(0x7f800001) & 0x3ff).not.toBe(0); // NaN whose payload is only in dropped bits
  });

  it('rounds doubles once (no double rounding through float32)', () => {
    // 1 + 2^-11 is the midpoint between 1 and the next half; a hair above must round up even
    // though rounding to float32 first would land exactly on the midpoint and round to even (down).
    const x = 1 + 2 ** -11 + 2 ** -40;
    expect(Math.fround(x)).toBe(1 + 2 ** -11);
    expect(f32ToF16(x)).toBe(0x3c01);
    expect(f32ToF16(Math.fround(x))).toBe(0x3c00);
  });

  it('matches the search reference on random float32 and float64 inputs; array form = scalar form', () => {
    const rnd = seeded(42);
    const src = new Float32Array(100_000);
    for (let i = 0; i < src.length; i++) {
      // Bias exponents toward the float16 range so most cases exercise real rounding.
      const b = rnd();
      src[i] = f32FromBits(i % 2 ? b : (b & 0x807fffff) | ((100 + (rnd() % 50)) << 23));
    }
    const arr = f32ToF16Array(src);
    for (let i = 0; i < src.length; i++) {
      const want = refToF16(src[i]);
      const got = f32ToF16(src[i]);
      if (want === -1) { expect((got & 0x7c00) === 0x7c00 && (got & 0x3ff) !== 0).toBe(true); continue; }
      if (got !== want || arr[i] !== want || f32BitsToF16(f32Bits(src[i])) !== want) {
        throw new Error(`f32 ${src[i]}: got 0x${got.toString(16)} / 0x${arr[i].toString(16)}, expected 0x${want.toString(16)}`);
      }
    }
    for (let i = 0; i < 50_000; i++) {
      const x = (rnd() / 2 ** 32 - 0.5) * 2 ** ((rnd() % 50) - 30);
      const got = f32ToF16(x);
      if (got !== refToF16(x)) throw new Error(`f64 ${x}: got 0x${got.toString(16)}, expected 0x${refToF16(x).toString(16)}`);
    }
    const f64src = Float64Array.from(src);
    expect(Array.from(f32ToF16Array(f64src))).toEqual(Array.from(arr));
  });
});

describe('bfloat16', () => {
  it('decodes and round-trips all 65536 bit patterns; NaN stays NaN', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const dec = bf16ToF32Array(all);
    const back = f32ToBf16Array(dec);
    for (let h = 0; h < 65536; h++) {
      const ref = refBf16(h);
      if (Number.isNaN(ref)) {
        if (!Number.isNaN(bf16ToF32(h)) || !Number.isNaN(dec[h])) throw new Error(`bf16 0x${h.toString(16)} should decode to NaN`);
        expect(back[h]).toBe(h | 0x40);
        expect(f32ToBf16(bf16ToF32(h))).toBe(h | 0x40);
        continue;
      }
      if (!Object.is(bf16ToF32(h), ref) || !Object.is(dec[h], ref)) throw new Error(`bf16 0x${h.toString(16)} decoded to ${bf16ToF32(h)}`);
      if (back[h] !== h || f32ToBf16(ref) !== h) throw new Error(`bf16 0x${h.toString(16)} round-tripped to 0x${back[h].toString(16)}`);
    }
  });

  it('rounds float32 ties to even for every bfloat16 pair, neighbours the right way', () => {
    for (let h = 0; h < BF16_MAX; h++) {
      for (const sb of [0, 0x8000]) {
        const mid = ((sb | h) << 16 | 0x8000) >>> 0;
        const even = h & 1 ? h + 1 : h;
        const got = [f32BitsToBf16(mid), f32BitsToBf16(mid + 1), f32BitsToBf16(mid - 1)];
        const want = [sb | even, sb | (h + 1), sb | h];
        if (got.join() !== want.join()) throw new Error(`bf16 tie after 0x${h.toString(16)}: got ${got}`);
        const x = f32FromBits(mid);
        if (f32ToBf16(x) !== want[0] || f32ToBf16(f32FromBits(mid + 1)) !== want[1]) throw new Error(`f64 path tie after 0x${h.toString(16)}`);
      }
    }
  });

  it('handles overflow, NaN payloads and subnormals', () => {
    expect(f32BitsToBf16(0x7f7f7fff)).toBe(0x7f7f);
    expect(f32BitsToBf16(0x7f7f8000)).toBe(0x7f80); // tie with an odd max rounds to inf
    expect(f32ToBf16(3.4028234663852886e38)).toBe(0x7f80);
    expect(f32ToBf16(-Infinity)).toBe(0xff80);
    expect(f32ToBf16(1e39)).toBe(0x7f80); // beyond float32, straight from float64
    expect(f32BitsToBf16(0x7f800001)).toBe(0x7fc0); // payload only in dropped bits: still NaN, not inf
    expect(f32BitsToBf16(0xff800001)).toBe(0xffc0);
    expect(Number.isNaN(bf16ToF32(f32ToBf16(NaN)))).toBe(true);
    expect(f32BitsToBf16(0x00008000)).toBe(0); // subnormal tie to even
    expect(f32BitsToBf16(0x00018000)).toBe(2);
    expect(f32ToBf16(2 ** -134)).toBe(0);
    expect(f32ToBf16(nextUp(2 ** -134))).toBe(1);
    expect(f32ToBf16(-0)).toBe(0x8000);
    // Once, from float64: a hair above a tie rounds up.
    const x = 1 + 2 ** -8 + 2 ** -40;
    expect(f32ToBf16(x)).toBe(0x3f81);
    expect(f32ToBf16(Math.fround(x))).toBe(0x3f80);
  });

  it('matches the search reference on random inputs; array form = scalar form', () => {
    const rnd = seeded(7);
    const src = new Float32Array(100_000);
    for (let i = 0; i < src.length; i++) src[i] = f32FromBits(rnd());
    const arr = f32ToBf16Array(src);
    for (let i = 0; i < src.length; i++) {
      const want = refToBf16(src[i]);
      const got = f32ToBf16(src[i]);
      if (want === -1) { expect(Number.isNaN(bf16ToF32(got)) && Number.isNaN(bf16ToF32(arr[i]))).toBe(true); continue; }
      if (got !== want || arr[i] !== want) throw new Error(`f32 ${src[i]}: got 0x${got.toString(16)}, expected 0x${want.toString(16)}`);
    }
    for (let i = 0; i < 50_000; i++) {
      const x = (rnd() / 2 ** 32 - 0.5) * 2 ** ((rnd() % 300) - 150);
      if (f32ToBf16(x) !== refToBf16(x)) throw new Error(`f64 ${x}: got 0x${f32ToBf16(x).toString(16)}, expected 0x${refToBf16(x).toString(16)}`);
    }
  });

  it('rejects mismatched array lengths', () => {
    expect(() => f32ToBf16Array(new Float32Array(2), new Uint16Array(3))).toThrow(/TCCL_ERR_INVALID_ARGUMENT/);
    expect(() => f16ToF32Array(new Uint16Array(2), new Float32Array(1))).toThrow(/TCCL_ERR_INVALID_ARGUMENT/);
  });
});
