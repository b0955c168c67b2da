/** Run one function per rank of an in-process world and collect the results. */
import { initLocalWorld } from '../../src/comm/init.js';
import { ParallelGroup } from '../../src/parallel/group.js';
import { Tape } from './tape64.js';

export async function onEveryRank<R>(size: number, fn: (group: ParallelGroup) => Promise<R>, opts: { transport?: 'memory' | 'tcp' } = {}): Promise<R[]> {
  const comms = await initLocalWorld(size, { transport: opts.transport ?? 'memory', timeoutMs: 20_000 });
  try {
    return await Promise.all(comms.map((c) => fn(new ParallelGroup(c))));
  } finally {
    await Promise.all(comms.map((c) => c.close()));
  }
}

/**
 * Dense float64 reference: `build` makes leaves for the named inputs and returns the output
 * nodes; the loss is Σ out ⊙ dy, so the returned gradients are the vector-Jacobian products
 * that every backward pass must reproduce.
 */
export function denseReference(inputs: Record<string, ArrayLike<number>>, build: (t: Tape, x: Record<string, number[]>) => number[], dy: ArrayLike<number>): { out: Float64Array; grads: Record<string, Float64Array> } {
  const t = new Tape();
  const leaves: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(inputs)) leaves[k] = t.leaves(v);
  const out = build(t, leaves);
  t.backward(t.weightedSum(out, dy));
  const grads: Record<string, Float64Array> = {};
  for (const [k, v] of Object.entries(leaves)) grads[k] = t.grads(v);
  return { out: t.values(out), grads };
}

/** Columns [start, start+width) of a rows×cols float64 matrix. */
export function cols64(m: ArrayLike<number>, rows: number, cols: number, start: number, width: number): Float64Array {
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) out[r * width + c] = m[r * cols + start + c];
  return out;
}

/** Rows [start, start+count) of a rows×cols matrix. */
export function rows64(m: ArrayLike<number>, cols: number, start: number, count: number): Float64Array {
  return Float64Array.from(Array.prototype.slice.call(m, start * cols, (start + count) * cols) as number[]);
}

export function f32(a: ArrayLike<number>): Float32Array {
  return Float32Array.from(a);
}
