import { TcclError } from '../errors.js';
import type { CollectiveP2P, SharedGroup } from '../collectives/p2p.js';
import { describeCollective, type CollectiveDesc } from '../diag/desync.js';
import type { FlightRecorder, OpRecord } from '../diag/flight-recorder.js';
import * as log from '../diag/log.js';
import type { Engine } from './engine.js';
import { Request } from './request.js';
import type { SharedCallHooks, SharedState } from './shared-group.js';
import { performance } from 'node:perf_hooks';

/** Largest user tag (MPI_TAG_UB): tags are non-negative int32. */
export const TAG_UB = 0x7fff_ffff;

/** Where a call runs: its communicator's rank, members and engine. */
export interface CallSite {
  readonly engine: Engine;
  readonly recorder: FlightRecorder;
  /** Communicator rank → world rank. */
  readonly worldRanks: readonly number[];
  readonly rank: number;
  readonly size: number;
  /** Point-to-point context of the communicator; collectives use context + 1. */
  readonly context: number;
  /** A timeout: print this rank's recent history. */
  onTimeout(error: TcclError): void;
}

/**
 * One collective call, as one object: its sequence number (its tag in the collective
 * context), the request the caller awaits, its flight-recorder entry, the byte send/recv its
 * algorithm uses (CollectiveP2P), and what a shared-memory wait checks (SharedCallHooks).
 * Methods, not closures: a small collective over shared memory runs in about a microsecond,
 * and a dozen closures per call were a good part of it.
 */
export class CollectiveCall<T> implements CollectiveP2P, SharedCallHooks {
  readonly rank: number;
  readonly size: number;
  readonly shared: SharedGroup | undefined;
  readonly request: Request<T>;
  private readonly tag: number;
  private readonly deadline: number;
  private readonly record: OpRecord;
  /** Made on first use: a shared-memory collective that never waits needs none. */
  private progressMade: Progress | undefined;

  constructor(
    private readonly site: CallSite,
    readonly op: string,
    readonly seq: number,
    private readonly timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
    private readonly desc: CollectiveDesc,
    sharedState: SharedState | null,
  ) {
    this.rank = site.rank;
    this.size = site.size;
    this.tag = seq & TAG_UB;
    const started = performance.now();
    this.deadline = started + timeoutMs;
    this.record = site.recorder.start(site.engine.rank, site.context, seq, op, desc, started);
    this.request = new Request<T>(op);
    this.shared = sharedState ? sharedState.bind(this) : undefined;
  }

  get progress(): Progress { return (this.progressMade ??= new Progress()); }

  // ---- CollectiveP2P (the collective context) ---------------------------------------------

  send(peer: number, data: Uint8Array): Promise<void> {
    return this.sendOn(this.site.context + 1, peer, data);
  }
  recv(peer: number, data: Uint8Array): Promise<void> {
    return this.recvOn(this.site.context + 1, peer, data);
  }

  /** The same call's send/recv on another context (the DETAIL call check), without shared memory. */
  on(context: number): CollectiveP2P {
    return { rank: this.rank, size: this.size, shared: undefined, send: (p, d) => this.sendOn(context, p, d), recv: (p, d) => this.recvOn(context, p, d) };
  }

  private sendOn(context: number, peer: number, data: Uint8Array): Promise<void> {
    const { site, seq, op } = this;
    this.progress.sending(peer);
    return site.engine.send({ context, source: this.rank, dest: site.worldRanks[peer], tag: this.tag, seq, payload: data }).then(
      () => this.progress.sent(peer, data.length),
      (e: unknown) => { throw peerOpError(site, e, op, peer, seq); });
  }

  private recvOn(context: number, peer: number, data: Uint8Array): Promise<void> {
    const { site, seq, op } = this;
    this.progress.receiving(peer);
    return site.engine.postRecv({
      context, source: peer, tag: this.tag, buf: data, elementBytes: 1, members: site.worldRanks, exact: true, op, seq, timeoutMs: this.remaining(), signal: this.signal,
    }).then(() => this.progress.received(peer, data.length));
  }

  /** Milliseconds left before the call's deadline (at least 1). */
  remaining(): number {
    return Number.isFinite(this.timeoutMs) ? Math.max(1, this.deadline - performance.now()) : Infinity;
  }

  // ---- SharedCallHooks ------------------------------------------------------------------

  check(awaited?: number): void {
    const { site, op, seq } = this;
    const failed = site.engine.failed;
    if (failed) throw failed;
    // Only the peer still awaited: one that arrived and then closed (it finished the call
    // first) left its slot mapped here and is not needed any more.
    const lost = awaited === undefined ? undefined : site.engine.peerFailure(site.worldRanks[awaited]);
    if (lost) throw new TcclError(lost.code, `${op} cannot complete: ${lost.detail}`, { rank: this.rank, peer: site.worldRanks[awaited!], op, seq, cause: lost });
    this.checkSignal();
    if (this.request.done || performance.now() > this.deadline) throw new TcclError('TCCL_ERR_TIMEOUT', 'deadline passed');
  }
  waiting(peer: number): void { this.progress.receiving(peer); }
  arrived(peer: number): void { this.progress.arrived(peer); }

  /** Throw if the call's AbortSignal fired. */
  checkSignal(): void {
    const { signal } = this;
    if (signal?.aborted) throw new TcclError('TCCL_ERR_ABORTED', `${this.op} cancelled by its AbortSignal`, { rank: this.rank, op: this.op, seq: this.seq, cause: signal.reason });
  }

  // ---- ending -----------------------------------------------------------------------------

  /** Resolve the request with the call's result; `withinCall`: it finished before the call returned. */
  succeed(value: T, withinCall = false): void {
    this.site.recorder.finish(this.record, undefined, !withinCall);
    if (log.infoEnabled()) log.info(this.site.engine.rank, `${this.op} seq ${this.seq} ${describeCollective(this.op, this.desc)} ${(performance.now() - this.record.startedAt).toFixed(3)} ms`);
    this.request.resolve(value);
  }

  /** Fail the request; a timeout gets who we still wait for and how far the call got. */
  fail(e: unknown): void {
    const error = e instanceof TcclError && e.code === 'TCCL_ERR_TIMEOUT' ? this.timeoutError(e) : e;
    this.site.recorder.finish(this.record, error);
    if (!this.request.done && error instanceof TcclError && error.code === 'TCCL_ERR_TIMEOUT') this.site.onTimeout(error);
    this.request.reject(error);
  }

  /**
   * Settle the request from what the algorithm returned: at once when it finished within the
   * call (a shared-memory collective whose peers were all there: no timer, no promise hops),
   * else when its promise settles or the deadline passes (sends count too: a peer that stops
   * reading stalls them). Returns the promise to track, if any.
   */
  settle(outcome: T | Promise<T>): Promise<void> | undefined {
    if (!(outcome instanceof Promise)) {
      this.succeed(outcome, true);
      return undefined;
    }
    const timer = Number.isFinite(this.timeoutMs) ? setTimeout(() => this.fail(new TcclError('TCCL_ERR_TIMEOUT', 'deadline passed')), this.remaining()) : null;
    return outcome.then(
      (v) => {
        if (timer) clearTimeout(timer);
        this.succeed(v);
      },
      (e: unknown) => {
        if (timer) clearTimeout(timer);
        this.fail(e);
      },
    );
  }

  private timeoutError(cause: TcclError): TcclError {
    const { site, op, seq, progress } = this;
    const silent = progress.waitingOn().map((r) => site.worldRanks[r]);
    const stuck = progress.stuckSends().map((r) => site.worldRanks[r]);
    const parts = [
      silent.length ? `not heard from rank${silent.length > 1 ? 's' : ''} ${silent.join(',')}` : 'no receive pending',
      stuck.length ? `sends to rank${stuck.length > 1 ? 's' : ''} ${stuck.join(',')} not completed` : '',
      `${progress.bytesReceived} bytes received and ${progress.bytesSent} bytes sent so far (${progress.messages} messages)`,
    ].filter(Boolean);
    const during = progress.phase ? ` during the ${progress.phase}` : '';
    return new TcclError('TCCL_ERR_TIMEOUT', `${op} did not complete within ${this.timeoutMs} ms${during}: ${parts.join('; ')}`, {
      rank: this.rank, peer: silent.length ? silent : undefined, op, seq, cause,
    });
  }
}

/** An error from the engine about one peer, with the call's rank, op and seq attached. */
export function peerOpError(site: Pick<CallSite, 'rank' | 'worldRanks'>, e: unknown, op: string, peer: number, seq: number): unknown {
  if (!(e instanceof TcclError) || e.op !== undefined) return e;
  return new TcclError(e.code, `${op} to rank ${peer} failed: ${e.detail}`, { rank: site.rank, peer: site.worldRanks[peer], op, seq, cause: e });
}

/** Per-collective message accounting, for the timeout message. */
class Progress {
  phase = '';
  bytesSent = 0;
  bytesReceived = 0;
  messages = 0;
  // Per-peer counts of outstanding messages; plain objects keyed by rank are cheapest here.
  private readonly pendingRecvs: Record<number, number> = {};
  private readonly pendingSends: Record<number, number> = {};

  receiving(peer: number): void { this.pendingRecvs[peer] = (this.pendingRecvs[peer] ?? 0) + 1; }
  received(peer: number, bytes: number): void {
    this.bytesReceived += bytes;
    this.messages++;
    dec(this.pendingRecvs, peer);
  }
  sending(peer: number): void { this.pendingSends[peer] = (this.pendingSends[peer] ?? 0) + 1; }
  sent(peer: number, bytes: number): void {
    this.bytesSent += bytes;
    this.messages++;
    dec(this.pendingSends, peer);
  }
  /** A peer waited for (not a message: shared memory) is there. */
  arrived(peer: number): void { dec(this.pendingRecvs, peer); }
  waitingOn(): number[] { return outstanding(this.pendingRecvs); }
  stuckSends(): number[] { return outstanding(this.pendingSends); }
}

function dec(m: Record<number, number>, k: number): void {
  m[k] = (m[k] ?? 0) - 1;
}

const outstanding = (m: Record<number, number>): number[] => Object.keys(m).map(Number).filter((k) => m[k] > 0).sort((a, b) => a - b);
