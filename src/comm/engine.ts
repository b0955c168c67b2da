import { setMaxListeners } from 'node:events';
import { hostHasIdleCores } from '../host-load.js';
import { TcclError } from '../errors.js';
import type { Transport, TransportSink } from '../transport.js';
import { FrameKind, type FrameHeader } from '../wire/frame.js';
import { Request, type Status } from './request.js';
import { performance } from 'node:perf_hooks';

/**
 * Spin only for messages this small: for large ones the wake-up is a small share of the
 * transfer, and a spinning process takes the core the kernel needs to move the bytes.
 */
const SPIN_MAX_BYTES = 64 << 10;
/** Polling windows shorter than this are not worth a wake-up saved: stop polling instead. */
const SPIN_MIN_US = 12;
/** A frame that took longer than this to arrive while polling was not helped by polling. */
const SPIN_USEFUL_US = 60;
/** While polling is off, every this-many waits probe whether it pays again. */
const SPIN_PROBE_EVERY = 64;

export const ANY_SOURCE = -1;
export const ANY_TAG = -1;

/** A receive waiting for its message. */
interface PostedRecv {
  context: number;
  source: number; // communicator rank, or ANY_SOURCE
  tag: number; // or ANY_TAG
  buf: Uint8Array;
  elementBytes: number;
  /** World ranks of the communicator, to map `source` and to judge ANY_SOURCE on peer loss. */
  members: readonly number[];
  /** Collective receives must get exactly buf.length bytes; anything else is a desync. */
  exact: boolean;
  req: Request<Status>;
  op: string;
  seq: number;
  timer: NodeJS.Timeout | null;
  truncatedFrom?: number;
  cleanup?: () => void;
  /** Counted in Engine.activeRecvs. */
  active?: boolean;
}

/** A message that arrived before its receive was posted (possibly still streaming in). */
interface UnexpectedMsg {
  source: number;
  tag: number;
  peer: number;
  length: number;
  payload: Uint8Array | null;
  complete: boolean;
  claimedBy: PostedRecv | null;
}

interface ContextQueues {
  posted: PostedRecv[];
  unexpected: UnexpectedMsg[];
}

export interface EngineOptions {
  /** Unexpected bytes held before the transport stops reading from the sending peer. */
  maxUnexpectedBytes: number;
  /**
   * How long to keep the event loop polling (instead of sleeping in epoll) after a receive
   * is posted or a frame arrives while receives wait. Waking a sleeping process costs tens
   * of microseconds on a VM; polling costs a core. 0 disables (oversubscribed hosts).
   */
  spinMicros: number;
}

export interface SendArgs {
  context: number;
  source: number; // sender's communicator rank
  dest: number; // destination world rank
  tag: number;
  seq: number;
  payload: Uint8Array;
}

export interface RecvArgs {
  context: number;
  source: number;
  tag: number;
  buf: Uint8Array;
  elementBytes: number;
  members: readonly number[];
  exact: boolean;
  op: string;
  seq: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Per-process matching engine shared by every communicator of one world: it owns the
 * transport, matches incoming frames to posted receives per (context, source, tag) in MPI
 * order, and fails pending operations when a peer is lost or the job aborts.
 */
export class Engine implements TransportSink {
  private readonly contexts = new Map<number, ContextQueues>();
  /** Per world peer: what the frame currently streaming in from that peer belongs to. */
  private readonly inflight: (PostedRecv | UnexpectedMsg | null)[];
  private readonly lostPeers = new Map<number, TcclError>();
  private readonly pausedPeers = new Set<number>();
  private unexpectedBytes = 0;
  /** Receives posted and not yet settled: while any wait, the engine may spin. */
  private activeRecvs = 0;
  private spinDeadline = 0;
  private spinning = false;
  /** Current polling window (adapts between 0 and opts.spinMicros), and waits skipped while 0. */
  private spinBudgetUs: number;
  private spinSkipped = 0;
  private spinStartedAt = 0;
  private failure: TcclError | null = null;
  /** Next free context id; communicators agree on a value through their parent (see split). */
  nextContext = 2;

  constructor(readonly rank: number, readonly size: number, readonly transport: Transport, private readonly opts: EngineOptions) {
    this.inflight = new Array(size).fill(null);
    this.spinBudgetUs = opts.spinMicros;
  }

  get failed(): TcclError | null { return this.failure; }
  get heldUnexpectedBytes(): number { return this.unexpectedBytes; }

  private queues(context: number): ContextQueues {
    let q = this.contexts.get(context);
    if (!q) {
      q = { posted: [], unexpected: [] };
      this.contexts.set(context, q);
    }
    return q;
  }

  // ---- sending -------------------------------------------------------------------------

  send(a: SendArgs): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const header: FrameHeader = {
      kind: FrameKind.Data, context: a.context, source: a.source, tag: a.tag, seq: a.seq, aux: 0, length: a.payload.length,
    };
    if (a.dest === this.rank) {
      this.deliverLocal(header, a.payload);
      return Promise.resolve();
    }
    const lost = this.lostPeers.get(a.dest);
    if (lost) return Promise.reject(lost);
    return this.transport.send(a.dest, header, a.payload);
  }

  /** Self-sends skip the transport; an unmatched one is copied, like MPI's self path. */
  private deliverLocal(header: FrameHeader, payload: Uint8Array): void {
    const dest = this.beginFrame(this.rank, header);
    if (dest) dest.set(payload);
    this.endFrame(this.rank, header, dest === undefined ? payload.slice() : dest);
  }

  // ---- receiving -----------------------------------------------------------------------

  postRecv(a: RecvArgs): Request<Status> {
    const req = new Request<Status>(a.op);
    const recv: PostedRecv = {
      context: a.context, source: a.source, tag: a.tag, buf: a.buf, elementBytes: a.elementBytes,
      members: a.members, exact: a.exact, req, op: a.op, seq: a.seq, timer: null,
    };
    if (this.failure) {
      req.reject(this.failure);
      return req;
    }
    const worldSource = a.source === ANY_SOURCE ? -1 : a.members[a.source];
    const q = this.queues(a.context);
    // A message that arrived before its sender left is still delivered.
    const i = q.unexpected.findIndex((m) => matches(recv, m.source, m.tag));
    if (i >= 0 && q.unexpected[i].complete) {
      const msg = q.unexpected[i];
      q.unexpected.splice(i, 1);
      this.consumeUnexpected(msg, recv);
      return req;
    }
    const lost = worldSource >= 0 ? this.lostPeers.get(worldSource) : undefined;
    if (lost) {
      req.reject(this.peerError(lost, recv, worldSource));
      return req;
    }
    if (i >= 0) {
      const msg = q.unexpected[i];
      q.unexpected.splice(i, 1);
      msg.claimedBy = recv; // still streaming in: endFrame finishes it
    } else {
      q.posted.push(recv);
    }
    // A receive is waiting: every paused sender must flow again, or it might never arrive.
    this.resumeAll();
    this.activeRecvs++;
    recv.active = true;
    if (a.buf.length <= SPIN_MAX_BYTES) this.spin();
    this.armTimeout(recv, a.timeoutMs, worldSource);
    if (a.signal) this.armSignal(recv, a.signal);
    return req;
  }

  private armTimeout(recv: PostedRecv, timeoutMs: number, worldSource: number): void {
    if (!Number.isFinite(timeoutMs)) return;
    recv.timer = setTimeout(() => {
      recv.timer = null;
      this.unpost(recv);
      this.settle(recv);
      const from = recv.source === ANY_SOURCE ? 'any source' : `rank ${recv.source}`;
      recv.req.reject(new TcclError('TCCL_ERR_TIMEOUT',
        `${recv.op}: no message (tag ${recv.tag === ANY_TAG ? 'any' : recv.tag}) from ${from} within ${timeoutMs} ms; 0 of up to ${recv.buf.length} bytes received`,
        { rank: this.rank, peer: worldSource >= 0 ? worldSource : undefined, op: recv.op, seq: recv.seq }));
    }, timeoutMs);
  }

  private armSignal(recv: PostedRecv, signal: AbortSignal): void {
    const onAbort = () => {
      this.unpost(recv);
      this.settle(recv);
      recv.req.reject(new TcclError('TCCL_ERR_ABORTED', `${recv.op} cancelled by its AbortSignal`, { rank: this.rank, op: recv.op, seq: recv.seq, cause: signal.reason }));
    };
    if (signal.aborted) return onAbort();
    // A collective posts one receive per message under the caller's one signal.
    setMaxListeners(Infinity, signal);
    signal.addEventListener('abort', onAbort, { once: true });
    recv.cleanup = () => signal.removeEventListener('abort', onAbort);
  }

  private unpost(recv: PostedRecv): void {
    const q = this.contexts.get(recv.context);
    if (!q) return;
    const i = q.posted.indexOf(recv);
    if (i >= 0) q.posted.splice(i, 1);
  }

  private settle(recv: PostedRecv): void {
    if (recv.active) {
      recv.active = false;
      this.activeRecvs--;
    }
    if (recv.timer) clearTimeout(recv.timer);
    recv.timer = null;
    recv.cleanup?.();
  }

  private complete(recv: PostedRecv, source: number, tag: number, length: number): void {
    this.settle(recv);
    if (recv.truncatedFrom !== undefined || (recv.exact && length !== recv.buf.length)) {
      const code = recv.exact ? 'TCCL_ERR_DESYNC' : 'TCCL_ERR_TRUNCATED';
      const what = recv.exact
        ? `expected exactly ${recv.buf.length} bytes but rank ${source} sent ${length}: ranks called it with different sizes`
        : `message of ${length} bytes from rank ${source} (tag ${tag}) does not fit the ${recv.buf.length}-byte receive buffer; the message was discarded`;
      recv.req.reject(new TcclError(code, `${recv.op}: ${what}`, { rank: this.rank, peer: recv.members[source], op: recv.op, seq: recv.seq }));
      return;
    }
    recv.req.resolve({ source, tag, bytes: length, count: Math.floor(length / recv.elementBytes) });
  }

  private consumeUnexpected(msg: UnexpectedMsg, recv: PostedRecv): void {
    this.unexpectedBytes -= msg.length;
    if (msg.length > recv.buf.length) recv.truncatedFrom = msg.length;
    else if (msg.payload && msg.length) recv.buf.set(msg.payload);
    this.complete(recv, msg.source, msg.tag, msg.length);
    if (this.unexpectedBytes <= this.opts.maxUnexpectedBytes / 2) this.resumeAll();
  }

  private resumeAll(): void {
    if (this.pausedPeers.size === 0) return;
    for (const p of this.pausedPeers) this.transport.resumeReceive(p);
    this.pausedPeers.clear();
  }

  /**
   * Keep the loop polling (setImmediate forces a zero epoll timeout) while receives wait.
   * Adaptive: a window that ends with no frame, or a frame that arrives late, halves the budget
   * (down to off); a frame that arrives within SPIN_USEFUL_US restores it. On a loaded host the peer is not running while we poll,
   * so polling only delays it (8 B one-way went from 25 to 560 us under load with a fixed
   * window); when off, every SPIN_PROBE_EVERY-th wait tries the full window again.
   */
  private spin(): void {
    const max = this.opts.spinMicros;
    if (max <= 0 || !hostHasIdleCores()) return;
    if (this.spinBudgetUs <= 0) {
      if (++this.spinSkipped < SPIN_PROBE_EVERY) return;
      this.spinSkipped = 0;
      this.spinBudgetUs = max;
    }
    this.spinDeadline = performance.now() + this.spinBudgetUs / 1000;
    if (this.spinning) return;
    this.spinning = true;
    this.spinStartedAt = performance.now();
    setImmediate(this.spinTick);
  }

  /**
   * A frame arrived while polling. Quickly: polling paid off. Late: the peer was probably not
   * running while we polled (more runnable threads than cores), so polling less helps it.
   */
  private spinHit(): void {
    if (!this.spinning) return;
    const waitedUs = (performance.now() - this.spinStartedAt) * 1000;
    this.spinBudgetUs = waitedUs <= SPIN_USEFUL_US ? this.opts.spinMicros : this.halvedSpinBudget();
    this.spinStartedAt = performance.now();
  }

  private halvedSpinBudget(): number {
    return this.spinBudgetUs >= 2 * SPIN_MIN_US ? this.spinBudgetUs / 2 : 0;
  }

  private readonly spinTick = (): void => {
    if (this.activeRecvs === 0) {
      this.spinning = false;
    } else if (performance.now() < this.spinDeadline) {
      setImmediate(this.spinTick);
    } else {
      this.spinning = false;
      this.spinBudgetUs = this.halvedSpinBudget();
    }
  };

  // ---- TransportSink -------------------------------------------------------------------

  beginFrame(peer: number, header: FrameHeader): Uint8Array | null | undefined {
    if (header.kind !== FrameKind.Data) return undefined;
    this.spinHit();
    if (this.activeRecvs > 0 && header.length <= SPIN_MAX_BYTES) this.spin();
    const q = this.queues(header.context);
    const posted = q.posted;
    for (let i = 0; i < posted.length; i++) {
      const recv = posted[i];
      if (!matches(recv, header.source, header.tag)) continue;
      posted.splice(i, 1);
      this.inflight[peer] = recv;
      if (header.length > recv.buf.length) {
        recv.truncatedFrom = header.length;
        return null;
      }
      return header.length === recv.buf.length ? recv.buf : recv.buf.subarray(0, header.length);
    }
    const msg: UnexpectedMsg = {
      source: header.source, tag: header.tag, peer, length: header.length, payload: null, complete: false, claimedBy: null,
    };
    q.unexpected.push(msg);
    this.inflight[peer] = msg;
    this.unexpectedBytes += header.length;
    // A soft bound: only pause while no receive waits, since any paused peer might carry its message.
    if (this.unexpectedBytes > this.opts.maxUnexpectedBytes && this.activeRecvs === 0 && peer !== this.rank && !this.pausedPeers.has(peer)) {
      this.pausedPeers.add(peer);
      this.transport.pauseReceive(peer);
    }
    return undefined;
  }

  endFrame(peer: number, header: FrameHeader, payload: Uint8Array | null): void {
    if (header.kind === FrameKind.Abort) {
      const reason = payload ? new TextDecoder().decode(payload) : `rank ${peer} aborted`;
      this.fail(new TcclError('TCCL_ERR_ABORTED', reason, { rank: this.rank, peer }));
      return;
    }
    if (header.kind !== FrameKind.Data) return;
    const entry = this.inflight[peer];
    this.inflight[peer] = null;
    if (!entry) return;
    if ('req' in entry) {
      this.complete(entry, header.source, header.tag, header.length);
      return;
    }
    entry.payload = payload;
    entry.complete = true;
    if (entry.claimedBy) this.consumeUnexpected(entry, entry.claimedBy);
  }

  /** Why `peer` (world rank) was lost, if it was. */
  peerFailure(peer: number): TcclError | undefined {
    return this.lostPeers.get(peer);
  }

  peerLost(peer: number, error: TcclError): void {
    if (this.lostPeers.has(peer)) return;
    this.lostPeers.set(peer, error);
    const entry = this.inflight[peer];
    this.inflight[peer] = null;
    if (entry && 'req' in entry) this.failRecv(entry, this.peerError(error, entry, peer));
    if (entry && !('req' in entry) && entry.claimedBy) this.failRecv(entry.claimedBy, this.peerError(error, entry.claimedBy, peer));
    for (const q of this.contexts.values()) {
      q.posted = q.posted.filter((recv) => {
        const dependsOnPeer = recv.source === ANY_SOURCE ? recv.members.includes(peer) : recv.members[recv.source] === peer;
        if (dependsOnPeer) this.failRecv(recv, this.peerError(error, recv, peer));
        return !dependsOnPeer;
      });
    }
  }

  private peerError(cause: TcclError, recv: PostedRecv, peer: number): TcclError {
    return new TcclError(cause.code, `${recv.op} cannot complete: ${cause.detail}`, { rank: this.rank, peer, op: recv.op, seq: recv.seq, cause });
  }

  private failRecv(recv: PostedRecv, error: TcclError): void {
    this.settle(recv);
    recv.req.reject(error);
  }

  /** Fail everything pending and everything that comes later (abort / fatal error). */
  fail(error: TcclError): void {
    if (this.failure) return;
    this.failure = error;
    for (const q of this.contexts.values()) {
      for (const recv of q.posted) this.failRecv(recv, error);
      for (const msg of q.unexpected) if (msg.claimedBy) this.failRecv(msg.claimedBy, error);
      q.posted = [];
    }
    for (const entry of this.inflight) {
      if (entry && 'req' in entry) this.failRecv(entry, error);
      else if (entry?.claimedBy) this.failRecv(entry.claimedBy, error);
    }
    this.inflight.fill(null);
  }

  /** Forget a communicator's matching state (it was closed); its pending receives fail with `error`. */
  dropContext(context: number, error: TcclError): void {
    const q = this.contexts.get(context);
    if (!q) return;
    this.contexts.delete(context);
    for (const recv of q.posted) this.failRecv(recv, error);
    for (const msg of q.unexpected) if (msg.claimedBy) this.failRecv(msg.claimedBy, error);
  }

  /** Posted receives and unexpected messages for a context (diagnostics and tests). */
  pending(context: number): { posted: number; unexpected: number } {
    const q = this.contexts.get(context);
    return { posted: q?.posted.length ?? 0, unexpected: q?.unexpected.length ?? 0 };
  }
}

function matches(recv: PostedRecv, source: number, tag: number): boolean {
  return (recv.source === ANY_SOURCE || recv.source === source) && (recv.tag === ANY_TAG || recv.tag === tag);
}

