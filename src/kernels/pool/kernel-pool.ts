/**
 * A pool of worker threads that run kernels, so the main thread's event loop stays free to
 * pump sockets while a long matmul runs (DESIGN §4: compute must not stop communication).
 * Operands are copied into one SharedArrayBuffer per task (O(n²) next to the O(n³) product);
 * the worker runs the same wasm kernel as the main thread, so results are bitwise identical.
 * Tasks queue FIFO onto idle workers. Every task has a timeout; a worker that dies or times
 * out fails its task with a coded error and is replaced. Idle workers do not keep the process
 * alive; close() terminates them.
 */

import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TcclError, invalidArgument } from '../../errors.js';
import { hostCpuCount } from '../../host-load.js';
import type { MatmulOptions } from '../matmul.js';
import type { MatmulTask, TaskResult } from './protocol.js';

export interface KernelPoolOptions {
  /** Worker threads; default max(1, cores − 1). */
  threads?: number;
  /** Per-task limit; default 300 s. */
  timeoutMs?: number;
}

interface Pending {
  task: MatmulTask;
  resolve: () => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy?: { pending: Pending; timer: NodeJS.Timeout };
}

// From dist the worker is compiled JS. From source (tsx, vitest) it is .ts: a tiny bootstrap
// registers tsx's loader in the worker first (a worker's execArgv cannot carry --import).
const fromSource = import.meta.url.endsWith('.ts');

// Workers inherit the parent's node flags, except one that only makes sense for `node -e`.
const inheritedExecArgv = () => process.execArgv.filter((a) => !a.startsWith('--input-type'));

function startWorker(): Worker {
  const execArgv = inheritedExecArgv();
  if (!fromSource) return new Worker(new URL('./worker.js', import.meta.url), { execArgv });
  // tsx's ESM register API (require.resolve would pick its CommonJS build).
  const tsxPkg = createRequire(import.meta.url).resolve('tsx/package.json');
  const tsxApi = pathToFileURL(path.join(path.dirname(tsxPkg), 'dist/esm/api/index.mjs')).href;
  const workerUrl = new URL('./worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(workerUrl)}); });`;
  return new Worker(bootstrap, { eval: true, execArgv });
}

export class KernelPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;
  readonly timeoutMs: number;

  constructor(opts: KernelPoolOptions = {}) {
    const threads = opts.threads ?? Math.max(1, hostCpuCount() - 1);
    if (!Number.isInteger(threads) || threads < 1) throw invalidArgument(`kernel pool: threads must be a positive integer, got ${threads}`, { op: 'kernel-pool' });
    this.timeoutMs = opts.timeoutMs ?? 300_000;
    for (let i = 0; i < threads; i++) this.slots.push(this.spawn());
  }

  get threads(): number {
    return this.slots.length;
  }

  private spawn(): Slot {
    const worker = startWorker();
    worker.unref();
    const slot: Slot = { worker };
    worker.on('message', (r: TaskResult) => {
      const busy = slot.busy;
      if (!busy || busy.pending.task.id !== r.id) return;
      this.release(slot);
      if (r.ok) busy.pending.resolve();
      else busy.pending.reject(new TcclError('TCCL_ERR_INVALID_ARGUMENT', `kernel pool: ${r.message}`, { op: busy.pending.task.kind }));
    });
    const fail = (why: string) => {
      if (this.closed) return;
      const busy = slot.busy;
      this.replace(slot);
      busy?.pending.reject(new TcclError('TCCL_ERR_INTERNAL', `kernel pool worker ${why}`, { op: busy.pending.task.kind }));
    };
    worker.on('error', (e) => fail(`failed: ${e.message}`));
    worker.on('exit', (code) => fail(`exited with code ${code}`));
    return slot;
  }

  private release(slot: Slot): void {
    if (slot.busy) clearTimeout(slot.busy.timer);
    slot.busy = undefined;
    slot.worker.unref();
    this.dispatch();
  }

  private replace(slot: Slot): void {
    if (slot.busy) clearTimeout(slot.busy.timer);
    slot.busy = undefined;
    slot.worker.removeAllListeners();
    void slot.worker.terminate();
    const i = this.slots.indexOf(slot);
    if (i >= 0 && !this.closed) this.slots[i] = this.spawn();
    this.dispatch();
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.busy) continue;
      const pending = this.queue.shift()!;
      const timer = setTimeout(() => {
        this.replace(slot);
        pending.reject(new TcclError('TCCL_ERR_TIMEOUT', `kernel pool: ${pending.task.kind} ${pending.task.m}×${pending.task.k}×${pending.task.n} did not finish within ${this.timeoutMs} ms`, { op: pending.task.kind }));
      }, this.timeoutMs);
      slot.busy = { pending, timer };
      slot.worker.ref(); // a running task keeps the process alive
      slot.worker.postMessage(pending.task);
    }
  }

  /** out (+)= op(A)·op(B) on a worker thread; same contract as kernels/matmul.ts. */
  async matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, out?: Float32Array, opts: MatmulOptions = {}): Promise<Float32Array> {
    if (this.closed) throw new TcclError('TCCL_ERR_CLOSED', 'kernel pool is closed', { op: 'matmul' });
    for (const [name, v] of [['M', m], ['K', k], ['N', n]] as const) {
      if (!Number.isInteger(v) || v < 0) throw invalidArgument(`matmul: ${name} must be a non-negative integer, got ${v}`, { op: 'matmul' });
    }
    if (a.length < m * k || b.length < k * n) throw invalidArgument(`matmul: A has ${a.length} elements (needs ${m * k}), B has ${b.length} (needs ${k * n})`, { op: 'matmul' });
    const c = out ?? new Float32Array(m * n);
    if (c.length < m * n) throw invalidArgument(`matmul: out has ${c.length} elements, needs ${m * n}`, { op: 'matmul' });
    const shared = new SharedArrayBuffer((m * k + k * n + m * n) * 4);
    const f = new Float32Array(shared);
    f.set(a.subarray(0, m * k), 0);
    f.set(b.subarray(0, k * n), m * k);
    if (opts.accumulate) f.set(c.subarray(0, m * n), m * k + k * n);
    const task: MatmulTask = { id: this.nextId++, kind: 'matmul', shared, aOffset: 0, bOffset: m * k, cOffset: m * k + k * n, m, k, n, opts: { ...opts } };
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.dispatch();
    });
    c.set(f.subarray(m * k + k * n, m * k + k * n + m * n));
    return c;
  }

  /** Terminate every worker; queued and running tasks fail with TCCL_ERR_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new TcclError('TCCL_ERR_CLOSED', 'kernel pool closed', { op: 'matmul' });
    for (const p of this.queue.splice(0)) p.reject(err);
    await Promise.all(this.slots.map(async (s) => {
      if (s.busy) {
        clearTimeout(s.busy.timer);
        s.busy.pending.reject(err);
        s.busy = undefined;
      }
      s.worker.removeAllListeners();
      await s.worker.terminate();
    }));
  }
}
