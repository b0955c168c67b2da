import { invalidArgument } from './errors.js';

/** Element types tccl moves and reduces. float16/bfloat16 travel in Uint16Array. */
export type DType = 'float32' | 'float64' | 'int32' | 'int8' | 'uint8' | 'int64' | 'float16' | 'bfloat16';

export type TypedArray =
  | Float32Array | Float64Array | Int32Array | Int8Array | Uint8Array | BigInt64Array | Uint16Array;

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4, float64: 8, int32: 4, int8: 1, uint8: 1, int64: 8, float16: 2, bfloat16: 2,
};

export const INTEGER_DTYPES: ReadonlySet<DType> = new Set(['int32', 'int8', 'uint8', 'int64']);

export function isTypedArray(x: unknown): x is TypedArray {
  return (
    x instanceof Float32Array || x instanceof Float64Array || x instanceof Int32Array ||
    x instanceof Int8Array || x instanceof Uint8Array || x instanceof BigInt64Array || x instanceof Uint16Array
  );
}

/** The dtype a buffer holds: from its class, or `explicit` (required for Uint16Array). */
export function dtypeOf(buf: unknown, explicit?: DType, what = 'buffer'): DType {
  if (!isTypedArray(buf)) {
    const got = buf === null ? 'null' : typeof buf === 'object' ? (buf.constructor?.name ?? 'object') : typeof buf;
    throw invalidArgument(`${what} must be a typed array (Float32Array, Float64Array, Int32Array, Int8Array, Uint8Array, BigInt64Array, or Uint16Array with dtype float16/bfloat16), got ${got}`);
  }
  const natural: DType | undefined =
    buf instanceof Float32Array ? 'float32' :
    buf instanceof Float64Array ? 'float64' :
    buf instanceof Int32Array ? 'int32' :
    buf instanceof Int8Array ? 'int8' :
    buf instanceof Uint8Array ? 'uint8' :
    buf instanceof BigInt64Array ? 'int64' : undefined;
  if (explicit === undefined) {
    if (natural === undefined) throw invalidArgument(`${what} is a Uint16Array: pass { dtype: 'float16' } or { dtype: 'bfloat16' }`);
    return natural;
  }
  if (!(explicit in DTYPE_BYTES)) throw invalidArgument(`unknown dtype '${String(explicit)}'`);
  const fits = natural === explicit || (buf instanceof Uint16Array && (explicit === 'float16' || explicit === 'bfloat16'));
  if (!fits) throw invalidArgument(`${what} is a ${buf.constructor.name}, which cannot hold dtype ${explicit}`);
  return explicit;
}

/** Byte view of a typed array (no copy). */
export const bytesOf = (buf: TypedArray): Uint8Array => new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
