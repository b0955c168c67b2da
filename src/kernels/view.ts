import { DTYPE_BYTES, type DType, type TypedArray } from '../dtype.js';
import { invalidArgument } from '../errors.js';

type Ctor = { new (length: number): TypedArray; new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray };

/** The typed-array class that stores each dtype (float16/bfloat16 travel as Uint16Array bits). */
export const ARRAY_CTORS: Readonly<Record<DType, Ctor>> = {
  float32: Float32Array, float64: Float64Array, int32: Int32Array, int8: Int8Array,
  uint8: Uint8Array, int64: BigInt64Array, float16: Uint16Array, bfloat16: Uint16Array,
};

/** A new zeroed array of `count` elements of `dtype`. */
export function allocArray(dtype: DType, count: number): TypedArray {
  const C = ARRAY_CTORS[dtype];
  if (C === undefined) throw invalidArgument(`unknown dtype '${String(dtype)}'`);
  return new C(count);
}

/**
 * `count` elements of `dtype` starting `byteOffset` bytes into `bytes`.
 * When the absolute address is a multiple of the element size this is a view over the same
 * memory (writes go through). Otherwise typed arrays cannot alias it, so the result is an
 * aligned copy: reads are correct, writes do NOT reach `bytes` — use `isViewOf` to tell, and
 * copy back with `bytesOf(result)` if needed.
 */
export function viewAs(dtype: DType, bytes: Uint8Array, byteOffset: number, count: number): TypedArray {
  const size = DTYPE_BYTES[dtype];
  if (size === undefined) throw invalidArgument(`unknown dtype '${String(dtype)}'`);
  if (!Number.isInteger(byteOffset) || !Number.isInteger(count) || byteOffset < 0 || count < 0 || byteOffset + count * size > bytes.length) {
    throw invalidArgument(`viewAs: ${count} × ${dtype} at byte ${byteOffset} does not fit in ${bytes.length} bytes`);
  }
  const C = ARRAY_CTORS[dtype];
  const abs = bytes.byteOffset + byteOffset;
  if (abs % size === 0) return new C(bytes.buffer, abs, count);
  const out = new C(count);
  new Uint8Array(out.buffer, 0, count * size).set(bytes.subarray(byteOffset, byteOffset + count * size));
  return out;
}

/** True when `view` shares memory with `bytes` (viewAs returned a view, not a copy). */
export const isViewOf = (view: TypedArray, bytes: Uint8Array): boolean => view.buffer === bytes.buffer;

/** Do two views share any byte of memory? */
export function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteLength > 0 && b.byteLength > 0 &&
    a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/**
 * Is `part` exactly elements [at, at + part.length) of `whole`, in the same memory? The
 * MPI_IN_PLACE layouts: an allgather whose src is this rank's block of dst, a reduce-scatter
 * whose dst is this rank's block of src. The collectives run those without copying.
 */
export function isBlockAt(part: TypedArray, whole: TypedArray, at: number): boolean {
  return part.buffer === whole.buffer && part.constructor === whole.constructor &&
    part.byteOffset === whole.byteOffset + at * whole.BYTES_PER_ELEMENT && at + part.length <= whole.length;
}

/**
 * `src`, or a copy of it when it shares memory with `dst`: the algorithms read src while
 * writing dst, so an aliased call (alltoall(buf, buf), MPI_IN_PLACE-style layouts) would read
 * blocks already overwritten. Copying makes every such call correct.
 */
export function unaliased<T extends TypedArray>(src: T, dst: ArrayBufferView | undefined): T {
  return dst && overlaps(src, dst) ? (src.slice() as T) : src;
}
