/**
 * Elementwise reduction kernels: acc[i] = op(acc[i], src[i]).
 *
 * Semantics per dtype:
 * - int8/uint8/int32/int64 sum and prod wrap like the C type (typed-array stores are modular;
 *   int32 prod uses Math.imul so no bits are lost; BigInt64Array stores are BigInt.asIntN(64)).
 * - float min/max are Math.min/Math.max: NaN propagates and -0 < +0. Both are commutative, so
 *   every rank of an allreduce gets identical bits whatever the order of combination.
 * - float16/bfloat16 (Uint16Array bits): decode, combine in float32, round back to nearest
 *   even. For these ops that is the correctly rounded result of the exact combination.
 *   finishAvg and user functions encode straight from float64 (one rounding).
 * - 'avg' accumulates as 'sum'; `finishAvg` divides at the end. Integer avg truncates toward
 *   zero (C / BigInt division) after a possibly wrapped sum; torch leaves integer avg undefined.
 * - band/bor/bxor are integer-only. A user function is the slow path (one call per element);
 *   like MPI_Op_create(commute=true) it must be associative and commutative, since algorithms
 *   combine in different orders.
 */
import { INTEGER_DTYPES, DTYPE_BYTES, type DType, type TypedArray } from '../dtype.js';
import { invalidArgument } from '../errors.js';
import { f16Table, f32BitsToBf16, f32BitsToF16, f32ToBf16, f32ToF16 } from './half.js';
import { ARRAY_CTORS } from './view.js';
import { reduceF32Simd, SIMD_MIN_ELEMENTS } from './reduce-simd.js';

export type ReduceOpName = 'sum' | 'prod' | 'min' | 'max' | 'avg' | 'band' | 'bor' | 'bxor';
export type ReduceFn = (a: number | bigint, b: number | bigint) => number | bigint;
export type ReduceOp = ReduceOpName | ReduceFn;
/** A loop chosen once by `getReducer`: acc[i] = op(acc[i], src[i]) over acc's length (src may be longer). */
export type Reducer = (acc: TypedArray, src: TypedArray) => void;

const OP_NAMES: ReadonlySet<string> = new Set(['sum', 'prod', 'min', 'max', 'avg', 'band', 'bor', 'bxor']);
const BITWISE: ReadonlySet<string> = new Set(['band', 'bor', 'bxor']);

export const isFloatDType = (dtype: DType): boolean => !INTEGER_DTYPES.has(dtype);

/** Throws invalidArgument for an unknown dtype or op, or a bitwise op on a float dtype. */
export function validateOp(dtype: DType, op: ReduceOp): void {
  if (!(dtype in DTYPE_BYTES)) throw invalidArgument(`unknown dtype '${String(dtype)}'`);
  if (typeof op === 'function') return;
  if (typeof op !== 'string' || !OP_NAMES.has(op)) {
    throw invalidArgument(`unknown reduce op '${String(op)}' (expected sum, prod, min, max, avg, band, bor, bxor or a function)`);
  }
  if (BITWISE.has(op) && !INTEGER_DTYPES.has(dtype)) {
    throw invalidArgument(`reduce op '${op}' is not defined for dtype ${dtype}: band/bor/bxor need int8, uint8, int32 or int64`);
  }
}

// ---------------------------------------------------------------- loops
// One function literal per (dtype, op) so each keeps monomorphic type feedback.

type Loop = Reducer;
const L = <A extends TypedArray>(f: (a: A, b: A) => void): Loop => f as unknown as Loop;
type LoopOp = 'sum' | 'prod' | 'min' | 'max' | 'band' | 'bor' | 'bxor';

// bfloat16 decode: the bits are the top half of a float32.
const bfF = new Float32Array(2);
const bfU = new Uint32Array(bfF.buffer);
/**
 * Sign-magnitude half bits -> an integer key in value order (-0 just below +0), so half
 * min/max compare bits without decoding and return an operand's own bits. NaN is handled apart
 * (any NaN operand gives the default quiet NaN, as Math.min/max would).
 */
const halfKey = (h: number): number => h ^ ((-(h >> 15) & 0x7fff) | 0x8000);
// Half results are rounded to float32 here, then encoded from the bits.
const rF = new Float32Array(1);
const rU = new Uint32Array(rF.buffer);

const LOOPS: Readonly<Record<DType, Partial<Record<LoopOp, Loop>>>> = {
  // Long float32 arrays go through WebAssembly SIMD (reduce-simd.ts); the JS loop does the tail.
  float32: {
    sum: L<Float32Array>((a, b) => { for (let i = a.length >= SIMD_MIN_ELEMENTS ? reduceF32Simd('sum', a, b) : 0; i < a.length; i++) a[i] += b[i]; }),
    prod: L<Float32Array>((a, b) => { for (let i = a.length >= SIMD_MIN_ELEMENTS ? reduceF32Simd('prod', a, b) : 0; i < a.length; i++) a[i] *= b[i]; }),
    min: L<Float32Array>((a, b) => { for (let i = a.length >= SIMD_MIN_ELEMENTS ? reduceF32Simd('min', a, b) : 0; i < a.length; i++) a[i] = Math.min(a[i], b[i]); }),
    max: L<Float32Array>((a, b) => { for (let i = a.length >= SIMD_MIN_ELEMENTS ? reduceF32Simd('max', a, b) : 0; i < a.length; i++) a[i] = Math.max(a[i], b[i]); }),
  },
  float64: {
    sum: L<Float64Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] += b[i]; }),
    prod: L<Float64Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] *= b[i]; }),
    min: L<Float64Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] = Math.min(a[i], b[i]); }),
    max: L<Float64Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] = Math.max(a[i], b[i]); }),
  },
  int32: {
    sum: L<Int32Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] += b[i]; }),
    prod: L<Int32Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] = Math.imul(a[i], b[i]); }),
    min: L<Int32Array>((a, b) => { for (let i = 0; i < a.length; i++) if (b[i] < a[i]) a[i] = b[i]; }),
    max: L<Int32Array>((a, b) => { for (let i = 0; i < a.length; i++) if (b[i] > a[i]) a[i] = b[i]; }),
    band: L<Int32Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] &= b[i]; }),
    bor: L<Int32Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] |= b[i]; }),
    bxor: L<Int32Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] ^= b[i]; }),
  },
  int8: {
    sum: L<Int8Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] += b[i]; }),
    prod: L<Int8Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] *= b[i]; }),
    min: L<Int8Array>((a, b) => { for (let i = 0; i < a.length; i++) if (b[i] < a[i]) a[i] = b[i]; }),
    max: L<Int8Array>((a, b) => { for (let i = 0; i < a.length; i++) if (b[i] > a[i]) a[i] = b[i]; }),
    band: L<Int8Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] &= b[i]; }),
    bor: L<Int8Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] |= b[i]; }),
    bxor: L<Int8Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] ^= b[i]; }),
  },
  uint8: {
    sum: L<Uint8Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] += b[i]; }),
    prod: L<Uint8Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] *= b[i]; }),
    min: L<Uint8Array>((a, b) => { for (let i = 0; i < a.length; i++) if (b[i] < a[i]) a[i] = b[i]; }),
    max: L<Uint8Array>((a, b) => { for (let i = 0; i < a.length; i++) if (b[i] > a[i]) a[i] = b[i]; }),
    band: L<Uint8Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] &= b[i]; }),
    bor: L<Uint8Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] |= b[i]; }),
    bxor: L<Uint8Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] ^= b[i]; }),
  },
  int64: {
    sum: L<BigInt64Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] += b[i]; }),
    prod: L<BigInt64Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] *= b[i]; }),
    min: L<BigInt64Array>((a, b) => { for (let i = 0; i < a.length; i++) if (b[i] < a[i]) a[i] = b[i]; }),
    max: L<BigInt64Array>((a, b) => { for (let i = 0; i < a.length; i++) if (b[i] > a[i]) a[i] = b[i]; }),
    band: L<BigInt64Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] &= b[i]; }),
    bor: L<BigInt64Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] |= b[i]; }),
    bxor: L<BigInt64Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] ^= b[i]; }),
  },
  // Halves: sum/prod combine in float64, store to a float32 scratch (fround), encode from its
  // bits. For two half operands the result is exact in float32 or double rounding through it is
  // innocuous (float32 has ≥ 2p+2 bits for p = 11 and 8; bf16 subnormal results are exact or
  // below half the smallest subnormal), so this equals one correct rounding, ~2x faster than
  // encoding from float64. min/max compare ordered integer keys and never re-encode.
  float16: {
    sum: L<Uint16Array>((a, b) => { const t = f16Table(); for (let i = 0; i < a.length; i++) { rF[0] = t[a[i]] + t[b[i]]; a[i] = f32BitsToF16(rU[0]); } }),
    prod: L<Uint16Array>((a, b) => { const t = f16Table(); for (let i = 0; i < a.length; i++) { rF[0] = t[a[i]] * t[b[i]]; a[i] = f32BitsToF16(rU[0]); } }),
    min: L<Uint16Array>((a, b) => {
      for (let i = 0; i < a.length; i++) {
        const x = a[i], y = b[i];
        if ((x & 0x7fff) > 0x7c00 || (y & 0x7fff) > 0x7c00) a[i] = 0x7e00;
        else if (halfKey(y) < halfKey(x)) a[i] = y;
      }
    }),
    max: L<Uint16Array>((a, b) => {
      for (let i = 0; i < a.length; i++) {
        const x = a[i], y = b[i];
        if ((x & 0x7fff) > 0x7c00 || (y & 0x7fff) > 0x7c00) a[i] = 0x7e00;
        else if (halfKey(y) > halfKey(x)) a[i] = y;
      }
    }),
  },
  bfloat16: {
    sum: L<Uint16Array>((a, b) => {
      for (let i = 0; i < a.length; i++) { bfU[0] = a[i] << 16; bfU[1] = b[i] << 16; rF[0] = bfF[0] + bfF[1]; a[i] = f32BitsToBf16(rU[0]); }
    }),
    prod: L<Uint16Array>((a, b) => {
      for (let i = 0; i < a.length; i++) { bfU[0] = a[i] << 16; bfU[1] = b[i] << 16; rF[0] = bfF[0] * bfF[1]; a[i] = f32BitsToBf16(rU[0]); }
    }),
    min: L<Uint16Array>((a, b) => {
      for (let i = 0; i < a.length; i++) {
        const x = a[i], y = b[i];
        if ((x & 0x7fff) > 0x7f80 || (y & 0x7fff) > 0x7f80) a[i] = 0x7fc0;
        else if (halfKey(y) < halfKey(x)) a[i] = y;
      }
    }),
    max: L<Uint16Array>((a, b) => {
      for (let i = 0; i < a.length; i++) {
        const x = a[i], y = b[i];
        if ((x & 0x7fff) > 0x7f80 || (y & 0x7fff) > 0x7f80) a[i] = 0x7fc0;
        else if (halfKey(y) > halfKey(x)) a[i] = y;
      }
    }),
  },
};

const toBig = (x: number | bigint): bigint => (typeof x === 'bigint' ? x : BigInt(Math.trunc(x)));
const toNum = (x: number | bigint): number => (typeof x === 'bigint' ? Number(x) : x);

/** The slow path for a user function: halves are decoded/encoded around each call. */
function functionLoop(dtype: DType, fn: ReduceFn): Loop {
  switch (dtype) {
    case 'float16':
      return L<Uint16Array>((a, b) => {
        const t = f16Table();
        for (let i = 0; i < a.length; i++) a[i] = f32ToF16(toNum(fn(t[a[i]], t[b[i]])));
      });
    case 'bfloat16':
      return L<Uint16Array>((a, b) => {
        for (let i = 0; i < a.length; i++) {
          bfU[0] = a[i] << 16; bfU[1] = b[i] << 16;
          a[i] = f32ToBf16(toNum(fn(bfF[0], bfF[1])));
        }
      });
    case 'int64':
      return L<BigInt64Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] = toBig(fn(a[i], b[i])); });
    default:
      return L<Float64Array>((a, b) => { for (let i = 0; i < a.length; i++) a[i] = toNum(fn(a[i], b[i])); });
  }
}

/** Pick the loop for (dtype, op) once; validates like `validateOp`. */
export function getReducer(dtype: DType, op: ReduceOp): Reducer {
  // Looked up before validating: this runs on every reduction, and a found loop is valid.
  const loop = typeof op === 'string' ? BUILT_IN.get(dtype)?.get(op) : undefined;
  if (loop !== undefined) return loop;
  validateOp(dtype, op);
  if (typeof op === 'function') return functionLoop(dtype, op);
  throw invalidArgument(`reduce op '${op}' is not defined for dtype ${dtype}`);
}

/** LOOPS by dtype then op name, with 'avg' as 'sum' (Maps: no prototype keys such as 'constructor'). */
const BUILT_IN: ReadonlyMap<string, ReadonlyMap<string, Loop>> = new Map(Object.entries(LOOPS).map(([dtype, ops]) => {
  const byOp = new Map<string, Loop>(Object.entries(ops) as [string, Loop][]);
  if (byOp.has('sum')) byOp.set('avg', byOp.get('sum')!);
  return [dtype, byOp];
}));

/** acc[i] = op(acc[i], src[i]) for every i; arrays must hold `dtype` and have equal length. */
export function reduceInto(dtype: DType, op: ReduceOp, acc: TypedArray, src: TypedArray): void {
  const loop = getReducer(dtype, op);
  checkArrays(dtype, acc, src);
  loop(acc, src);
}

function checkArrays(dtype: DType, acc: TypedArray, src: TypedArray): void {
  const C = ARRAY_CTORS[dtype];
  if (acc.constructor !== C || src.constructor !== C) {
    throw invalidArgument(`reduceInto: dtype ${dtype} needs ${C.name} buffers, got ${acc.constructor.name} and ${src.constructor.name}`);
  }
  if (acc.length !== src.length) throw invalidArgument(`reduceInto: lengths differ (${acc.length} vs ${src.length})`);
}

/** Finish 'avg': divide every element by `n` (floats divide and round; integers truncate toward zero). */
export function finishAvg(dtype: DType, buf: TypedArray, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw invalidArgument(`finishAvg: n must be a positive integer, got ${n}`);
  if (buf.constructor !== ARRAY_CTORS[dtype]) throw invalidArgument(`finishAvg: dtype ${dtype} cannot be held by ${buf.constructor.name}`);
  if (n === 1) return;
  switch (dtype) {
    case 'float32': { const a = buf as Float32Array; for (let i = 0; i < a.length; i++) a[i] /= n; return; }
    case 'float64': { const a = buf as Float64Array; for (let i = 0; i < a.length; i++) a[i] /= n; return; }
    // |a / n| <= |a| < 2^31, so `| 0` truncates toward zero exactly.
    case 'int32': { const a = buf as Int32Array; for (let i = 0; i < a.length; i++) a[i] = (a[i] / n) | 0; return; }
    case 'int8': { const a = buf as Int8Array; for (let i = 0; i < a.length; i++) a[i] = (a[i] / n) | 0; return; }
    case 'uint8': { const a = buf as Uint8Array; for (let i = 0; i < a.length; i++) a[i] = (a[i] / n) | 0; return; }
    case 'int64': { const a = buf as BigInt64Array; const d = BigInt(n); for (let i = 0; i < a.length; i++) a[i] /= d; return; }
    case 'float16': { const a = buf as Uint16Array; const t = f16Table(); for (let i = 0; i < a.length; i++) a[i] = f32ToF16(t[a[i]] / n); return; }
    case 'bfloat16': {
      const a = buf as Uint16Array;
      for (let i = 0; i < a.length; i++) { bfU[0] = a[i] << 16; a[i] = f32ToBf16(bfF[0] / n); }
      return;
    }
  }
}
