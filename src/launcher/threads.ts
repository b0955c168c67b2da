/**
 * `tcclrun --threads`: the ranks run as worker_threads of the launcher process, linked by
 * rings in one SharedArrayBuffer (transports/shm/threads.ts). Same environment, output
 * prefixing, store and failure rules as process ranks; a failing rank's peers hear of it
 * through its state word, then the other threads are terminated.
 */
import { randomBytes } from 'node:crypto';
import { extname, resolve as resolvePath } from 'node:path';
import { Worker } from 'node:worker_threads';
import { JobAuth } from '../auth.js';
import { StoreServer } from '../rendezvous/ws-server.js';
import { createThreadWorld, markRankDead } from '../../transports/shm/threads.js';
import { resolveTsxLoader, signalNumber, TIMEOUT_EXIT_CODE, type LaunchOptions, type LaunchResult, type RankFailure } from './launcher.js';
import { relayLines, SharedSink } from './output.js';

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);
/** After a rank fails, the others get this long to notice (TCCL_ERR_PEER_LOST) and exit on their own. */
const FAILURE_GRACE_MS = 2000;

export class ThreadJob {
  private workers: Worker[] = [];
  private exited: boolean[] = [];
  private failure?: RankFailure;
  private stopReason?: 'timeout' | NodeJS.Signals;
  private stopping = false;
  /** Ranks still running when the job began stopping. */
  private stopped: number[] = [];

  constructor(private readonly opts: LaunchOptions) {}

  /** A signal to the launcher ends every rank thread. */
  interrupt(signal: NodeJS.Signals): void {
    this.stop(signal);
  }

  private graceTimer?: NodeJS.Timeout;

  /** A rank failure (reason null) leaves the others a grace period; a timeout or signal does not. */
  private stop(reason: 'timeout' | NodeJS.Signals | null): void {
    if (this.stopping) {
      if (reason) this.terminateAll(); // e.g. Ctrl-C during the grace period
      return;
    }
    this.stopping = true;
    if (reason) this.stopReason = reason;
    this.stopped = this.exited.flatMap((done, r) => (done ? [] : [r]));
    if (reason) this.terminateAll();
    else this.graceTimer = setTimeout(() => this.terminateAll(), FAILURE_GRACE_MS);
  }

  private terminateAll(): void {
    clearTimeout(this.graceTimer);
    this.workers.forEach((w, r) => { if (!this.exited[r]) void w.terminate(); });
  }

  async run(): Promise<LaunchResult> {
    const o = this.opts;
    const out = new SharedSink(o.stdout ?? process.stdout);
    const err = new SharedSink(o.stderr ?? process.stderr);
    // Fail before starting anything when a TypeScript script has no tsx to run it.
    const typescript = TS_EXTENSIONS.has(extname(o.script).toLowerCase());
    if (typescript) resolveTsxLoader();
    const jobId = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('hex');
    const store = await StoreServer.listen({ host: o.host ?? '127.0.0.1', port: 0, auth: new JobAuth(jobId, secret) });
    const world = createThreadWorld(o.n);
    const common: NodeJS.ProcessEnv = {
      ...(o.env ?? process.env),
      WORLD_SIZE: String(o.n),
      LOCAL_WORLD_SIZE: String(o.n),
      MASTER_ADDR: store.host,
      MASTER_PORT: String(store.port),
      TCCL_STORE_URL: store.url,
      TCCL_TRANSPORT: o.transport ?? 'auto',
      TCCL_JOB_ID: jobId,
      TCCL_JOB_SECRET: secret,
      TCCL_LAUNCHER_PID: String(process.pid),
      TCCL_THREADS: '1',
    };
    if (o.timeoutMs !== undefined) common.TCCL_TIMEOUT_MS = String(o.timeoutMs);
    const script = resolvePath(o.cwd ?? process.cwd(), o.script);
    const timer = o.timeoutMs !== undefined ? setTimeout(() => this.stop('timeout'), o.timeoutMs) : undefined;
    const relays: Promise<void>[] = [];
    const ends: Promise<void>[] = [];
    try {
      for (let rank = 0; rank < o.n; rank++) {
        const worker = new Worker(new URL('./thread-entry.js', import.meta.url), {
          env: { ...common, RANK: String(rank), LOCAL_RANK: String(rank) },
          workerData: { tcclThreadWorld: world, tcclEntry: { script, args: o.scriptArgs ?? [], typescript } },
          stdout: true,
          stderr: true,
        });
        this.workers.push(worker);
        this.exited.push(false);
        const prefix = o.prefix === false ? '' : `[${rank}] `;
        relays.push(relayLines(worker.stdout, out, prefix), relayLines(worker.stderr, err, prefix));
        let thrown: Error | undefined;
        worker.on('error', (e) => {
          thrown = e;
          // An uncaught error is printed by the process for process ranks; say it here too.
          err.write(Buffer.from(`${prefix}${e.stack ?? e.message}\n`));
        });
        ends.push(new Promise((resolve) => worker.on('exit', (code) => {
          this.exited[rank] = true;
          const failed = thrown !== undefined || code !== 0;
          if (failed) markRankDead(world, rank);
          if (failed && !this.stopping) {
            this.failure = { rank, code: code === 0 ? 1 : code, signal: null, lastError: thrown?.message };
            this.stop(null);
          }
          resolve();
        })));
      }
      await Promise.all(ends);
      await Promise.all(relays);
    } finally {
      clearTimeout(timer);
      clearTimeout(this.graceTimer);
      await store.close().catch(() => undefined);
    }
    return this.finish(out, err);
  }

  private async finish(out: SharedSink, err: SharedSink): Promise<LaunchResult> {
    const pids = this.workers.map(() => process.pid);
    let result: LaunchResult = { exitCode: 0, pids };
    const stopped = this.stopped;
    const tail = stopped.length ? `; stopped rank${stopped.length > 1 ? 's' : ''} ${stopped.join(',')}` : '';
    if (this.failure) {
      const f = this.failure;
      result = { exitCode: f.code ?? 1, firstFailure: f, stopped, pids, summary: `tcclrun: rank ${f.rank} failed first (exit code ${f.code})${tail}` };
    } else if (this.stopReason === 'timeout') {
      result = { exitCode: TIMEOUT_EXIT_CODE, timedOut: true, stopped, pids, summary: `tcclrun: job timed out after ${(this.opts.timeoutMs ?? 0) / 1000} s${tail}` };
    } else if (this.stopReason) {
      result = { exitCode: 128 + signalNumber(this.stopReason), interrupted: this.stopReason, stopped, pids, summary: `tcclrun: received ${this.stopReason}${tail}` };
    }
    await out.flush();
    if (result.summary) err.write(Buffer.from(result.summary + '\n'));
    await err.flush();
    return result;
  }
}
