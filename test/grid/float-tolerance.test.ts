/**
 * General (non-integer-valued) float sums: results cannot be exact, so they are checked
 * against a float64 reference within the documented bound (docs/COLLECTIVES.md):
 *
 *   |result - exact| <= (n + 1) * u * sum_i |x_i|        (avg: the same bound divided by n)
 *
 * with u the unit roundoff of the dtype (float32 2^-24, float64 2^-53, float16 2^-11,
 * bfloat16 2^-8) and n the world size: n - 1 roundings in the reduction tree, one to store the
 * input, one for avg's division. Also: every rank gets the very same bits (ring, recursive
 * doubling and Rabenseifner all reduce each element in one order and then copy it), so replicas
 * built on allreduce never drift apart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initLocalWorld } from '../../src/comm/init.js';
import type { Communicator } from '../../src/comm/communicator.js';
import type { DType, TypedArray } from '../../src/dtype.js';
import { allocArray } from '../../src/kernels/view.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/kernels/half.js';
import { prng } from '../support/prng.js';
import { dt, onAll } from './common.js';

const FLOATS = ['float32', 'float64', 'float16', 'bfloat16'] as const;
const UNIT_ROUNDOFF: Record<(typeof FLOATS)[number], number> = { float32: 2 ** -24, float64: 2 ** -53, float16: 2 ** -11, bfloat16: 2 ** -8 };
const COUNT = 3001;

function read(dtype: DType, a: TypedArray, i: number): number {
  if (dtype === 'float16') return f16ToF32((a as Uint16Array)[i]);
  if (dtype === 'bfloat16') return bf16ToF32((a as Uint16Array)[i]);
  return (a as Float64Array)[i];
}

/** Rank r's input: values in (-1, 1) with mixed magnitudes, so rounding really happens. */
function input(dtype: DType, rank: number, count: number): TypedArray {
  const rand = prng(1000 + rank);
  const out = allocArray(dtype, count);
  for (let i = 0; i < count; i++) {
    const v = (rand() * 2 - 1) * 2 ** -Math.floor(rand() * 6);
    if (dtype === 'float16') (out as Uint16Array)[i] = f32ToF16(v);
    else if (dtype === 'bfloat16') (out as Uint16Array)[i] = f32ToBf16(v);
    else (out as Float64Array)[i] = v;
  }
  return out;
}

/** Exact sum (float64 of already-rounded inputs; error far below every bound used here) and sum of |x|. */
function exact(dtype: DType, inputs: TypedArray[], i: number): { sum: number; abs: number } {
  let sum = 0;
  let abs = 0;
  for (const x of inputs) {
    const v = read(dtype, x, i);
    sum += v;
    abs += Math.abs(v);
  }
  return { sum, abs };
}

function checkWithinBound(dtype: (typeof FLOATS)[number], op: 'sum' | 'avg', size: number, inputs: TypedArray[], got: TypedArray, offset = 0): number {
  const u = UNIT_ROUNDOFF[dtype];
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const { sum, abs } = exact(dtype, inputs, i + offset);
    const scale = op === 'avg' ? size : 1;
    const bound = ((size + 1) * u * abs) / scale;
    const err = Math.abs(read(dtype, got, i) - sum / scale);
    if (!(err <= bound)) throw new Error(`${dtype} ${op} n=${size} element ${i + offset}: |${read(dtype, got, i)} - ${sum / scale}| = ${err} > bound ${bound}`);
    worst = Math.max(worst, bound > 0 ? err / bound : 0);
  }
  return worst;
}

const sameBits = (a: TypedArray, b: TypedArray) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

for (const size of [2, 3, 4, 5, 8]) {
  describe(`float sums within the documented bound, n=${size}`, () => {
    let comms: Communicator[] = [];
    beforeAll(async () => { comms = await initLocalWorld(size, { transport: 'memory', timeoutMs: 30_000 }); });
    afterAll(async () => { await Promise.all(comms.map((c) => c.close())); });

    for (const dtype of FLOATS) {
      for (const op of ['sum', 'avg'] as const) {
        it(`allreduce ${dtype} ${op}, every algorithm: within bound, identical bits on every rank`, async () => {
          const inputs = comms.map((_, r) => input(dtype, r, COUNT));
          for (const algorithm of ['ring', 'rd', 'rabenseifner'] as const) {
            const results = await onAll(comms, (c, r) => c.allreduce(inputs[r].slice() as TypedArray, { op, algorithm, ...dt(dtype) }));
            checkWithinBound(dtype, op, size, inputs, results[0]);
            for (let r = 1; r < size; r++) expect(sameBits(results[r], results[0]), `${algorithm} rank ${r} differs from rank 0`).toBe(true);
          }
        });

        it(`reduceScatter and reduce ${dtype} ${op}: within bound`, async () => {
          const per = 601;
          const inputs = comms.map((_, r) => input(dtype, r, per * size));
          const blocks = await onAll(comms, (c, r) => c.reduceScatter(inputs[r], allocArray(dtype, per), { op, ...dt(dtype) }));
          blocks.forEach((b, r) => checkWithinBound(dtype, op, size, inputs, b, r * per));
          const root = size - 1;
          const out = allocArray(dtype, per * size);
          await onAll(comms, (c, r) => c.reduce(inputs[r], { op, root, out: r === root ? out : undefined, ...dt(dtype) }));
          checkWithinBound(dtype, op, size, inputs, out);
        });
      }
    }
  });
}
