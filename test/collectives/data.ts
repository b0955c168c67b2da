/**
 * Test data and references for the collective grids. Every element is unique per
 * (rank, index) like gloo (base = rank·count + i), mapped into a range where the reduction is
 * exact in the dtype, so references can be computed locally and compared bit for bit whatever
 * order an algorithm combines in. Integer ops wrap, which is associative too.
 */
import type { DType, TypedArray } from '../../src/dtype.js';
import { bytesOf } from '../../src/dtype.js';
import { f16ToF32, f32ToBf16, f32ToF16, bf16ToF32 } from '../../src/kernels/half.js';
import { allocArray } from '../../src/kernels/view.js';
import type { ReduceOpName } from '../../src/kernels/reduce.js';

export const DTYPES: DType[] = ['float32', 'float64', 'int32', 'int8', 'uint8', 'int64', 'float16', 'bfloat16'];
export const FLOAT_OPS: ReduceOpName[] = ['sum', 'prod', 'min', 'max', 'avg'];
export const INT_OPS: ReduceOpName[] = ['sum', 'prod', 'min', 'max', 'avg', 'band', 'bor', 'bxor'];
export const isInt = (d: DType) => d === 'int32' || d === 'int8' || d === 'uint8' || d === 'int64';
export const opsFor = (d: DType) => (isInt(d) ? INT_OPS : FLOAT_OPS);

const hash = (x: number) => Math.imul(x ^ 0x5bd1e995, 0x9e3779b1) ^ (x >>> 13);
const PROD_SET = [1, -1, 2, -2, 0.5, -0.5]; // products of ≤ 8 stay exact powers of two in every float type

/** The value (number or bigint) rank `rank` contributes at index i. */
export function value(dtype: DType, op: ReduceOpName, rank: number, count: number, i: number): number | bigint {
  const g = rank * count + i;
  if (isInt(dtype)) {
    const h = hash(g); // spreads over the whole int32 range: sums and products wrap
    if (dtype === 'int64') return BigInt(h) * 0x1_0000_0001n + BigInt(g);
    return h;
  }
  if (op === 'prod') return PROD_SET[(hash(g) >>> 0) % PROD_SET.length];
  // Partial sums of ≤ 8 terms stay integers within the exact range of the dtype.
  const half = dtype === 'bfloat16' ? 16 : dtype === 'float16' ? 128 : 4096;
  return ((hash(g) >>> 0) % (2 * half)) - half;
}

/** Store numbers/bigints into a fresh array of `dtype` (halves are encoded). */
export function fill(dtype: DType, values: (number | bigint)[], into?: TypedArray): TypedArray {
  const a = into ?? allocArray(dtype, values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (dtype === 'float16') a[i] = f32ToF16(Number(v));
    else if (dtype === 'bfloat16') a[i] = f32ToBf16(Number(v));
    else if (dtype === 'int64') (a as BigInt64Array)[i] = BigInt(v);
    else (a as Float64Array)[i] = Number(v);
  }
  return a;
}

/** Rank `rank`'s input for a reduction test. */
export function rankInput(dtype: DType, op: ReduceOpName, rank: number, count: number): TypedArray {
  const vals: (number | bigint)[] = new Array(count);
  for (let i = 0; i < count; i++) vals[i] = value(dtype, op, rank, count, i);
  return fill(dtype, vals);
}

/** Independent scalar combine in the dtype's value domain (wrapping for integers). */
function combine(dtype: DType, op: ReduceOpName, a: number | bigint, b: number | bigint): number | bigint {
  if (dtype === 'int64') {
    const x = a as bigint, y = b as bigint;
    const w = (v: bigint) => BigInt.asIntN(64, v);
    switch (op) {
      case 'sum': case 'avg': return w(x + y);
      case 'prod': return w(x * y);
      case 'min': return x < y ? x : y;
      case 'max': return x > y ? x : y;
      case 'band': return x & y;
      case 'bor': return x | y;
      case 'bxor': return x ^ y;
    }
  }
  const x = a as number, y = b as number;
  let r: number;
  switch (op) {
    case 'sum': case 'avg': r = x + y; break;
    case 'prod': r = isInt(dtype) ? Math.imul(x, y) : x * y; break;
    case 'min': r = Math.min(x, y); break;
    case 'max': r = Math.max(x, y); break;
    case 'band': r = x & y; break;
    case 'bor': r = x | y; break;
    case 'bxor': r = x ^ y; break;
  }
  if (dtype === 'int32') return r | 0;
  if (dtype === 'int8') return (r << 24) >> 24;
  if (dtype === 'uint8') return r & 0xff;
  return r; // floats: exact by construction of the data
}

/** Values as stored in the dtype (wrapped / rounded) — what a rank's buffer really holds. */
function stored(dtype: DType, v: number | bigint): number | bigint {
  if (dtype === 'float16') return f16ToF32(f32ToF16(Number(v)));
  if (dtype === 'bfloat16') return bf16ToF32(f32ToBf16(Number(v)));
  if (dtype === 'float32') return Math.fround(Number(v));
  if (dtype === 'int32') return Number(v) | 0;
  if (dtype === 'int8') return (Number(v) << 24) >> 24;
  if (dtype === 'uint8') return Number(v) & 0xff;
  return v;
}

/** op over ranks [0, size) of each element, finished for avg, as a typed array of `dtype`. */
export function reference(dtype: DType, op: ReduceOpName, size: number, count: number, ranks?: number[]): TypedArray {
  const order = ranks ?? Array.from({ length: size }, (_, k) => k);
  const out: (number | bigint)[] = new Array(count);
  for (let i = 0; i < count; i++) {
    let acc = stored(dtype, value(dtype, op, order[0], count, i));
    for (let k = 1; k < order.length; k++) acc = combine(dtype, op, acc, stored(dtype, value(dtype, op, order[k], count, i)));
    if (op === 'avg') {
      if (dtype === 'int64') acc = (acc as bigint) / BigInt(size);
      else if (isInt(dtype)) acc = Math.trunc((acc as number) / size);
      else acc = Number(acc) / size;
    }
    out[i] = acc;
  }
  return fill(dtype, out);
}

/** Throws with the first differing element when a and b are not bit-identical. */
export function expectSameBits(actual: TypedArray, expected: TypedArray, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  const a = bytesOf(actual);
  const b = bytesOf(expected);
  if (Buffer.compare(a, b) === 0) return;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i] && !(Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) {
      throw new Error(`${what}: element ${i} is ${String(actual[i])}, expected ${String(expected[i])}`);
    }
  }
  throw new Error(`${what}: bytes differ`);
}

/** Movement test data: unique per (rank, i) and distinguishable in every dtype's bits. */
export function movementData(dtype: DType, rank: number, count: number, salt = 0): TypedArray {
  const a = allocArray(dtype, count);
  for (let i = 0; i < count; i++) {
    const g = rank * 1_000_003 + i * 7 + salt * 31;
    if (dtype === 'int64') (a as BigInt64Array)[i] = BigInt(g) * 0x1_0000_0001n;
    else if (dtype === 'float32' || dtype === 'float64') (a as Float64Array)[i] = g + 0.25;
    else (a as Int32Array)[i] = hash(g); // wraps into int8/uint8/uint16 bits
  }
  return a;
}

/**
 * A `len`-element view into a larger array with guard elements on both sides, at a nonzero
 * byteOffset, so an algorithm that ignores byteOffset or writes out of bounds is caught.
 */
export function guarded(dtype: DType, len: number): { view: TypedArray; checkGuards: () => void } {
  const pad = 3;
  const whole = allocArray(dtype, len + 2 * pad);
  const sentinel = dtype === 'int64' ? 0x5a5a5a5a5a5a5a5an : 0x5a;
  for (let i = 0; i < whole.length; i++) (whole as Float64Array)[i] = sentinel as number;
  const view = whole.subarray(pad, pad + len) as TypedArray;
  const before = bytesOf(whole.subarray(0, pad) as TypedArray).slice();
  const after = bytesOf(whole.subarray(pad + len) as TypedArray).slice();
  return {
    view,
    checkGuards: () => {
      if (Buffer.compare(bytesOf(whole.subarray(0, pad) as TypedArray), before) !== 0) throw new Error('write before the buffer');
      if (Buffer.compare(bytesOf(whole.subarray(pad + len) as TypedArray), after) !== 0) throw new Error('write past the buffer');
    },
  };
}

/** Copy into a guarded buffer. */
export function guardedCopy(src: TypedArray): { view: TypedArray; checkGuards: () => void; dtypeBytes: number } {
  const dtype = dtypeOfArray(src);
  const g = guarded(dtype, src.length);
  bytesOf(g.view).set(bytesOf(src));
  return { ...g, dtypeBytes: src.BYTES_PER_ELEMENT };
}

function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof BigInt64Array) return 'int64';
  return 'float16';
}

/** dtype option only where the array type cannot tell (halves in Uint16Array). */
export const dt = (d: DType): { dtype?: DType } => (d === 'float16' || d === 'bfloat16' ? { dtype: d } : {});

/** Concatenation of `parts` into a fresh array of dtype. */
export function concat(dtype: DType, parts: TypedArray[]): TypedArray {
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = allocArray(dtype, total);
  let off = 0;
  for (const p of parts) {
    (out as Float64Array).set(p as Float64Array, off);
    off += p.length;
  }
  return out;
}
