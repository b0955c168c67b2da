/** A kernel-pool worker: runs kernels on SharedArrayBuffer tensors, answers with the task id. */
import { parentPort } from 'node:worker_threads';
import { matmul } from '../matmul.js';
import type { MatmulTask, TaskResult } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('kernel pool worker started outside a worker thread');

port.on('message', (task: MatmulTask) => {
  let reply: TaskResult;
  try {
    const f = new Float32Array(task.shared);
    const a = f.subarray(task.aOffset, task.aOffset + task.m * task.k);
    const b = f.subarray(task.bOffset, task.bOffset + task.k * task.n);
    const c = f.subarray(task.cOffset, task.cOffset + task.m * task.n);
    matmul(a, b, task.m, task.k, task.n, c, task.opts);
    reply = { id: task.id, ok: true };
  } catch (e) {
    reply = { id: task.id, ok: false, message: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply);
});
