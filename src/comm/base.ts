import { TcclError, invalidArgument, type ErrorContext } from '../errors.js';
import type { CollectiveP2P } from '../collectives/p2p.js';
import { checkAgreement, DESYNC_CONTEXT_BIT, type CollectiveDesc } from '../diag/desync.js';
import { recorderFor, type FlightRecorder } from '../diag/flight-recorder.js';
import * as log from '../diag/log.js';
import { ANY_SOURCE, ANY_TAG, type Engine } from './engine.js';
import { Request, type Status } from './request.js';
import { overlaps } from '../kernels/view.js';
import { SharedState } from './shared-group.js';
import { CollectiveCall, peerOpError, TAG_UB, type CallSite } from './collective-call.js';

export { TAG_UB };
export type { CollectiveDesc };
export const DEFAULT_TIMEOUT_MS = 300_000;

export interface P2POptions {
  tag?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SendRecvOptions {
  /** Tag for both directions unless sendTag / recvTag say otherwise. */
  tag?: number;
  sendTag?: number;
  recvTag?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Hooks the owner of the world (init) gives the world communicator for shutdown. */
export interface WorldHooks {
  close(): Promise<void>;
  abort(error: TcclError): void;
}

/**
 * A group of ranks with its own matching space (MPI communicator): point-to-point, split/dup,
 * close/abort. Point-to-point traffic uses context `context`; collectives use `context + 1`
 * so they never match user messages. The collective calls live in Communicator (communicator.ts).
 */
export class CommunicatorBase {
  readonly rank: number;
  readonly size: number;
  /** Communicator rank → world rank. */
  readonly worldRanks: readonly number[];
  readonly defaultTimeoutMs: number;
  private readonly pendingSends = new Set<Promise<unknown>>();
  private p2pSeq = 0;
  private collectiveSeq = 0;
  private closed = false;
  protected readonly recorder: FlightRecorder;
  /** What each collective call needs of this communicator. */
  private readonly site: CallSite;
  /** Shared-memory collectives (world communicator on an all-local shm transport), found on first use. */
  private sharedState: SharedState | null | undefined;
  /** Under TCCL_DEBUG=DETAIL with shared memory: the last collective started (see runCollective). */
  private detailChain: Promise<unknown> = Promise.resolve();

  /** @internal use init() or split() / dup() */
  constructor(
    protected readonly engine: Engine,
    readonly context: number,
    worldRanks: readonly number[],
    timeoutMs: number,
    private readonly world: WorldHooks | null,
  ) {
    this.worldRanks = worldRanks;
    this.size = worldRanks.length;
    this.rank = worldRanks.indexOf(engine.rank);
    this.defaultTimeoutMs = timeoutMs;
    this.recorder = recorderFor(engine);
    this.site = { engine, recorder: this.recorder, worldRanks, rank: this.rank, size: this.size, context, onTimeout: (e) => this.onTimeout(e) };
  }

  get collectiveContext(): number { return this.context + 1; }

  /**
   * TCCL_ALGO_* as they were when this communicator was made (as NCCL reads its environment
   * once): the algorithm of each call is chosen once, during its argument check, without a
   * process.env read per call (~0.15 us of an 8 B shared-memory allreduce).
   */
  protected readonly algorithmEnv: Readonly<Record<string, string | undefined>> = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k.startsWith('TCCL_ALGO_')));

  /** Whether collectives here can use shared memory (SharedGroup) instead of messages. */
  protected get hasSharedMemory(): boolean {
    return this.shared() !== null;
  }

  /**
   * The world communicator uses the transport's team (its ranks are the team's); one made by
   * split/dup gets a team of its own there (a second communicator on the same slots would
   * overwrite them), or none.
   */
  private shared(): SharedState | null {
    if (this.sharedState === undefined) {
      const team = this.world && this.size > 1 && process.env.TCCL_SHM_COLLECTIVES !== '0' ? this.engine.transport.sharedTeam?.() : null;
      this.sharedState = team && team.size === this.size && team.rank === this.rank ? new SharedState(team) : null;
    }
    return this.sharedState;
  }
  /** Collective calls made so far on this communicator (their sequence numbers). */
  get collectiveCount(): number { return this.collectiveSeq; }

  // ---- point-to-point ------------------------------------------------------------------

  /** Nonblocking send; the request resolves when `buf` may be reused. */
  isend(buf: ArrayBufferView, dest: number, opts: P2POptions = {}): Request<Status> {
    return this.startSend(this.checkSend(buf, dest, opts.tag ?? 0), buf, dest, opts.timeoutMs ?? this.defaultTimeoutMs);
  }

  private checkSend(buf: ArrayBufferView, dest: number, tag: number): { bytes: Uint8Array; tag: number } {
    this.checkOpen('isend');
    const bytes = byteView(buf, 'send buffer', { rank: this.rank, op: 'isend' });
    this.checkRank(dest, 'isend', 'destination');
    return { bytes, tag: this.checkTag(tag, 'isend', false) };
  }

  private startSend({ bytes, tag }: { bytes: Uint8Array; tag: number }, buf: ArrayBufferView, dest: number, timeoutMs: number): Request<Status> {
    const seq = ++this.p2pSeq;
    const req = new Request<Status>('isend');
    // A send completes once the kernel took the bytes: it waits only when the peer stops reading.
    const timer = Number.isFinite(timeoutMs) ? setTimeout(() => {
      const e = new TcclError('TCCL_ERR_TIMEOUT', `isend of ${bytes.length} bytes (tag ${tag}) to rank ${dest} not taken within ${timeoutMs} ms; ${this.engine.transport.queuedBytes(this.worldRanks[dest])} bytes still queued for it: it is not receiving`, { rank: this.rank, peer: this.worldRanks[dest], op: 'isend', seq });
      this.onTimeout(e);
      req.reject(e);
    }, timeoutMs) : null;
    const sent = this.engine
      .send({ context: this.context, source: this.rank, dest: this.worldRanks[dest], tag, seq, payload: bytes })
      .then(
        () => req.resolve({ source: this.rank, tag, bytes: bytes.length, count: elementCount(buf) }),
        (e) => req.reject(peerOpError(this, e, 'isend', dest, seq)),
      )
      .finally(() => { if (timer) clearTimeout(timer); });
    this.track(sent);
    return req;
  }

  /** Nonblocking receive into `buf`; source may be ANY_SOURCE, tag may be ANY_TAG. */
  irecv(buf: ArrayBufferView, source: number = ANY_SOURCE, opts: P2POptions = {}): Request<Status> {
    this.checkOpen('irecv');
    const bytes = byteView(buf, 'receive buffer', { rank: this.rank, op: 'irecv' });
    if (source !== ANY_SOURCE) this.checkRank(source, 'irecv', 'source');
    const tag = this.checkTag(opts.tag ?? ANY_TAG, 'irecv', true);
    const req = this.engine.postRecv({
      context: this.context, source, tag, buf: bytes, elementBytes: elementBytes(buf), members: this.worldRanks,
      exact: false, op: 'recv', seq: ++this.p2pSeq, timeoutMs: opts.timeoutMs ?? this.defaultTimeoutMs, signal: opts.signal,
    });
    req.then(undefined, (e) => { if (e instanceof TcclError && e.code === 'TCCL_ERR_TIMEOUT') this.onTimeout(e); });
    return req;
  }

  async send(buf: ArrayBufferView, dest: number, opts: P2POptions = {}): Promise<Status> {
    return this.isend(buf, dest, opts);
  }

  async recv(buf: ArrayBufferView, source: number = ANY_SOURCE, opts: P2POptions = {}): Promise<Status> {
    return this.irecv(buf, source, opts);
  }

  /** Send to `dest` and receive from `source` at once (no deadlock in rings); returns the receive status. */
  async sendrecv(sendBuf: ArrayBufferView, dest: number, recvBuf: ArrayBufferView, source: number, opts: SendRecvOptions = {}): Promise<Status> {
    // Check the send first: a bad send argument must not leave a stray receive posted.
    const sendArgs = this.checkSend(sendBuf, dest, opts.sendTag ?? opts.tag ?? 0);
    // Overlapping buffers (MPI_Sendrecv_replace): send a copy, so the receive cannot overwrite unsent bytes.
    if (overlaps(sendArgs.bytes, recvBuf)) sendArgs.bytes = sendArgs.bytes.slice();
    const recv = this.irecv(recvBuf, source, { timeoutMs: opts.timeoutMs, signal: opts.signal, tag: opts.recvTag ?? opts.tag ?? ANY_TAG });
    const send = this.startSend(sendArgs, sendBuf, dest, opts.timeoutMs ?? this.defaultTimeoutMs);
    const [status] = await Promise.all([recv, send]);
    return status;
  }

  // ---- collectives plumbing --------------------------------------------------------------

  /**
   * Run one collective: it gets a sequence number (its tag in the collective context, so
   * several collectives can be in flight and ranks must call them in the same order), a byte
   * send/recv bound to it, and one deadline for the whole call. Under TCCL_DEBUG=DETAIL the
   * ranks first check they all call the same thing (diag/desync.ts).
   */
  protected runCollective<T>(op: string, timeoutMs: number | undefined, signal: AbortSignal | undefined, body: (p2p: CollectiveP2P, seq: number) => T | Promise<T>, desc: CollectiveDesc = {}): Request<T> {
    this.checkOpen(op);
    const sharedState = this.shared();
    const call = new CollectiveCall<T>(this.site, op, ++this.collectiveSeq, timeoutMs ?? this.defaultTimeoutMs, signal, desc, sharedState);
    let outcome: T | Promise<T>;
    try {
      // (A shared-memory collective may finish without ever waiting, so without looking at it.)
      call.checkSignal();
      if (!(this.size > 1 && log.detailEnabled())) outcome = body(call, call.seq);
      else if (!sharedState) outcome = this.checkedRun(call, desc, body);
      else {
        // Shared-memory collectives must start in call order on every rank (their steps pair
        // up by order), and checks finish in any order: run check + body one call at a time.
        outcome = this.detailChain.then(() => this.checkedRun(call, desc, body));
        this.detailChain = outcome.catch(() => undefined);
      }
    } catch (e) {
      outcome = Promise.reject(e);
    }
    const running = call.settle(outcome);
    if (running) this.track(running);
    return call.request;
  }

  /** TCCL_DEBUG=DETAIL: the ranks first check they all call the same thing (diag/desync.ts), then run. */
  private async checkedRun<T>(call: CollectiveCall<T>, desc: CollectiveDesc, body: (p2p: CollectiveP2P, seq: number) => T | Promise<T>): Promise<T> {
    const { op, seq } = call;
    call.progress.phase = 'TCCL_DEBUG=DETAIL call check (a rank not heard from has not called this collective)';
    const disagreement = await checkAgreement(call.on(DESYNC_CONTEXT_BIT + this.collectiveContext), { op, count: desc.count, dtype: desc.dtype, reduceOp: desc.reduceOp, root: desc.root });
    call.progress.phase = '';
    if (disagreement) {
      throw new TcclError('TCCL_ERR_DESYNC', `${op} seq ${seq}: ${disagreement.message}`, {
        rank: this.rank, peer: disagreement.differing.map((r) => this.worldRanks[r]), op, seq,
      });
    }
    return body(call, seq);
  }

  /** A timeout is where a hang would have been: show this rank's recent history. */
  protected onTimeout(error: TcclError): void {
    log.error(this.engine.rank, `${error.message}\nflight recorder, last ${this.recorder.records().length} operations of rank ${this.engine.rank} (oldest first):\n${this.recorder.dump()}`);
  }

  // ---- communicator management ---------------------------------------------------------

  /**
   * MPI_Comm_split: ranks with the same `color` form a new communicator, ordered by `key`
   * then by rank here. `color` null (MPI_UNDEFINED) returns null. Collective over this communicator.
   */
  async split(color: number | null, key: number = this.rank, opts: { timeoutMs?: number } = {}): Promise<this | null> {
    if (color !== null && (!Number.isInteger(color) || color < 0 || color > TAG_UB)) throw invalidArgument(`split color must be a non-negative int32 or null, got ${color}`, { rank: this.rank, op: 'split' });
    if (!Number.isInteger(key) || Math.abs(key) > TAG_UB) throw invalidArgument(`split key must be an int32, got ${key}`, { rank: this.rank, op: 'split' });
    const mine = new Int32Array([color ?? -1, key, this.engine.nextContext]);
    const all = await this.exchangeRecords(mine, 'split', opts.timeoutMs);
    let context = 0;
    const members: { key: number; rank: number }[] = [];
    for (let r = 0; r < this.size; r++) {
      context = Math.max(context, all[r * 3 + 2]);
      if (color !== null && all[r * 3] === color) members.push({ key: all[r * 3 + 1], rank: r });
    }
    this.engine.nextContext = context + 2;
    if (color === null) return null;
    members.sort((a, b) => a.key - b.key || a.rank - b.rank);
    const Ctor = this.constructor as new (...args: ConstructorParameters<typeof CommunicatorBase>) => this;
    const created = new Ctor(this.engine, context, members.map((m) => this.worldRanks[m.rank]), this.defaultTimeoutMs, null);
    created.sharedState = await this.subTeam(created, opts.timeoutMs);
    return created;
  }

  /**
   * Shared memory for a communicator just made by split: a team of its own when this one has
   * shared memory (so every member's transport can give it, TCCL_SHM_COLLECTIVES is not 0) and
   * it has more than one rank. Every member decides alike (the parent is common to them and
   * the rest is the new communicator's, agreed by split), so they all take part or none does.
   */
  private async subTeam(created: CommunicatorBase, timeoutMs: number | undefined): Promise<SharedState | null> {
    const transport = this.engine.transport;
    if (created.size < 2 || !this.shared() || !transport.createSharedTeam) return null;
    // Contexts are unique per rank, so communicators sharing one have disjoint members.
    const key = `${created.context}r${created.worldRanks[0]}`;
    const timeout = timeoutMs ?? this.defaultTimeoutMs;
    let team;
    try {
      team = await transport.createSharedTeam(key, created.worldRanks, timeout);
    } catch (e) {
      if (!(e instanceof TcclError)) throw e;
      const missing = e.code === 'TCCL_ERR_TIMEOUT' && e.peer !== undefined ? `; no word from rank${Array.isArray(e.peer) && e.peer.length !== 1 ? 's' : ''} ${[e.peer].flat().join(',')}` : '';
      throw new TcclError(e.code, `split: cannot set up shared memory for the new communicator of ranks [${created.worldRanks}]${missing}: ${e.detail}`, { rank: this.rank, peer: e.peer, op: 'split', cause: e });
    }
    return team && team.size === created.size && team.rank === created.rank ? new SharedState(team) : null;
  }

  /** A communicator with the same ranks and a separate matching space (MPI_Comm_dup). */
  async dup(opts: { timeoutMs?: number } = {}): Promise<this> {
    return (await this.split(0, this.rank, opts))!;
  }

  /** Every rank's small int32 record, gathered on every rank (linear: used before collectives exist). */
  private async exchangeRecords(mine: Int32Array, op: string, timeoutMs?: number): Promise<Int32Array> {
    const n = mine.length;
    const all = new Int32Array(n * this.size);
    all.set(mine, this.rank * n);
    const req = this.runCollective(op, timeoutMs, undefined, async (p2p) => {
      const bytes = new Uint8Array(mine.buffer, mine.byteOffset, mine.byteLength);
      const ops: Promise<void>[] = [];
      for (let r = 0; r < this.size; r++) {
        if (r === this.rank) continue;
        ops.push(p2p.recv(r, new Uint8Array(all.buffer, r * n * 4, n * 4)));
        ops.push(p2p.send(r, bytes));
      }
      await Promise.all(ops);
    });
    await req;
    return all;
  }

  /** Wait for pending sends, then release the communicator (and, for the world, the transport). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.pendingSends]);
    const closed = new TcclError('TCCL_ERR_CLOSED', 'the communicator was closed while this receive waited', { rank: this.rank, op: 'close' });
    this.engine.dropContext(this.context, closed);
    this.engine.dropContext(this.collectiveContext, closed);
    if (this.world) await this.world.close();
  }

  /** Fail every pending operation here and on every other rank of the job. */
  abort(reason: string | Error = 'aborted'): void {
    const message = typeof reason === 'string' ? reason : reason.message;
    const error = new TcclError('TCCL_ERR_ABORTED', `rank ${this.engine.rank} aborted: ${message}`, { rank: this.engine.rank, cause: reason });
    this.closed = true;
    this.engine.fail(error);
    if (this.world) this.world.abort(error);
    else this.engine.transport.abort(error);
  }

  get isClosed(): boolean { return this.closed; }

  // ---- helpers -------------------------------------------------------------------------

  private track(p: Promise<unknown>): void {
    this.pendingSends.add(p);
    void p.finally(() => this.pendingSends.delete(p));
  }

  protected checkOpen(op: string): void {
    if (this.closed) throw new TcclError('TCCL_ERR_CLOSED', `${op} called after close() or abort()`, { rank: this.rank, op });
    const failed = this.engine.failed;
    if (failed) throw failed;
  }

  protected checkRank(r: number, op: string, what: string): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.size) {
      throw invalidArgument(`${what} rank ${r} is out of range: this communicator has ranks 0..${this.size - 1}`, { rank: this.rank, op });
    }
  }

  private checkTag(tag: number, op: string, allowAny: boolean): number {
    if (allowAny && tag === ANY_TAG) return tag;
    if (!Number.isInteger(tag) || tag < 0 || tag > TAG_UB) {
      throw invalidArgument(`tag ${tag} is out of range 0..${TAG_UB}${allowAny ? ' (or ANY_TAG)' : ''}`, { rank: this.rank, op });
    }
    return tag;
  }
}

export function byteView(buf: unknown, what: string, ctx?: ErrorContext): Uint8Array {
  if (!ArrayBuffer.isView(buf)) {
    const got = buf === null ? 'null' : typeof buf === 'object' ? (buf.constructor?.name ?? 'object') : typeof buf;
    throw invalidArgument(`${what} must be a typed array, got ${got}`, ctx);
  }
  return buf instanceof Uint8Array && buf.constructor === Uint8Array ? buf : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

const elementBytes = (buf: ArrayBufferView): number => (buf as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
const elementCount = (buf: ArrayBufferView): number => buf.byteLength / elementBytes(buf);
