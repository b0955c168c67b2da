/**
 * Sequence parallelism's one extra step: parameters replicated across the tensor-parallel
 * group but applied to this rank's rows only (norm weights, a row layer's bias) get partial
 * gradients; sum them over the group before the optimizer (Megatron does the same).
 * Their values stay identical on every rank because every rank then applies the same sum.
 */

import type { ParallelGroup } from './group.js';
import type { Param } from './param.js';

export async function reduceSequenceParallelGrads(group: ParallelGroup, params: readonly Param[]): Promise<void> {
  const partial = params.filter((p) => p.tpPartialGrad);
  if (partial.length === 0 || group.size === 1) return;
  // One allreduce for all of them: they are small.
  const flat = new Float32Array(partial.reduce((s, p) => s + p.grad.length, 0));
  let at = 0;
  for (const p of partial) {
    flat.set(p.grad, at);
    at += p.grad.length;
  }
  await group.allreduce(flat, 'other');
  at = 0;
  for (const p of partial) {
    p.grad.set(flat.subarray(at, at + p.grad.length));
    at += p.grad.length;
  }
}
