import { TcclError, invalidArgument, type ErrorContext } from '../errors.js';
import type { CollectiveP2P } from '../collectives/p2p.js';
import { ANY_SOURCE, ANY_TAG, type Engine } from './engine.js';
import { Request, type Status } from './request.js';

/** Largest user tag (MPI_TAG_UB): tags are non-negative int32. */
export const TAG_UB = 0x7fff_ffff;
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
  }

  get collectiveContext(): number { return this.context + 1; }
  /** Collective calls made so far on this communicator (their sequence numbers). */
  get collectiveCount(): number { return this.collectiveSeq; }

  // ---- point-to-point ------------------------------------------------------------------

  /** Nonblocking send; the request resolves when `buf` may be reused. */
  isend(buf: ArrayBufferView, dest: number, opts: P2POptions = {}): Request<Status> {
    return this.startSend(this.checkSend(buf, dest, opts.tag ?? 0), buf, dest);
  }

  private checkSend(buf: ArrayBufferView, dest: number, tag: number): { bytes: Uint8Array; tag: number } {
    this.checkOpen('isend');
    const bytes = byteView(buf, 'send buffer', { rank: this.rank, op: 'isend' });
    this.checkRank(dest, 'isend', 'destination');
    return { bytes, tag: this.checkTag(tag, 'isend', false) };
  }

  private startSend({ bytes, tag }: { bytes: Uint8Array; tag: number }, buf: ArrayBufferView, dest: number): Request<Status> {
    const seq = ++this.p2pSeq;
    const req = new Request<Status>('isend');
    const sent = this.engine
      .send({ context: this.context, source: this.rank, dest: this.worldRanks[dest], tag, seq, payload: bytes })
      .then(
        () => req.resolve({ source: this.rank, tag, bytes: bytes.length, count: elementCount(buf) }),
        (e) => req.reject(this.opError(e, 'isend', dest, seq)),
      );
    this.track(sent);
    return req;
  }

  /** Nonblocking receive into `buf`; source may be ANY_SOURCE, tag may be ANY_TAG. */
  irecv(buf: ArrayBufferView, source: number = ANY_SOURCE, opts: P2POptions = {}): Request<Status> {
    this.checkOpen('irecv');
    const bytes = byteView(buf, 'receive buffer', { rank: this.rank, op: 'irecv' });
    if (source !== ANY_SOURCE) this.checkRank(source, 'irecv', 'source');
    const tag = this.checkTag(opts.tag ?? ANY_TAG, 'irecv', true);
    return this.engine.postRecv({
      context: this.context, source, tag, buf: bytes, elementBytes: elementBytes(buf), members: this.worldRanks,
      exact: false, op: 'recv', seq: ++this.p2pSeq, timeoutMs: opts.timeoutMs ?? this.defaultTimeoutMs, signal: opts.signal,
    });
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
    const recv = this.irecv(recvBuf, source, { timeoutMs: opts.timeoutMs, signal: opts.signal, tag: opts.recvTag ?? opts.tag ?? ANY_TAG });
    const send = this.startSend(sendArgs, sendBuf, dest);
    const [status] = await Promise.all([recv, send]);
    return status;
  }

  // ---- collectives plumbing --------------------------------------------------------------

  /**
   * Run one collective: it gets a sequence number (its tag in the collective context, so
   * several collectives can be in flight and ranks must call them in the same order) and a
   * byte send/recv bound to it.
   */
  protected runCollective<T>(op: string, timeoutMs: number | undefined, signal: AbortSignal | undefined, body: (p2p: CollectiveP2P, seq: number) => Promise<T>): Request<T> {
    this.checkOpen(op);
    const seq = ++this.collectiveSeq;
    const tag = seq & TAG_UB;
    const timeout = timeoutMs ?? this.defaultTimeoutMs;
    const context = this.collectiveContext;
    const p2p: CollectiveP2P = {
      rank: this.rank,
      size: this.size,
      send: (peer, data) => this.engine.send({ context, source: this.rank, dest: this.worldRanks[peer], tag, seq, payload: data })
        .catch((e) => { throw this.opError(e, op, peer, seq); }),
      recv: (peer, data) => this.engine.postRecv({
        context, source: peer, tag, buf: data, elementBytes: 1, members: this.worldRanks, exact: true, op, seq, timeoutMs: timeout, signal,
      }).then(() => undefined),
    };
    const req = new Request<T>(op);
    const run = body(p2p, seq).then((v) => req.resolve(v), (e) => req.reject(e));
    this.track(run);
    return req;
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
    return new Ctor(this.engine, context, members.map((m) => this.worldRanks[m.rank]), this.defaultTimeoutMs, null);
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

  private opError(e: unknown, op: string, peer: number, seq: number): unknown {
    if (!(e instanceof TcclError) || e.op !== undefined) return e;
    return new TcclError(e.code, `${op} to rank ${peer} failed: ${e.detail}`, { rank: this.rank, peer: this.worldRanks[peer], op, seq, cause: e });
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
