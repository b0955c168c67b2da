/**
 * Verifiable benchmark data, shared bit for bit with bench/mpi/mpibench.c.
 *
 * Rank r's element at global index i (its position in the rank's whole send buffer) comes
 * from h = fmix32(seed·0x9e3779b9 + r·0x632be5ab + i), a bijective 32-bit hash, so neighbours
 * and blocks differ and a misplaced element, block or rank is caught. For reductions the hash
 * is cut to a range where every partial result is exact in the dtype, so the expected result
 * is computed locally, independently of tccl's kernels, and compared bit for bit whatever
 * order an algorithm combines in. Integer arithmetic wraps (associative too).
 */
import { DTYPE_BYTES, type DType, type TypedArray } from '../../src/dtype.js';
import { f32ToBf16, f32ToF16 } from '../../src/kernels/half.js';
import type { ReduceOpName } from '../../src/kernels/reduce.js';
import { allocArray } from '../../src/kernels/view.js';

export const fmix32 = (x: number): number => {
  x ^= x >>> 16; x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13; x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
};
export const elementHash = (seed: number, rank: number, i: number): number =>
  fmix32((Math.imul(seed, 0x9e3779b9) + Math.imul(rank, 0x632be5ab) + i) >>> 0);

const PROD_SET = [1, -1, 2, -2, 0.5, -0.5]; // products over <= 2^(exponent range) ranks stay exact powers of two
const isIntType = (d: DType) => d === 'int32' || d === 'int8' || d === 'uint8' || d === 'int64';

/**
 * Bits of the hash kept for float data: values lie in [-2^(b-1), 2^(b-1)), so a sum over n
 * ranks stays within the dtype's exact-integer range (2^24 float32, 2^11 float16, 2^8 bf16).
 */
export function floatBits(dtype: DType, op: ReduceOpName | undefined, nranks: number): number {
  const grows = op === 'sum' || op === 'avg';
  const g = grows ? Math.ceil(Math.log2(nranks)) : 0;
  const top = dtype === 'float32' ? 25 : dtype === 'float16' ? 12 : dtype === 'bfloat16' ? 9 : 32;
  return Math.max(1, top - g);
}

/** Rank `rank`'s value at global index i, as a JS number (bigint for int64). */
export function benchValue(dtype: DType, op: ReduceOpName | undefined, nranks: number, seed: number, rank: number, i: number): number | bigint {
  const h = elementHash(seed, rank, i);
  switch (dtype) {
    case 'int32': return h | 0;
    case 'int8': return (h << 24) >> 24;
    case 'uint8': return h & 0xff;
    case 'int64': return BigInt.asIntN(64, (BigInt(fmix32((h ^ 0xa5a5a5a5) >>> 0)) << 32n) | BigInt(h));
    default: {
      if (op === 'prod') return PROD_SET[h % 6];
      const bits = floatBits(dtype, op, nranks);
      // 2^32 does not fit a shift: use arithmetic for the float64 case.
      return bits >= 32 ? h - 2 ** 31 : (h % 2 ** bits) - 2 ** (bits - 1);
    }
  }
}

/** Store a value (already exact or to be rounded once) into element k of a dtype array. */
function store(dtype: DType, a: TypedArray, k: number, v: number | bigint): void {
  if (dtype === 'float16') a[k] = f32ToF16(v as number);
  else if (dtype === 'bfloat16') a[k] = f32ToBf16(v as number);
  else (a as Float64Array)[k] = v as number; // typed-array stores round floats / wrap ints; int64 takes the bigint
}

/** Fill `out[0..count)` with rank `rank`'s values for global indices [start, start+count). */
export function fillInput(out: TypedArray, dtype: DType, op: ReduceOpName | undefined, nranks: number, seed: number, rank: number, start: number, count: number): void {
  if (dtype === 'float32' && op !== 'prod') {
    // The hot case (-d float32 at 128M) gets a loop without the generic dispatch.
    const a = out as Float32Array;
    const bits = floatBits(dtype, op, nranks);
    const mask = 2 ** bits - 1;
    const half = 2 ** (bits - 1);
    for (let k = 0; k < count; k++) a[k] = (elementHash(seed, rank, start + k) & mask) - half;
    return;
  }
  for (let k = 0; k < count; k++) store(dtype, out, k, benchValue(dtype, op, nranks, seed, rank, start + k));
}

/** op over ranks 0..n-1 of each global index in [start, start+count): the expected reduction. */
export function expectedReduction(dtype: DType, op: ReduceOpName, nranks: number, seed: number, start: number, count: number): TypedArray {
  const out = allocArray(dtype, count);
  const v = (r: number, i: number) => benchValue(dtype, op, nranks, seed, r, i);
  if (dtype === 'int64') {
    const a = out as BigInt64Array;
    for (let k = 0; k < count; k++) {
      let acc = v(0, start + k) as bigint;
      for (let r = 1; r < nranks; r++) acc = combineBig(op, acc, v(r, start + k) as bigint);
      a[k] = op === 'avg' ? acc / BigInt(nranks) : acc;
    }
    return out;
  }
  const wrap = dtype === 'int32' ? (x: number) => x | 0 : dtype === 'int8' ? (x: number) => (x << 24) >> 24 : dtype === 'uint8' ? (x: number) => x & 0xff : (x: number) => x;
  const int = isIntType(dtype);
  if (dtype === 'float32' && op === 'sum') {
    const a = out as Float32Array;
    const bits = floatBits(dtype, op, nranks);
    const mask = 2 ** bits - 1;
    const half = 2 ** (bits - 1);
    for (let k = 0; k < count; k++) {
      let acc = 0;
      for (let r = 0; r < nranks; r++) acc += (elementHash(seed, r, start + k) & mask) - half;
      a[k] = acc;
    }
    return out;
  }
  for (let k = 0; k < count; k++) {
    let acc = v(0, start + k) as number;
    for (let r = 1; r < nranks; r++) acc = wrap(combine(op, int, acc, v(r, start + k) as number));
    if (op === 'avg') acc = int ? Math.trunc(acc / nranks) : acc / nranks;
    store(dtype, out, k, acc);
  }
  return out;
}

function combine(op: ReduceOpName, int: boolean, a: number, b: number): number {
  switch (op) {
    case 'sum': case 'avg': return a + b;
    case 'prod': return int ? Math.imul(a, b) : a * b;
    case 'min': return Math.min(a, b);
    case 'max': return Math.max(a, b);
    case 'band': return a & b;
    case 'bor': return a | b;
    case 'bxor': return a ^ b;
  }
}

function combineBig(op: ReduceOpName, a: bigint, b: bigint): bigint {
  switch (op) {
    case 'sum': case 'avg': return BigInt.asIntN(64, a + b);
    case 'prod': return BigInt.asIntN(64, a * b);
    case 'min': return a < b ? a : b;
    case 'max': return a > b ? a : b;
    case 'band': return a & b;
    case 'bor': return a | b;
    case 'bxor': return a ^ b;
  }
}

/** Rank `rank`'s values for global indices [start, start+count) as a fresh array. */
export function inputArray(dtype: DType, op: ReduceOpName | undefined, nranks: number, seed: number, rank: number, start: number, count: number): TypedArray {
  const out = allocArray(dtype, count);
  fillInput(out, dtype, op, nranks, seed, rank, start, count);
  return out;
}

/** Elements whose bits differ between `got` and `want` (same dtype and length). */
export function countWrong(got: TypedArray, want: TypedArray, dtype: DType): number {
  if (got.length !== want.length) return Math.max(got.length, want.length);
  const width = DTYPE_BYTES[dtype];
  const a = new Uint8Array(got.buffer, got.byteOffset, got.byteLength);
  const b = new Uint8Array(want.buffer, want.byteOffset, want.byteLength);
  if (Buffer.compare(a, b) === 0) return 0;
  let wrong = 0;
  for (let k = 0; k < got.length; k++) {
    for (let j = 0; j < width; j++) {
      if (a[k * width + j] !== b[k * width + j]) { wrong++; break; }
    }
  }
  return wrong;
}

/** A recognisable pattern written into result buffers before a verified run, so an untouched output is caught. */
export function poison(buf: TypedArray): void {
  new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).fill(0xa7);
}
