/** Messages between the kernel pool and its workers. Tensors travel in SharedArrayBuffers. */
import type { MatmulOptions } from '../matmul.js';

export interface MatmulTask {
  id: number;
  kind: 'matmul';
  /** One SharedArrayBuffer holding A, then B, then C (float32), at these element offsets. */
  shared: SharedArrayBuffer;
  aOffset: number;
  bOffset: number;
  cOffset: number;
  m: number;
  k: number;
  n: number;
  opts: MatmulOptions;
}

export type TaskResult = { id: number; ok: true } | { id: number; ok: false; message: string };
