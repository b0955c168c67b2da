import { TcclError } from '../../src/errors.js';
import type { Transport, TransportSink } from '../../src/transport.js';
import { FrameParser } from '../../src/wire/parser.js';
import { decodeHeader, encodeHeader, FrameKind, HEADER_BYTES, type FrameHeader } from '../../src/wire/frame.js';
import type { Ring } from './ring.js';
import { performance } from 'node:perf_hooks';

/**
 * Bytes published at a time: the consumer starts copying chunk k out while the producer
 * copies chunk k+1 in (pipelining), and a chunk is big enough that memcpy runs at speed.
 */
export const DEFAULT_CHUNK_BYTES = 256 << 10;
const CLOSE_GRACE_MS = 2000;
/**
 * Polling pays only for small messages: for large ones a doorbell's wake-up is a small
 * share of the copy, and a polling rank takes the core its peer needs for that copy
 * (decisive when ranks share cores with each other or with other work).
 */
const SPIN_MAX_BYTES = 64 << 10;
/** Polling windows shorter than this save no wake-up worth having: stop polling instead. */
const SPIN_MIN_MS = 0.012;
/** While polling is off, every this-many small sends probe whether it pays again. */
const SPIN_PROBE_EVERY = 64;
const DEFAULT_MAX_PAYLOAD = 2 ** 36;

/**
 * Single-copy path for large payloads (process ranks): instead of the payload, the ring
 * carries a descriptor (the frame header and the payload's address in the sender), the
 * receiver copies the payload straight from the sender's memory into the posted buffer,
 * and the send completes when the receiver reports the pull done.
 */
export interface BulkCopy {
  /** Payloads at least this large take the single-copy path. */
  minBytes: number;
  /**
   * Bytes of payload a sender offers at once before waiting for pulls (at least one payload).
   * Bounds what a receiver that has not posted its receives yet pulls into unexpected buffers
   * (an extra copy and fresh memory each), as the ring's capacity bounds the two-copy path.
   */
  windowBytes: number;
  address(view: Uint8Array): bigint;
  /** Copy dest.length bytes from `address` in `peer`'s memory into dest; throws if it cannot. */
  pull(peer: number, address: bigint, dest: Uint8Array): void;
}

/** Descriptor frame: the Data frame's own header, then the payload address (u64), then padding. */
const DESCRIPTOR_BYTES = HEADER_BYTES + 8;
/** Frame kind of descriptors inside a ring (heartbeats have no other use in shared memory). */
const DESCRIPTOR_KIND = FrameKind.Heartbeat;

export interface RingTransportOptions {
  rank: number;
  size: number;
  /**
   * How long to keep polling the rings (through setImmediate, so the event loop keeps
   * running) after the last activity before sleeping on the doorbell. 0 on hosts with more
   * ranks than cores: a poller there only steals the core its peer needs.
   */
  spinMicros: number;
  chunkBytes?: number;
  maxPayloadBytes?: number;
  bulk?: BulkCopy;
}

interface PendingSend {
  header: Uint8Array;
  payload: Uint8Array;
  /** Bytes of header + payload already in the ring. */
  written: number;
  resolve: () => void;
  reject: (e: TcclError) => void;
  /** Single-copy sends: the payload the receiver pulls, and the number of its pull once written. */
  bulk?: Uint8Array;
  pullSeq?: number;
}

/** One peer: the ring it writes to us, the ring we write to it, and our queue of frames for it. */
interface PeerLink {
  peer: number;
  inbound: Ring;
  outbound: Ring;
  parser: FrameParser;
  queue: PendingSend[];
  queuedBytes: number;
  paused: boolean;
  /** Set once the peer is gone (Goodbye, death, protocol error); the engine has been told. */
  lost: TcclError | null;
  /** The peer can pull payloads from this process (single-copy path allowed). */
  bulkOk: boolean;
  /** Descriptors written so far, and the single-copy sends waiting for their pull, in order. */
  bulkWritten: number;
  awaitingPull: PendingSend[];
  /** Payload bytes of awaitingPull. */
  pullBytes: number;
  /** Waiters for awaitingPull to empty (close). */
  pullDrained: (() => void)[];
}

/**
 * The transport logic shared by process ranks (/dev/shm + socket doorbells) and thread
 * ranks (SharedArrayBuffer + Atomics.waitAsync): per peer one SPSC ring each way, sends
 * chunked into the ring, receives parsed out of it straight into the posted buffer.
 * Subclasses provide the rings, the doorbell (`ring`), and liveness (`peerDied`).
 */
export abstract class RingTransport implements Transport {
  abstract readonly name: string;
  readonly rank: number;
  readonly size: number;
  protected sink: TransportSink | null = null;
  protected readonly links: (PeerLink | null)[];
  protected shuttingDown = false;
  private spinning = false;
  private spinUntil = 0;
  /**
   * Current polling window, adapting between 0 and spinMs as the engine's does: a window that
   * ends with nothing found halves it, traffic found while polling restores it. On a loaded
   * host the peer is not running while we poll, so polling there only delays it.
   */
  private spinBudgetMs: number;
  private spinSkipped = 0;
  /** The pending tick continues a polling window (rather than answering a wake-up). */
  private polling = false;
  /** Frame bytes moved by the current progress pass (polling continues only after small traffic). */
  private bytesMoved = 0;
  private readonly chunkBytes: number;
  private readonly maxPayload: number;
  private readonly spinMs: number;
  private readonly bulk: BulkCopy | undefined;

  constructor(opts: RingTransportOptions) {
    this.rank = opts.rank;
    this.size = opts.size;
    this.links = new Array(opts.size).fill(null);
    this.chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.maxPayload = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD;
    this.spinMs = Math.max(0, opts.spinMicros) / 1000;
    this.spinBudgetMs = this.spinMs;
    this.bulk = opts.bulk;
  }

  /** Wake `peer` (it is sleeping on its doorbell, or waiting for ring space). */
  protected abstract ring(peer: number): void;

  abstract start(sink: TransportSink): Promise<void>;

  async connectAll(): Promise<void> {
    // Every ring is attached during start.
  }

  /** The peer said it can pull from this process: large sends to it take the single-copy path. */
  protected enableBulk(peer: number): void {
    const link = this.links[peer];
    if (link && this.bulk) link.bulkOk = true;
  }

  /** Whether this transport carries traffic to `peer` (shm peers are the ranks on this host). */
  handles(peer: number): boolean {
    return this.links[peer] !== null;
  }

  protected attach(peer: number, inbound: Ring, outbound: Ring): void {
    const link: PeerLink = {
      peer, inbound, outbound, queue: [], queuedBytes: 0, paused: false, lost: null,
      bulkOk: false, bulkWritten: 0, awaitingPull: [], pullBytes: 0, pullDrained: [],
      parser: null as unknown as FrameParser,
    };
    link.parser = new FrameParser({
      beginFrame: (header) => (header.kind === FrameKind.Data || header.kind === FrameKind.Abort ? this.sink!.beginFrame(peer, header) : undefined),
      endFrame: (header, payload) => {
        if (header.kind === FrameKind.Goodbye) this.lose(link, new TcclError('TCCL_ERR_PEER_LOST', `rank ${peer} closed its communicator`, { rank: this.rank, peer }));
        else if (header.kind === DESCRIPTOR_KIND) this.pullPayload(link, payload);
        else if (header.kind === FrameKind.Data || header.kind === FrameKind.Abort) this.sink!.endFrame(peer, header, payload);
      },
    }, { maxPayload: this.maxPayload, chunksAreOwned: false });
    this.links[peer] = link;
    inbound.sleep();
  }

  // ---- sending -----------------------------------------------------------------------------

  send(peer: number, header: FrameHeader, payload: Uint8Array): Promise<void> {
    const link = this.links[peer];
    if (!link) return Promise.reject(new TcclError('TCCL_ERR_INTERNAL', `no shared-memory ring to rank ${peer}`, { rank: this.rank, peer }));
    if (link.lost) return Promise.reject(link.lost);
    if (this.shuttingDown && header.kind === FrameKind.Data) return Promise.reject(new TcclError('TCCL_ERR_CLOSED', 'transport is closed', { rank: this.rank, peer }));
    return new Promise<void>((resolve, reject) => {
      if (link.bulkOk && header.kind === FrameKind.Data && payload.length >= this.bulk!.minBytes) {
        const descriptor = new Uint8Array(DESCRIPTOR_BYTES);
        encodeHeader(header, descriptor);
        new DataView(descriptor.buffer).setBigUint64(HEADER_BYTES, this.bulk!.address(payload), true);
        const outer = encodeHeader({ kind: DESCRIPTOR_KIND, context: 0, source: this.rank, tag: 0, seq: 0, aux: 0, length: DESCRIPTOR_BYTES });
        link.queue.push({ header: outer, payload: descriptor, written: 0, resolve, reject, bulk: payload });
        link.queuedBytes += HEADER_BYTES + DESCRIPTOR_BYTES;
      } else {
        link.queue.push({ header: encodeHeader(header), payload, written: 0, resolve, reject });
        link.queuedBytes += HEADER_BYTES + payload.length;
      }
      if (link.queue.length === 1) this.pump(link);
      this.wake(payload.length <= SPIN_MAX_BYTES);
    });
  }

  /** Copy queued frames into the outbound ring as far as it has room. True if anything moved. */
  private pump(link: PeerLink): boolean {
    const ring = link.outbound;
    let moved = false;
    while (link.queue.length) {
      const free = ring.free();
      if (free === 0) break;
      const item = link.queue[0];
      if (this.waitsForPulls(link)) break;
      const total = HEADER_BYTES + item.payload.length;
      let budget = Math.min(free, this.chunkBytes, total - item.written);
      const before = item.written;
      if (item.written < HEADER_BYTES) {
        const n = Math.min(budget, HEADER_BYTES - item.written);
        ring.write(item.header.subarray(item.written, item.written + n));
        item.written += n;
        budget -= n;
      }
      if (budget > 0) {
        const at = item.written - HEADER_BYTES;
        ring.write(item.payload.subarray(at, at + budget));
        item.written += budget;
      }
      link.queuedBytes -= item.written - before;
      this.bytesMoved += item.bulk ? item.bulk.length : item.written - before;
      if (ring.publish()) this.ring(link.peer);
      moved = true;
      if (item.written === total) {
        link.queue.shift();
        if (item.bulk) {
          // The receiver now owns reading the payload; it stays ours (untouched) until pulled.
          item.pullSeq = link.bulkWritten = (link.bulkWritten + 1) | 0;
          link.awaitingPull.push(item);
          link.pullBytes += item.bulk.length;
        } else item.resolve();
      }
    }
    return moved;
  }

  /** The next frame is a single-copy send that must wait until earlier pulls free the window. */
  private waitsForPulls(link: PeerLink): boolean {
    const item = link.queue[0];
    return !!item?.bulk && item.written === 0 && link.awaitingPull.length > 0 && link.pullBytes + item.bulk.length > this.bulk!.windowBytes;
  }

  /** Single-copy sends whose payload the receiver has pulled are complete. */
  private settlePulls(link: PeerLink): boolean {
    const pulled = link.outbound.pulled();
    let moved = false;
    while (link.awaitingPull.length && ((pulled - link.awaitingPull[0].pullSeq!) | 0) >= 0) {
      const item = link.awaitingPull.shift()!;
      this.bytesMoved += item.bulk!.length;
      link.pullBytes -= item.bulk!.length;
      item.resolve();
      moved = true;
    }
    if (!link.awaitingPull.length) for (const done of link.pullDrained.splice(0)) done();
    return moved;
  }

  // ---- receiving ---------------------------------------------------------------------------

  /** A descriptor arrived: copy the payload straight from the sender into its destination. */
  private pullPayload(link: PeerLink, descriptor: Uint8Array | null): void {
    if (!this.bulk || !descriptor || descriptor.length !== DESCRIPTOR_BYTES) {
      throw new TcclError('TCCL_ERR_PROTOCOL', `unexpected ${descriptor?.length ?? 0}-byte descriptor`);
    }
    const header = decodeHeader(descriptor, 0, this.maxPayload);
    if (header.kind !== FrameKind.Data) throw new TcclError('TCCL_ERR_PROTOCOL', `descriptor for a frame of kind ${header.kind}`);
    const address = new DataView(descriptor.buffer, descriptor.byteOffset).getBigUint64(HEADER_BYTES, true);
    const dest = this.sink!.beginFrame(link.peer, header);
    const target = dest === null ? null : (dest ?? new Uint8Array(header.length));
    if (target) {
      try {
        this.bulk.pull(link.peer, address, target);
      } catch (e) {
        throw new TcclError('TCCL_ERR_PEER_LOST', `cannot copy a ${header.length}-byte payload from rank ${link.peer}: ${(e as Error).message}`, { rank: this.rank, peer: link.peer });
      }
    }
    this.sink!.endFrame(link.peer, header, target);
    this.bytesMoved += header.length;
    if (link.inbound.markPulled()) this.ring(link.peer);
  }

  /** Parse what the peer has published. True if anything moved. */
  private drain(link: PeerLink, evenIfPaused = false): boolean {
    if (link.lost || (link.paused && !evenIfPaused)) return false;
    const ring = link.inbound;
    let moved = false;
    for (let avail = ring.readable(); avail > 0; avail = ring.readable()) {
      // One frame's header, or part of one frame's payload, per push: a pause the engine
      // asks for in beginFrame then takes effect before the next frame.
      const pending = link.parser.pendingBytes;
      const view = ring.peek(Math.min(avail, pending === 0 ? HEADER_BYTES : Math.min(pending, this.chunkBytes)));
      try {
        link.parser.push(view);
      } catch (e) {
        const error = e instanceof TcclError ? e : new TcclError('TCCL_ERR_PROTOCOL', String(e));
        this.lose(link, new TcclError(error.code, `bad frame from rank ${link.peer}: ${error.detail}`, { rank: this.rank, peer: link.peer }));
        this.peerDied(link.peer);
        return true;
      }
      if (ring.consume(view.length)) this.ring(link.peer);
      this.bytesMoved += view.length;
      moved = true;
      if (link.lost || (link.paused && !evenIfPaused)) break;
    }
    return moved;
  }

  // ---- progress ----------------------------------------------------------------------------

  /** One pass over every link. True if any byte moved. */
  protected progress(): boolean {
    let moved = false;
    for (const link of this.links) {
      if (!link) continue;
      if (link.awaitingPull.length && this.settlePulls(link)) moved = true;
      if (!link.lost && link.queue.length && this.pump(link)) moved = true;
      if (this.drain(link)) moved = true;
    }
    return moved;
  }

  /**
   * Something happened (doorbell, send, resume): move bytes, then poll a while or sleep.
   * `small`: a small send, which starts the polling window at once; otherwise the pass that
   * follows decides from what it moved.
   */
  protected wake(small = true): void {
    if (small && this.spinMs > 0) {
      if (this.spinBudgetMs <= 0 && ++this.spinSkipped >= SPIN_PROBE_EVERY) {
        this.spinSkipped = 0;
        this.spinBudgetMs = this.spinMs;
      }
      if (this.spinBudgetMs > 0) this.spinUntil = performance.now() + this.spinBudgetMs;
    }
    if (this.spinning) return;
    this.spinning = true;
    for (const link of this.links) link?.inbound.awake();
    // Not synchronously: the caller (a collective posting sends, then its receives) finishes
    // first, so frames that arrive meanwhile land in posted buffers, not the unexpected queue.
    queueMicrotask(this.tick);
  }

  private readonly tick = (): void => {
    this.bytesMoved = 0;
    if (this.progress() && this.spinMs > 0 && this.bytesMoved <= SPIN_MAX_BYTES) {
      if (this.polling) this.spinBudgetMs = this.spinMs; // polling caught it: worth it
      if (this.spinBudgetMs > 0) this.spinUntil = performance.now() + this.spinBudgetMs;
    }
    if (this.spinMs > 0 && performance.now() < this.spinUntil) {
      this.polling = true;
      setImmediate(this.tick);
      return;
    }
    if (this.polling) this.spinBudgetMs = this.spinBudgetMs >= 2 * SPIN_MIN_MS ? this.spinBudgetMs / 2 : 0;
    this.polling = false;
    if (this.trySleep()) this.spinning = false;
    else setImmediate(this.tick); // data or space appeared while arming the doorbells
  };

  /** Arm every doorbell; false if work turned up meanwhile. */
  private trySleep(): boolean {
    let idle = true;
    for (const link of this.links) {
      if (!link || link.lost) continue;
      if (!link.paused && !link.inbound.sleep()) idle = false;
      if (link.queue.length && !this.waitsForPulls(link) && !link.outbound.waitForSpace()) idle = false;
      if (link.awaitingPull.length && !link.outbound.waitForPull(link.awaitingPull[0].pullSeq!)) idle = false;
    }
    return idle;
  }

  // ---- flow control and accounting -----------------------------------------------------------

  pauseReceive(peer: number): void {
    const link = this.links[peer];
    if (link) link.paused = true;
  }

  resumeReceive(peer: number): void {
    const link = this.links[peer];
    if (!link || !link.paused) return;
    link.paused = false;
    this.wake(false);
  }

  queuedBytes(peer?: number): number {
    let total = 0;
    for (const link of this.links) if (link && (peer === undefined || link.peer === peer)) total += link.queuedBytes;
    return total;
  }

  // ---- loss and shutdown -------------------------------------------------------------------

  /** The peer is gone: fail what waits on it, tell the engine once. */
  protected lose(link: PeerLink, error: TcclError): void {
    if (link.lost) return;
    link.lost = error;
    for (const item of link.queue.splice(0)) item.reject(error);
    for (const item of link.awaitingPull.splice(0)) item.reject(error);
    link.pullBytes = 0;
    for (const done of link.pullDrained.splice(0)) done();
    link.queuedBytes = 0;
    if (!this.shuttingDown) this.sink?.peerLost(link.peer, error);
  }

  /**
   * Liveness said the peer died (doorbell socket closed, thread exited): deliver what it
   * published before dying, then report it lost. Subclasses call this; they may override to
   * also release the peer's resources.
   */
  protected peerDied(peer: number, how = 'died'): void {
    const link = this.links[peer];
    if (!link || link.lost) return;
    this.drain(link, true);
    this.lose(link, new TcclError('TCCL_ERR_PEER_LOST', `rank ${peer} ${how} without closing its communicator`, { rank: this.rank, peer }));
  }

  /** Flush every queue, then say Goodbye on each ring (bounded by a grace period). */
  protected async flushAndGoodbye(): Promise<void> {
    this.shuttingDown = true;
    const goodbye: FrameHeader = { kind: FrameKind.Goodbye, context: 0, source: this.rank, tag: 0, seq: 0, aux: 0, length: 0 };
    // Goodbye goes behind every queued frame; payloads the peer has yet to pull must stay
    // readable (this process alive) until it has.
    const flushed = this.links.flatMap((link) => (link && !link.lost ? [
      this.send(link.peer, goodbye, EMPTY).catch(() => undefined),
      new Promise<void>((resolve) => (link.awaitingPull.length ? link.pullDrained.push(resolve) : resolve())),
    ] : []));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(flushed), new Promise((resolve) => { timer = setTimeout(resolve, CLOSE_GRACE_MS); })]);
    clearTimeout(timer);
    this.failAll(new TcclError('TCCL_ERR_CLOSED', 'transport closed before this send was written', { rank: this.rank }));
  }

  /** Fail queued sends, and put an Abort frame in each ring that is between frames and has room. */
  protected abortLinks(reason: TcclError): void {
    this.shuttingDown = true;
    const message = new TextEncoder().encode(reason.detail.slice(0, 4000));
    const header = encodeHeader({ kind: FrameKind.Abort, context: 0, source: this.rank, tag: 0, seq: 0, aux: 0, length: message.length });
    for (const link of this.links) {
      if (!link || link.lost) continue;
      const midFrame = link.queue.length > 0 && link.queue[0].written > 0;
      this.failLink(link, reason);
      if (midFrame || link.outbound.free() < header.length + message.length) continue;
      link.outbound.write(header);
      link.outbound.write(message);
      if (link.outbound.publish()) this.ring(link.peer);
    }
  }

  private failLink(link: PeerLink, error: TcclError): void {
    for (const item of link.queue.splice(0)) item.reject(error);
    for (const item of link.awaitingPull.splice(0)) item.reject(error);
    link.pullBytes = 0;
    for (const done of link.pullDrained.splice(0)) done();
    link.queuedBytes = 0;
    link.lost ??= error;
  }

  protected failAll(error: TcclError): void {
    for (const link of this.links) if (link) this.failLink(link, error);
  }

  abstract close(): Promise<void>;
  abstract abort(reason: TcclError): void;
}

const EMPTY = new Uint8Array(0);
