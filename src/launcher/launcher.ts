/**
 * The job runner behind tcclrun: hosts the rendezvous store, spawns N ranks, relays their
 * output, and stops the whole job when one rank fails, on timeout or on a signal.
 * No process.exit and no signal wiring here (see cli.ts), so it can be driven from tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { extname, resolve as resolvePath } from 'node:path';
import type { Writable } from 'node:stream';
import { JobAuth } from '../auth.js';
import { TcclError } from '../errors.js';
import { StoreServer } from '../rendezvous/ws-server.js';
import type { BindTo, TransportName } from './args.js';
import { relayLines, SharedSink } from './output.js';
import { removeJobSegments } from './shm-cleanup.js';
import { shmAddon } from '../../transports/shm/native.js';
import { isStopped, LastError } from './last-error.js';

export interface LaunchOptions {
  /** Number of ranks. */
  n: number;
  /** Script to run in every rank (absolute, or relative to `cwd`). */
  script: string;
  scriptArgs?: string[];
  transport?: TransportName;
  /** Whole-job limit; also exported to ranks as TCCL_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Prefix output lines with `[rank] ` (default true). */
  prefix?: boolean;
  /** Store bind address (default 127.0.0.1). */
  host?: string;
  /** Base environment of the ranks (default process.env). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where rank output goes (default process.stdout / process.stderr). */
  stdout?: Writable;
  stderr?: Writable;
  /** Give rank 0 the launcher's stdin (mpirun does); others get /dev/null. Default false. */
  stdinToRank0?: boolean;
  /** Time between SIGTERM and SIGKILL when stopping ranks (default 3000). */
  killGraceMs?: number;
  /** 'core': rank r's main thread runs on the r-th CPU this launcher may use (TCCL_BIND_CPU). Default 'none'. */
  bindTo?: BindTo;
}

export interface RankFailure {
  rank: number;
  /** Exit code, or null when the rank died by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last error line the rank printed on stderr, if any. */
  lastError?: string;
}

export interface LaunchResult {
  exitCode: number;
  /** The first rank to exit non-zero or by signal on its own (not while being stopped). */
  firstFailure?: RankFailure;
  /** The job was stopped by the --timeout limit. */
  timedOut?: boolean;
  /** The job was stopped because the launcher got this signal. */
  interrupted?: NodeJS.Signals;
  /** Ranks that were still running when the job was stopped. */
  stopped?: number[];
  /** Process ids of the ranks, by rank (all reaped by the time the promise resolves). */
  pids: number[];
  /** The closing line printed to stderr, if any. */
  summary?: string;
  /** Milliseconds from the first failure (or timeout / signal) until every rank had exited. */
  stopMs?: number;
  /** Ranks found stopped (SIGSTOP) when the job was being stopped: often the root cause. */
  frozen?: number[];
}

/** Exit status used when --timeout expires (same as timeout(1)). */
export const TIMEOUT_EXIT_CODE = 124;
export const DEFAULT_KILL_GRACE_MS = 3000;
/** After the first failure, how long the other ranks may exit on their own before SIGTERM. */
const NOTICE_MS = 1000;
/** After every rank exited, output pipes still open (held by a grandchild) this long are cut. */
const PIPE_IDLE_MS = 1000;

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);

type StopReason =
  | { kind: 'failure'; failure: RankFailure }
  | { kind: 'timeout' }
  | { kind: 'signal'; signal: NodeJS.Signals };

interface Rank {
  rank: number;
  proc: ChildProcess;
  exited: boolean;
  exitedP: Promise<void>;
  markExited: (code: number | null, signal: NodeJS.Signals | null) => void;
  relays: Promise<void>;
  lastError: LastError;
}

export const signalNumber = (sig: NodeJS.Signals): number => osConstants.signals[sig] ?? 0;

/** One launch; `run()` once, `interrupt()` from signal handlers. */
export class Job {
  private readonly opts: LaunchOptions;
  private readonly graceMs: number;
  private ranks: Rank[] = [];
  private reason?: StopReason;
  private stopped?: number[];
  private stopping = false;
  private killedHard = false;
  private graceTimer?: NodeJS.Timeout;
  private noticeTimer?: NodeJS.Timeout;
  private jobTimer?: NodeJS.Timeout;
  private started = false;
  private lastOutput = Date.now();
  private out?: SharedSink;
  private err?: SharedSink;
  private stopStartedAt?: number;
  private frozen: number[] = [];

  constructor(opts: LaunchOptions) {
    if (!Number.isInteger(opts.n) || opts.n < 1) {
      throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', `n must be a positive integer, got ${opts.n}`);
    }
    this.opts = opts;
    this.graceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  }

  /** Process ids of the spawned ranks (empty before spawn). */
  get pids(): number[] {
    return this.ranks.map((r) => r.proc.pid ?? -1);
  }

  /**
   * Forward `signal` to every running rank, then stop the job like a failure would. A second
   * call while stopping kills the remaining ranks at once (impatient Ctrl-C).
   */
  interrupt(signal: NodeJS.Signals): void {
    if (this.stopping) {
      this.killNow();
      return;
    }
    this.beginStop({ kind: 'signal', signal }, signal);
  }

  async run(): Promise<LaunchResult> {
    if (this.started) throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', 'Job.run() called twice');
    this.started = true;
    const o = this.opts;
    const out = (this.out = new SharedSink(o.stdout ?? process.stdout));
    const err = (this.err = new SharedSink(o.stderr ?? process.stderr));

    // Resolve tsx before anything is started so a missing dependency fails cleanly.
    const loader = TS_EXTENSIONS.has(extname(o.script).toLowerCase()) ? resolveTsxLoader() : undefined;

    // Before anything is started too: more ranks than CPUs cannot be bound.
    const cpus = o.bindTo === 'core' ? bindCpus(o.n) : undefined;
    const jobId = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('hex');
    // Only this job's ranks (which get the secret) may use the store.
    const store = await StoreServer.listen({ host: o.host ?? '127.0.0.1', port: 0, auth: new JobAuth(jobId, secret) });
    try {
      // A signal that arrived while the store was starting: nothing to spawn.
      if (this.reason) return await this.finish(out, err);

      const { addr, url } = childFacingAddress(store);
      const base = o.env ?? process.env;
      const common: NodeJS.ProcessEnv = {
        WORLD_SIZE: String(o.n),
        LOCAL_WORLD_SIZE: String(o.n),
        MASTER_ADDR: addr,
        MASTER_PORT: String(store.port),
        TCCL_STORE_URL: url,
        TCCL_TRANSPORT: o.transport ?? 'auto',
        TCCL_JOB_ID: jobId,
        // Environment only: argv is world-readable through ps and /proc.
        TCCL_JOB_SECRET: secret,
        TCCL_LAUNCHER_PID: String(process.pid),
      };
      if (o.timeoutMs !== undefined) common.TCCL_TIMEOUT_MS = String(o.timeoutMs);
      const script = resolvePath(o.cwd ?? process.cwd(), o.script);
      const args = [...(loader ? ['--import', loader] : []), script, ...(o.scriptArgs ?? [])];

      for (let rank = 0; rank < o.n; rank++) {
        const env = { ...base, ...common, RANK: String(rank), LOCAL_RANK: String(rank), ...(cpus ? { TCCL_BIND_CPU: String(cpus[rank]) } : {}) };
        try {
          this.ranks.push(this.spawnRank(rank, args, env, out, err));
        } catch (e) {
          // Synchronous spawn failure: stop (and reap) the ranks already started.
          err.write(Buffer.from(`tcclrun: could not start rank ${rank}: ${(e as Error).message}\n`));
          this.beginStop({ kind: 'failure', failure: { rank, code: 127, signal: null } }, 'SIGTERM');
          break;
        }
      }

      if (o.timeoutMs !== undefined) {
        this.jobTimer = setTimeout(() => this.beginStop({ kind: 'timeout' }, 'SIGTERM'), o.timeoutMs);
      }

      await Promise.all(this.ranks.map((r) => r.exitedP));
      clearTimeout(this.noticeTimer);
      clearTimeout(this.graceTimer);
      clearTimeout(this.jobTimer);
      await this.drainOutput();
      return await this.finish(out, err);
    } finally {
      clearTimeout(this.noticeTimer);
      clearTimeout(this.graceTimer);
      clearTimeout(this.jobTimer);
      // Segments of ranks that died before unlinking theirs (kill -9 during setup).
      removeJobSegments(jobId);
      await closeQuietly(store);
    }
  }

  private spawnRank(rank: number, args: string[], env: NodeJS.ProcessEnv, out: SharedSink, err: SharedSink): Rank {
    const o = this.opts;
    let markExited!: Rank['markExited'];
    const exitedP = new Promise<void>((resolve) => {
      markExited = (code, signal) => {
        if (r.exited) return;
        r.exited = true;
        this.onRankExit(rank, code, signal);
        resolve();
      };
    });
    // Same process group as the launcher (no `detached`), so a terminal Ctrl-C reaches ranks
    // too; the launcher still signals each rank itself and escalates to SIGKILL.
    const proc = spawn(process.execPath, args, {
      cwd: o.cwd,
      env,
      stdio: [rank === 0 && o.stdinToRank0 ? 'inherit' : 'ignore', 'pipe', 'pipe'],
    });
    const r: Rank = { rank, proc, exited: false, exitedP, markExited, relays: Promise.resolve(), lastError: new LastError() };
    if (proc.stderr) r.lastError.watch(proc.stderr);
    proc.on('exit', (code, signal) => markExited(code, signal));
    proc.on('error', (e) => {
      // Only a failed spawn leaves no pid; kill() errors on a live child are not fatal.
      if (proc.pid === undefined) {
        err.write(Buffer.from(`tcclrun: could not start rank ${rank}: ${e.message}\n`));
        markExited(127, null);
      }
    });
    const prefix = o.prefix === false ? '' : `[${rank}] `;
    const touch = () => (this.lastOutput = Date.now());
    proc.stdout?.on('data', touch);
    proc.stderr?.on('data', touch);
    r.relays = Promise.all([
      proc.stdout ? relayLines(proc.stdout, out, prefix) : undefined,
      proc.stderr ? relayLines(proc.stderr, err, prefix) : undefined,
    ]).then(() => undefined);
    return r;
  }

  private onRankExit(rank: number, code: number | null, signal: NodeJS.Signals | null): void {
    const failed = signal !== null || code !== 0;
    // Exits caused by our own stop are consequences, not failures.
    if (failed && !this.stopping) this.beginStop({ kind: 'failure', failure: { rank, code, signal, lastError: this.ranks[rank]?.lastError.line } }, 'SIGTERM');
  }

  private beginStop(reason: StopReason, signal: NodeJS.Signals): void {
    if (this.stopping) return;
    // Once every rank has exited the outcome is decided; a late signal or timer changes nothing.
    if (reason.kind !== 'failure' && this.ranks.length > 0 && this.ranks.every((r) => r.exited)) return;
    this.stopping = true;
    this.reason = reason;
    clearTimeout(this.jobTimer);
    this.stopStartedAt = performance.now();
    // After a rank fails, the others get a moment to notice (a lost peer, an abort) and exit
    // with their own error, which names what they saw; then they are signalled. Stays within
    // the 5 s bound: NOTICE_MS + the SIGTERM grace.
    if (reason.kind === 'failure') this.noticeTimer = setTimeout(() => this.signalRunning(signal), Math.min(NOTICE_MS, this.graceMs));
    else this.signalRunning(signal);
  }

  private signalRunning(signal: NodeJS.Signals): void {
    const running = this.ranks.filter((r) => !r.exited);
    this.stopped = running.map((r) => r.rank);
    if (running.length === 0) return;
    for (const r of running) r.proc.kill(signal);
    // A stopped (SIGSTOP) rank acts on the signal only once continued; note it as a likely culprit.
    void Promise.all(running.map(async (r) => {
      if (await isStopped(r.proc.pid)) this.frozen.push(r.rank);
      if (!r.exited) r.proc.kill('SIGCONT');
    }));
    this.graceTimer = setTimeout(() => {
      const left = this.ranks.filter((x) => !x.exited).map((x) => x.rank);
      if (left.length) {
        const line = `tcclrun: rank${left.length > 1 ? 's' : ''} ${left.join(',')} still running ${fmtSeconds(this.graceMs)} after ${signal}; sending SIGKILL\n`;
        this.err?.write(Buffer.from(line));
      }
      this.killNow();
    }, this.graceMs);
  }

  private killNow(): void {
    if (this.killedHard) return;
    this.killedHard = true;
    clearTimeout(this.noticeTimer);
    clearTimeout(this.graceTimer);
    for (const r of this.ranks) if (!r.exited) r.proc.kill('SIGKILL');
  }

  /** Wait for the pipes to hit EOF, but cut pipes a grandchild keeps open without writing. */
  private async drainOutput(): Promise<void> {
    const all = Promise.all(this.ranks.map((r) => r.relays));
    let watchdog: NodeJS.Timeout | undefined;
    const idle = new Promise<void>((resolve) => {
      watchdog = setInterval(() => {
        if (this.out?.busy || this.err?.busy || Date.now() - this.lastOutput < PIPE_IDLE_MS) return;
        for (const r of this.ranks) {
          r.proc.stdout?.destroy();
          r.proc.stderr?.destroy();
        }
        resolve();
      }, PIPE_IDLE_MS / 4);
    });
    await Promise.race([all, idle]);
    clearInterval(watchdog);
    await all;
  }

  private async finish(out: SharedSink, err: SharedSink): Promise<LaunchResult> {
    const pids = this.pids;
    const stopped = this.stopped ?? [];
    const tail = stopped.length ? `; stopped rank${stopped.length > 1 ? 's' : ''} ${stopped.join(',')}` : '';
    const reason = this.reason;
    let result: LaunchResult;
    if (!reason) {
      result = { exitCode: 0, pids };
    } else if (reason.kind === 'failure') {
      const f = reason.failure;
      const how = f.signal !== null ? `signal ${f.signal}` : `exit code ${f.code}`;
      const exitCode = f.signal !== null ? 128 + signalNumber(f.signal) : (f.code ?? 1);
      result = {
        exitCode,
        firstFailure: f,
        stopped,
        pids,
        summary: `tcclrun: rank ${f.rank} failed first (${how})${tail}`,
      };
    } else if (reason.kind === 'timeout') {
      result = {
        exitCode: TIMEOUT_EXIT_CODE,
        timedOut: true,
        stopped,
        pids,
        summary: `tcclrun: job timed out after ${fmtSeconds(this.opts.timeoutMs ?? 0)}${tail}`,
      };
    } else {
      result = {
        exitCode: 128 + signalNumber(reason.signal),
        interrupted: reason.signal,
        stopped,
        pids,
        summary: `tcclrun: received ${reason.signal}${tail}`,
      };
    }
    if (this.stopStartedAt !== undefined) result.stopMs = performance.now() - this.stopStartedAt;
    if (this.frozen.length) result.frozen = [...this.frozen].sort((a, b) => a - b);
    await out.flush();
    if (result.summary) err.write(Buffer.from(result.summary + '\n'));
    const details: string[] = [];
    if (result.firstFailure?.lastError) details.push(`tcclrun: rank ${result.firstFailure.rank}'s last error: ${result.firstFailure.lastError}`);
    if (result.frozen) details.push(`tcclrun: rank${result.frozen.length > 1 ? 's' : ''} ${result.frozen.join(',')} ${result.frozen.length > 1 ? 'were' : 'was'} stopped (SIGSTOP) when the job was stopped`);
    if (result.stopMs !== undefined && result.exitCode !== 0) details.push(`tcclrun: every rank exited ${fmtSeconds(result.stopMs)} after the job began stopping`);
    if (details.length) err.write(Buffer.from(details.join('\n') + '\n'));
    await err.flush();
    return result;
  }
}

/** Run a job to completion: every rank is reaped before the promise resolves. */
export function launch(options: LaunchOptions): Promise<LaunchResult> {
  return new Job(options).run();
}

/**
 * File URL of tsx's loader, resolved from this package (not the user's cwd), for
 * `node --import`.
 */
export function resolveTsxLoader(): string {
  try {
    return import.meta.resolve('tsx');
  } catch (e) {
    throw new TcclError('TCCL_ERR_INTERNAL', 'cannot run a TypeScript script: the "tsx" package is not installed', {
      cause: e,
    });
  }
}

/** A wildcard bind address is not connectable everywhere; ranks are local, so use loopback. */
function childFacingAddress(store: StoreServer): { addr: string; url: string } {
  const wild: Record<string, string> = { '0.0.0.0': '127.0.0.1', '::': '::1', '': '127.0.0.1' };
  const loop = wild[store.host];
  if (loop === undefined) return { addr: store.host, url: store.url };
  const u = new URL(store.url);
  u.hostname = loop.includes(':') ? `[${loop}]` : loop;
  // URL adds a '/' path; keep the store's own spelling otherwise.
  const url = !store.url.endsWith('/') && u.href.endsWith('/') ? u.href.slice(0, -1) : u.href;
  return { addr: loop, url };
}

async function closeQuietly(store: StoreServer): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  // Never let a stuck close keep the launcher (and the user's shell) waiting.
  await Promise.race([store.close().catch(() => undefined), new Promise((r) => (t = setTimeout(r, 2000)))]);
  clearTimeout(t);
}

function fmtSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * The CPU of each of n ranks for --bind-to core: the CPUs this launcher may run on, one per
 * rank (mpirun refuses to put two bound ranks on one core too).
 */
function bindCpus(n: number): number[] {
  const cpus = shmAddon().allowedCpus();
  if (n > cpus.length) {
    throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', `--bind-to core: ${n} ranks but this launcher may use only ${cpus.length} CPU${cpus.length === 1 ? '' : 's'} (${cpus.join(',')}); use --bind-to none to share them`);
  }
  return cpus.slice(0, n);
}
