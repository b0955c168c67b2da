/** A trainable tensor and its gradient (same length, float32), as the parallel layers hold them. */
export interface Param {
  readonly name: string;
  readonly data: Float32Array;
  readonly grad: Float32Array;
  /**
   * The gradient is a partial sum over the tensor-parallel group (a replicated parameter
   * used on sequence-parallel rows): reduceSequenceParallelGrads must sum it before the step.
   */
  readonly tpPartialGrad?: boolean;
}

export function makeParam(name: string, data: Float32Array, tpPartialGrad = false): Param {
  return { name, data, grad: new Float32Array(data.length), tpPartialGrad };
}

/** Anything with parameters. */
export interface HasParams {
  parameters(): Param[];
}

export function zeroGrads(params: readonly Param[]): void {
  for (const p of params) p.grad.fill(0);
}
