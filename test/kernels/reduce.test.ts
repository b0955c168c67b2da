import { describe, expect, it } from 'vitest';
import type { DType, TypedArray } from '../../src/dtype.js';
import { isTcclError } from '../../src/errors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/kernels/half.js';
import { finishAvg, getReducer, reduceInto, validateOp, type ReduceOpName } from '../../src/kernels/reduce.js';
import { ARRAY_CTORS, allocArray } from '../../src/kernels/view.js';

const ALL_OPS: ReduceOpName[] = ['sum', 'prod', 'min', 'max', 'avg', 'band', 'bor', 'bxor'];
const INT: DType[] = ['int32', 'int8', 'uint8', 'int64'];
const FLOAT: DType[] = ['float32', 'float64', 'float16', 'bfloat16'];

/** Edge values per dtype, as stored elements (halves as bit patterns). */
const EDGES: Record<DType, (number | bigint)[]> = {
  int8: [-128, -127, -64, -2, -1, 0, 1, 2, 3, 63, 64, 127],
  uint8: [0, 1, 2, 3, 16, 127, 128, 129, 254, 255],
  int32: [-(2 ** 31), -(2 ** 31) + 1, -65536, -1, 0, 1, 2, 3, 46341, 65536, 2 ** 30, 2 ** 31 - 1],
  int64: [-(2n ** 63n), -(2n ** 63n) + 1n, -(2n ** 32n), -1n, 0n, 1n, 2n, 3n, 3037000500n, 2n ** 32n, 2n ** 62n, 2n ** 63n - 1n],
  float32: [-0, 0, 1, -1, 0.1, -2.5, 3, 1e30, -1e30, 3.4028234663852886e38, 1.401298464324817e-45, Infinity, -Infinity, NaN],
  float64: [-0, 0, 1, -1, 0.1, -2.5, 3, 1e300, -1e300, Number.MAX_VALUE, Number.MIN_VALUE, Infinity, -Infinity, NaN],
  // 0, -0, 1, -1, 1/3, max, -max, min subnormal, largest subnormal, smallest normal, 2048, 2049→?, inf, -inf, NaN
  float16: [0x0000, 0x8000, 0x3c00, 0xbc00, 0x3555, 0x7bff, 0xfbff, 0x0001, 0x03ff, 0x0400, 0x6800, 0x6801, 0x7c00, 0xfc00, 0x7e00],
  bfloat16: [0x0000, 0x8000, 0x3f80, 0xbf80, 0x3eab, 0x7f7f, 0xff7f, 0x0001, 0x007f, 0x0080, 0x4380, 0x4381, 0x7f80, 0xff80, 0x7fc0],
};

/** Independent scalar reference in the value domain, then stored as the dtype stores it. */
function refScalar(dtype: DType, op: ReduceOpName, a: number | bigint, b: number | bigint, viaF32 = true): number | bigint {
  if (dtype === 'int64') {
    const x = a as bigint, y = b as bigint;
    const r = { sum: x + y, avg: x + y, prod: x * y, min: x < y ? x : y, max: x > y ? x : y, band: x & y, bor: x | y, bxor: x ^ y }[op];
    return BigInt.asIntN(64, r);
  }
  if (INT.includes(dtype)) {
    const x = a as number, y = b as number;
    // BigInt arithmetic then wrap: independent of the kernel's imul / typed-array stores.
    const bits = dtype === 'int32' ? 32 : 8;
    const wrap = (v: bigint) => Number(dtype === 'uint8' ? BigInt.asUintN(bits, v) : BigInt.asIntN(bits, v));
    const X = BigInt(x), Y = BigInt(y);
    return wrap({ sum: X + Y, avg: X + Y, prod: X * Y, min: X < Y ? X : Y, max: X > Y ? X : Y, band: X & Y, bor: X | Y, bxor: X ^ Y }[op]);
  }
  const dec = dtype === 'float16' ? f16ToF32 : dtype === 'bfloat16' ? bf16ToF32 : (v: number) => v;
  const x = dec(a as number), y = dec(b as number);
  let r: number;
  const neg0 = (v: number) => Object.is(v, -0);
  if (op === 'min' || op === 'max') {
    if (Number.isNaN(x) || Number.isNaN(y)) r = NaN;
    else if (x === 0 && y === 0) r = op === 'min' ? (neg0(x) || neg0(y) ? -0 : 0) : (neg0(x) && neg0(y) ? -0 : 0);
    else r = op === 'min' ? (x < y ? x : y) : (x > y ? x : y);
  } else {
    r = op === 'prod' ? x * y : x + y;
  }
  // "Computed in float32, rounded back": fround first, then round to the half type
  // (viaF32 = false: one rounding straight from float64, which must agree).
  if (dtype === 'float16') return f32ToF16(viaF32 ? Math.fround(r) : r);
  if (dtype === 'bfloat16') return f32ToBf16(viaF32 ? Math.fround(r) : r);
  if (dtype === 'float32') return Math.fround(r);
  return r;
}

function sameElement(dtype: DType, got: number | bigint, want: number | bigint): boolean {
  if (dtype === 'float16' || dtype === 'bfloat16') {
    const dec = dtype === 'float16' ? f16ToF32 : bf16ToF32;
    const g = dec(got as number), w = dec(want as number);
    return Number.isNaN(w) ? Number.isNaN(g) : got === want;
  }
  if (typeof want === 'number' && Number.isNaN(want)) return Number.isNaN(got as number);
  return Object.is(got, want);
}

function fromValues(dtype: DType, vals: (number | bigint)[]): TypedArray {
  const a = allocArray(dtype, vals.length);
  for (let i = 0; i < vals.length; i++) (a as Float64Array)[i] = vals[i] as number;
  return a;
}

describe('reduceInto: every dtype × op on all pairs of edge values', () => {
  for (const dtype of [...INT, ...FLOAT]) {
    const ops = INT.includes(dtype) ? ALL_OPS : ALL_OPS.filter((o) => !o.startsWith('b'));
    for (const op of ops) {
      it(`${dtype} ${op}`, () => {
        const e = EDGES[dtype];
        const as: (number | bigint)[] = [];
        const bs: (number | bigint)[] = [];
        for (const a of e) for (const b of e) { as.push(a); bs.push(b); }
        const acc = fromValues(dtype, as);
        const src = fromValues(dtype, bs);
        const srcCopy = src.slice();
        reduceInto(dtype, op, acc, src);
        for (let i = 0; i < as.length; i++) {
          const want = refScalar(dtype, op, fromValues(dtype, [as[i]])[0], fromValues(dtype, [bs[i]])[0]);
          if (!sameElement(dtype, acc[i], want)) {
            throw new Error(`${dtype} ${op}(${String(as[i])}, ${String(bs[i])}) = ${String(acc[i])}, expected ${String(want)}`);
          }
        }
        expect(src).toEqual(srcCopy);
      });
    }
  }
});

describe('reduceInto: specific semantics', () => {
  it('wraps integer sum and prod like C', () => {
    const i8 = Int8Array.of(127, -128, 64, -128);
    reduceInto('int8', 'sum', i8, Int8Array.of(1, -1, 64, 0));
    expect(Array.from(i8)).toEqual([-128, 127, -128, -128]);
    const u8 = Uint8Array.of(255, 16);
    reduceInto('uint8', 'prod', u8, Uint8Array.of(2, 16));
    expect(Array.from(u8)).toEqual([254, 0]);
    const i32 = Int32Array.of(2 ** 31 - 1, 0x10001);
    reduceInto('int32', 'prod', i32, Int32Array.of(2, 0x10001)); // needs imul: 0x10001² = 2^32 + 2^17 + 1
    expect(Array.from(i32)).toEqual([-2, 0x20001]);
    const i64 = BigInt64Array.of(2n ** 63n - 1n, 3037000500n);
    reduceInto('int64', 'sum', i64, BigInt64Array.of(1n, 0n));
    reduceInto('int64', 'prod', i64.subarray(1), BigInt64Array.of(3037000500n));
    expect(i64[0]).toBe(-(2n ** 63n));
    expect(i64[1]).toBe(BigInt.asIntN(64, 3037000500n * 3037000500n));
  });

  it('float min/max propagate NaN and order -0 below +0 in both argument orders', () => {
    for (const C of [Float32Array, Float64Array]) {
      const dtype: DType = C === Float32Array ? 'float32' : 'float64';
      const a = C.of(NaN, 1, -0, 0);
      reduceInto(dtype, 'min', a, C.of(1, NaN, 0, -0));
      expect(Number.isNaN(a[0]) && Number.isNaN(a[1])).toBe(true);
      expect(Object.is(a[2], -0) && Object.is(a[3], -0)).toBe(true);
      const b = C.of(-0, 0);
      reduceInto(dtype, 'max', b, C.of(0, -0));
      expect(Object.is(b[0], 0) && Object.is(b[1], 0)).toBe(true);
    }
  });

  it('float16 / bfloat16 sums round to nearest even (ties) and overflow to inf', () => {
    const h = Uint16Array.of(f32ToF16(2048), f32ToF16(2048), f32ToF16(65504), f32ToF16(1));
    reduceInto('float16', 'sum', h, Uint16Array.of(f32ToF16(1), f32ToF16(3), f32ToF16(16), f32ToF16(2 ** -11)));
    // 2049 ties to 2048 (even), 2051 ties to 2052, 65520 -> inf, 1 + 2^-11 ties to 1
    expect(Array.from(h, f16ToF32)).toEqual([2048, 2052, Infinity, 1]);
    const b = Uint16Array.of(f32ToBf16(256), f32ToBf16(256), f32ToBf16(1));
    reduceInto('bfloat16', 'sum', b, Uint16Array.of(f32ToBf16(1), f32ToBf16(3), f32ToBf16(NaN)));
    expect(Array.from(b, bf16ToF32).slice(0, 2)).toEqual([256, 260]);
    expect(Number.isNaN(bf16ToF32(b[2]))).toBe(true);
  });

  it('float16 / bfloat16: random pairs equal "compute in float32, round back" and a single rounding', () => {
    let s = 12345;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) & 0xffff;
    for (const dtype of ['float16', 'bfloat16'] as const) {
      for (const op of ['sum', 'prod', 'min', 'max'] as const) {
        const n = 50000;
        const a = new Uint16Array(n).map(rnd);
        const b = new Uint16Array(n).map(rnd);
        const acc = a.slice();
        reduceInto(dtype, op, acc, b);
        for (let i = 0; i < n; i++) {
          const want = refScalar(dtype, op, a[i], b[i]);
          const once = refScalar(dtype, op, a[i], b[i], false);
          if (!sameElement(dtype, acc[i], want) || !sameElement(dtype, acc[i], once)) throw new Error(`${dtype} ${op}(0x${a[i].toString(16)}, 0x${b[i].toString(16)}) = 0x${acc[i].toString(16)}, expected 0x${(want as number).toString(16)}`);
        }
      }
    }
  });

  it('avg accumulates as sum; finishAvg divides (integers truncate toward zero)', () => {
    const i32 = Int32Array.of(-7, 7, -1, 2 ** 31 - 1, -(2 ** 31));
    finishAvg('int32', i32, 2);
    expect(Array.from(i32)).toEqual([-3, 3, 0, 2 ** 30 - 1, -(2 ** 30)]);
    const i8 = Int8Array.of(-128, 127, -5);
    finishAvg('int8', i8, 3);
    expect(Array.from(i8)).toEqual([-42, 42, -1]);
    const u8 = Uint8Array.of(255, 2);
    finishAvg('uint8', u8, 4);
    expect(Array.from(u8)).toEqual([63, 0]);
    const i64 = BigInt64Array.of(-7n, 2n ** 63n - 1n);
    finishAvg('int64', i64, 2);
    expect(Array.from(i64)).toEqual([-3n, 2n ** 62n - 1n]);
    const f = Float32Array.of(1, -3);
    finishAvg('float32', f, 3);
    expect(Array.from(f)).toEqual([Math.fround(1 / 3), -1]);
    const h = Uint16Array.of(f32ToF16(1), f32ToF16(3));
    finishAvg('float16', h, 3);
    expect(Array.from(h)).toEqual([f32ToF16(1 / 3), f32ToF16(1)]);
    const bh = Uint16Array.of(f32ToBf16(1));
    finishAvg('bfloat16', bh, 3);
    expect(bh[0]).toBe(f32ToBf16(1 / 3));
    const acc = Float64Array.of(1, 2);
    reduceInto('float64', 'avg', acc, Float64Array.of(3, 4));
    expect(Array.from(acc)).toEqual([4, 6]);
    expect(() => finishAvg('float32', f, 0)).toThrow(/positive integer/);
  });

  it('accepts user functions on every dtype class (slow path)', () => {
    const maxAbs = (a: number | bigint, b: number | bigint) => (Math.abs(Number(a)) >= Math.abs(Number(b)) ? a : b);
    const f = Float32Array.of(-3, 2);
    reduceInto('float32', maxAbs, f, Float32Array.of(1, -5));
    expect(Array.from(f)).toEqual([-3, -5]);
    const i = Int8Array.of(100);
    reduceInto('int8', (a, b) => (a as number) + (b as number), i, Int8Array.of(100)); // result stored wraps
    expect(i[0]).toBe(-56);
    const big = BigInt64Array.of(5n, 7n);
    reduceInto('int64', (a, b) => Number(a) * Number(b), big, BigInt64Array.of(3n, 2n)); // a number result becomes a BigInt
    expect(Array.from(big)).toEqual([15n, 14n]);
    const h = Uint16Array.of(f32ToF16(1.5));
    reduceInto('float16', (a, b) => (a as number) * 10 + (b as number), h, Uint16Array.of(f32ToF16(0.25)));
    expect(f16ToF32(h[0])).toBe(15.25);
    const bh = Uint16Array.of(f32ToBf16(2));
    reduceInto('bfloat16', (a, b) => (a as number) - (b as number), bh, Uint16Array.of(f32ToBf16(0.5)));
    expect(bf16ToF32(bh[0])).toBe(1.5);
  });
});

describe('validateOp', () => {
  it('rejects bitwise ops on float dtypes, naming op and dtype', () => {
    for (const dtype of FLOAT) {
      for (const op of ['band', 'bor', 'bxor'] as const) {
        let err: unknown;
        try { validateOp(dtype, op); } catch (e) { err = e; }
        expect(isTcclError(err, 'TCCL_ERR_INVALID_ARGUMENT')).toBe(true);
        expect((err as Error).message).toContain(op);
        expect((err as Error).message).toContain(dtype);
        expect(() => reduceInto(dtype, op, allocArray(dtype, 1), allocArray(dtype, 1))).toThrow(/TCCL_ERR_INVALID_ARGUMENT/);
      }
    }
  });

  it('rejects unknown op names and dtypes; accepts the rest', () => {
    expect(() => validateOp('float32', 'mean' as never)).toThrow(/unknown reduce op 'mean'/);
    expect(() => validateOp('float32', 'constructor' as never)).toThrow(/TCCL_ERR_INVALID_ARGUMENT/);
    expect(() => validateOp('float32', 42 as never)).toThrow(/TCCL_ERR_INVALID_ARGUMENT/);
    expect(() => validateOp('float128' as never, 'sum')).toThrow(/unknown dtype/);
    for (const dtype of INT) for (const op of ALL_OPS) expect(() => validateOp(dtype, op)).not.toThrow();
    expect(() => validateOp('float16', (a) => a)).not.toThrow();
  });

  it('reduceInto checks lengths and array classes', () => {
    expect(() => reduceInto('float32', 'sum', new Float32Array(2), new Float32Array(3))).toThrow(/lengths differ/);
    expect(() => reduceInto('float32', 'sum', new Float32Array(2), new Float64Array(2) as never)).toThrow(/Float32Array/);
    expect(() => reduceInto('float16', 'sum', new Int16Array(2) as never, new Uint16Array(2))).toThrow(/TCCL_ERR_INVALID_ARGUMENT/);
  });

  it('getReducer returns the same loop per (dtype, op) and avg shares the sum loop', () => {
    for (const dtype of Object.keys(ARRAY_CTORS) as DType[]) {
      expect(getReducer(dtype, 'sum')).toBe(getReducer(dtype, 'avg'));
      expect(getReducer(dtype, 'min')).not.toBe(getReducer(dtype, 'max'));
    }
  });

  it('getReducer refuses names that are not ops, including object prototype keys, and bitwise ops on floats', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'Sum', '']) {
      expect(() => getReducer('float32', name as ReduceOpName), name).toThrow(/TCCL_ERR_INVALID_ARGUMENT.*unknown reduce op/);
    }
    expect(() => getReducer('float64', 'band')).toThrow(/band\/bor\/bxor need/);
    expect(() => getReducer('nope' as DType, 'sum')).toThrow(/unknown dtype 'nope'/);
    const custom = getReducer('float32', (a, b) => Number(a) - Number(b));
    const acc = new Float32Array([5, 1]);
    custom(acc, new Float32Array([2, 3]));
    expect(Array.from(acc)).toEqual([3, -2]);
  });

  it("a reducer runs over the accumulator's length when the source is longer (whole shared-memory halves)", () => {
    for (const dtype of Object.keys(ARRAY_CTORS) as DType[]) {
      const C = ARRAY_CTORS[dtype];
      const big = dtype === 'int64';
      const acc = new C(3) as never as { [i: number]: number | bigint; length: number };
      const src = new C(600) as never as { [i: number]: number | bigint; length: number; fill(v: unknown): void };
      src.fill(big ? 1n : dtype === 'float16' ? 0x3c00 : dtype === 'bfloat16' ? 0x3f80 : 1);
      getReducer(dtype, 'max')(acc as never, src as never);
      // max(0, one) = one at each of the accumulator's 3 elements (and nothing read past them matters).
      expect(Array.from({ length: 3 }, (_, i) => acc[i]), dtype).toEqual([src[0], src[0], src[0]]);
    }
  });
});
