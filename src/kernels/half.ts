/**
 * float16 / bfloat16 <-> float32 (JS number) conversion, round-to-nearest-even.
 *
 * Encoders take any JS number and round it once, straight from its float64 bits, so there is
 * no double rounding (float64 -> float32 -> half would be wrong on some ties). A float32 input
 * is a float64 too, so `f32ToF16(Math.fround(x))` is the exact float32 -> float16 rounding.
 * Overflow goes to ±inf, underflow to signed zero through the subnormals, NaN stays NaN
 * (quiet bit set, top payload bits kept). Decoders are exact.
 */

import { invalidArgument } from '../errors.js';

const f64 = new Float64Array(1);
const w64 = new Uint32Array(f64.buffer);
const f32 = new Float32Array(1);
const w32 = new Uint32Array(f32.buffer);
// Word order of a float64 in memory follows the platform's endianness.
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const HI = LITTLE ? 1 : 0;
const LO = LITTLE ? 0 : 1;

// ---------------------------------------------------------------- float16

/** float16 bits of `x`, rounded to nearest even. */
export function f32ToF16(x: number): number {
  f64[0] = x;
  const hi = w64[HI];
  const lo = w64[LO];
  const sign = (hi >>> 16) & 0x8000;
  const exp = (hi >>> 20) & 0x7ff;
  const mant = hi & 0xfffff; // top 20 of the 52 mantissa bits; `lo` holds the rest (sticky)
  if (exp === 0x7ff) return (mant | lo) === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 10);
  const e = exp - 1008; // rebias 1023 -> 15
  if (e >= 31) return sign | 0x7c00;
  if (e >= 1) {
    const h = (e << 10) | (mant >>> 10);
    const rem = mant & 0x3ff;
    // A carry out of the mantissa bumps the exponent; from 30 it lands exactly on inf.
    return sign | (rem > 0x200 || (rem === 0x200 && (lo !== 0 || (h & 1) !== 0)) ? h + 1 : h);
  }
  if (e < -10) return sign; // below half the smallest subnormal (2^-25): rounds to zero
  // Subnormal result: count in units of 2^-24.
  const m = mant | 0x100000;
  const shift = 11 - e;
  const h = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (rem > half || (rem === half && (lo !== 0 || (h & 1) !== 0)) ? h + 1 : h);
}

/**
 * Same rounding as f32ToF16, from the raw bits of a float32 (the array and reduce fast path).
 * The common normal case is branch-free: rebias and add 0xfff + lsb, so a carry out of the
 * mantissa bumps the exponent (and from the top binade lands exactly on inf).
 */
export function f32BitsToF16(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const a = b & 0x7fffffff;
  if (a >= 0x47800000) return a > 0x7f800000 ? sign | 0x7e00 | ((a >>> 13) & 0x3ff) : sign | 0x7c00; // ≥ 2^16, inf, NaN
  if (a >= 0x38800000) return sign | ((a - 0x37fff001 + ((a >>> 13) & 1)) >>> 13); // normal: -(112 << 23) + 0xfff
  return sign | f32BitsToF16Small(a);
}

/** |x| < 2^-14 (bits without sign): a subnormal or zero float16, counted in units of 2^-24. Kept out of line so the hot path inlines. */
function f32BitsToF16Small(a: number): number {
  const e = a >>> 23;
  if (e < 102) return 0; // below 2^-25: rounds to zero
  const m = (a & 0x7fffff) | 0x800000;
  const shift = 126 - e;
  const h = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rem > half || (rem === half && (h & 1) !== 0) ? h + 1 : h;
}

let F16_TABLE: Float32Array | undefined;

/** All 65536 float16 values decoded once (256 KiB): decoding is then one load. */
function buildF16Table(): Float32Array {
  const t = new Float32Array(65536);
  const bits = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = (sign ? -mant : mant) * 2 ** -24; // zero and subnormals (keeps -0)
    else if (exp === 31) bits[h] = sign | 0x7f800000 | (mant << 13); // inf, NaN with payload
    else bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
  }
  F16_TABLE = t;
  return t;
}

/** The float16 decode table, indexed by bit pattern (for hot loops). */
export function f16Table(): Float32Array {
  return F16_TABLE ?? buildF16Table();
}

/** Value of float16 bits `h`. */
export function f16ToF32(h: number): number {
  return (F16_TABLE ?? buildF16Table())[h & 0xffff];
}

/** Decode float16 bits into float32 (`dst` defaults to a new array). */
export function f16ToF32Array(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  checkLengths(src.length, dst.length);
  const t = F16_TABLE ?? buildF16Table();
  for (let i = 0; i < src.length; i++) dst[i] = t[src[i]];
  return dst;
}

/** Encode numbers as float16 bits. A Float32Array input takes the bit-level fast path. */
export function f32ToF16Array(src: Float32Array | Float64Array | ArrayLike<number>, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkLengths(src.length, dst.length);
  if (src instanceof Float32Array) {
    const b = new Uint32Array(src.buffer, src.byteOffset, src.length); // Float32Array is always 4-aligned
    for (let i = 0; i < b.length; i++) dst[i] = f32BitsToF16(b[i]);
  } else {
    for (let i = 0; i < src.length; i++) dst[i] = f32ToF16(src[i]);
  }
  return dst;
}

// ---------------------------------------------------------------- bfloat16

/** bfloat16 bits of `x`, rounded to nearest even (from float64, no double rounding). */
export function f32ToBf16(x: number): number {
  f64[0] = x;
  const hi = w64[HI];
  const lo = w64[LO];
  const sign = (hi >>> 16) & 0x8000;
  const exp = (hi >>> 20) & 0x7ff;
  const mant = hi & 0xfffff;
  if (exp === 0x7ff) return (mant | lo) === 0 ? sign | 0x7f80 : sign | 0x7fc0 | (mant >>> 13);
  const e = exp - 896; // rebias 1023 -> 127
  if (e >= 255) return sign | 0x7f80;
  if (e >= 1) {
    const h = (e << 7) | (mant >>> 13);
    const rem = mant & 0x1fff;
    return sign | (rem > 0x1000 || (rem === 0x1000 && (lo !== 0 || (h & 1) !== 0)) ? h + 1 : h);
  }
  if (e < -7) return sign; // below 2^-134, half the smallest bf16 subnormal
  const m = mant | 0x100000;
  const shift = 14 - e; // units of 2^-133
  const h = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (rem > half || (rem === half && (lo !== 0 || (h & 1) !== 0)) ? h + 1 : h);
}

/** bfloat16 from raw float32 bits: add-and-truncate RNE; NaN forced quiet so it stays NaN. */
export function f32BitsToBf16(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Value of bfloat16 bits `h` (exact: the top half of a float32). */
export function bf16ToF32(h: number): number {
  w32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** Decode bfloat16 bits into float32 (`dst` defaults to a new array). */
export function bf16ToF32Array(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  checkLengths(src.length, dst.length);
  const b = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) b[i] = src[i] << 16;
  return dst;
}

/** Encode numbers as bfloat16 bits. A Float32Array input takes the bit-level fast path. */
export function f32ToBf16Array(src: Float32Array | Float64Array | ArrayLike<number>, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkLengths(src.length, dst.length);
  if (src instanceof Float32Array) {
    const b = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < b.length; i++) dst[i] = f32BitsToBf16(b[i]);
  } else {
    for (let i = 0; i < src.length; i++) dst[i] = f32ToBf16(src[i]);
  }
  return dst;
}

function checkLengths(src: number, dst: number): void {
  if (src !== dst) throw invalidArgument(`half conversion: source has ${src} elements, destination ${dst}`);
}
