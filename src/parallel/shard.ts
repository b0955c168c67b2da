/**
 * Splitting tensors across a tensor-parallel group: the divisibility checks (a clear
 * TCCL_ERR_INVALID_ARGUMENT, never a silent remainder) and the slices rank r owns.
 * Matrices are row-major rows×cols Float32Arrays.
 */

import { invalidArgument } from '../errors.js';

/** n / parts, or an error naming what could not be split. */
export function divide(n: number, parts: number, what: string, rank?: number): number {
  if (!Number.isInteger(n) || n < 0) throw invalidArgument(`${what} must be a non-negative integer, got ${n}`, { rank, op: 'tensor-parallel' });
  if (n % parts !== 0) throw invalidArgument(`${what} (${n}) is not divisible by the tensor-parallel size ${parts}`, { rank, op: 'tensor-parallel' });
  return n / parts;
}

/** Columns [rank·cols/P, (rank+1)·cols/P) of a rows×cols matrix, as a rows×(cols/P) matrix. */
export function shardColumns(full: Float32Array, rows: number, cols: number, parts: number, rank: number, what = 'columns'): Float32Array {
  const local = divide(cols, parts, what, rank);
  return sliceColumns(full, rows, cols, rank * local, local);
}

/** Rows [rank·rows/P, (rank+1)·rows/P) of a rows×cols matrix (a vector is rows×1). */
export function shardRows(full: Float32Array, rows: number, cols: number, parts: number, rank: number, what = 'rows'): Float32Array {
  const local = divide(rows, parts, what, rank);
  return full.slice(rank * local * cols, (rank + 1) * local * cols);
}

/** Columns [start, start+width) of a rows×cols matrix. */
export function sliceColumns(m: Float32Array, rows: number, cols: number, start: number, width: number, out = new Float32Array(rows * width)): Float32Array {
  for (let r = 0; r < rows; r++) out.set(m.subarray(r * cols + start, r * cols + start + width), r * width);
  return out;
}

/** Side-by-side concatenation of matrices that share `rows`. */
export function concatColumns(parts: readonly { data: Float32Array; cols: number }[], rows: number): Float32Array {
  const total = parts.reduce((s, p) => s + p.cols, 0);
  const out = new Float32Array(rows * total);
  let at = 0;
  for (const p of parts) {
    for (let r = 0; r < rows; r++) out.set(p.data.subarray(r * p.cols, r * p.cols + p.cols), r * total + at);
    at += p.cols;
  }
  return out;
}

/** A tensor handed to a layer must have exactly rows×cols elements. */
export function expectShape(arr: Float32Array, rows: number, cols: number, what: string, rank?: number): void {
  if (arr.length !== rows * cols) throw invalidArgument(`${what} has ${arr.length} elements, expected ${rows}×${cols}`, { rank, op: 'tensor-parallel' });
}
