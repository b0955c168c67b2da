import net, { type Socket } from 'node:net';
import { TcclError } from '../../src/errors.js';
import type { LiveLink } from '../../src/link-liveness.js';
import { FrameParser, type FrameSink } from '../../src/wire/parser.js';
import { encodeHeader, HEADER_BYTES, type FrameHeader } from '../../src/wire/frame.js';

/** Largest slice handed to the socket at once, so one huge payload cannot swamp the queue. */
const SLICE_BYTES = 4 << 20;
/** Frames with payloads up to this size are copied behind their header and written as one buffer. */
const COALESCE_MAX_BYTES = 8 << 10;
const EMPTY = new Uint8Array(0);
/** Reused read buffer for headers and small payloads. */
const SCRATCH_BYTES = 256 << 10;
/** Payload remainders at least this big are read from the socket straight into their destination. */
const DIRECT_READ_MIN_BYTES = 16 << 10;

/**
 * Where a socket reads into (node:net's `onread`): the destination of the payload being
 * received while a large one streams in — the kernel copies into the posted receive buffer,
 * no copy in JS — and otherwise one reused scratch buffer. Either way nothing is allocated
 * per read: Node's default 64 KiB chunk per read made a major GC every ~25 ms under load
 * (ping-pong at 128 KiB: 0.35x raw TCP, most of the gap in GC pauses).
 */
export class SocketReader {
  private readonly scratch = new Uint8Array(SCRATCH_BYTES);
  private parser: FrameParser | null = null;
  private fail: (e: unknown) => void = () => undefined;
  /** Pass as `onread` to net.connect / new net.Socket. */
  readonly onread = {
    buffer: (): Uint8Array => this.parser?.directTarget(DIRECT_READ_MIN_BYTES) ?? this.scratch,
    callback: (n: number, buf: Uint8Array): boolean => {
      try {
        if (buf === this.scratch) this.parser!.push(buf.subarray(0, n));
        else this.parser!.pushedDirect(n);
        return true;
      } catch (e) {
        this.fail(e);
        return false;
      }
    },
  };

  attach(parser: FrameParser, fail: (e: unknown) => void): void {
    this.parser = parser;
    this.fail = fail;
  }
}

/**
 * Re-home an accepted socket (created with `pauseOnConnect`, so it never read) onto a
 * socket that reads through `reader`: net.Server has no `onread` option. The old wrapper
 * gives up its handle and is destroyed, which also settles the server's connection count.
 */
export function readThrough(accepted: Socket, reader: SocketReader): Socket | null {
  const holder = accepted as unknown as { _handle: unknown };
  const handle = holder._handle;
  if (!handle) return null; // not a handle we can move: the caller reads via 'data' events
  holder._handle = null;
  accepted.destroy();
  return new net.Socket({ handle, onread: reader.onread, readable: true, writable: true } as net.SocketConstructorOpts);
}

interface PendingSend {
  header: Uint8Array;
  payload: Uint8Array;
  /** Payload bytes already handed to the socket; -1 until the header is written. */
  offset: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export interface LinkEvents extends FrameSink {
  /** The socket closed; `error` is null for an orderly close we asked for. */
  closed(link: Link, error: Error | null): void;
}

/**
 * One TCP connection: frames out through scatter-gather writes (header and payload views,
 * never concatenated), bounded by `highWaterBytes` of socket-buffered data; frames in
 * through a streaming parser that writes payloads straight into their destination.
 */
export class Link implements LiveLink {
  /** World rank of the other side; -1 until its Hello arrives (accepted links). */
  peer = -1;
  private readonly queue: PendingSend[] = [];
  private queuedPayloadBytes = 0;
  private waitingForDrain = false;
  private readonly unsettled = new Set<PendingSend>();
  private closing = false;
  private readonly parser: FrameParser;

  /** `reader`: the SocketReader the socket was created with; without one, 'data' events feed the parser. */
  constructor(readonly socket: Socket, reader: SocketReader | null, events: LinkEvents, maxPayload: number, private readonly highWaterBytes: number) {
    socket.setNoDelay(true);
    const fail = (e: unknown) => this.destroy(e instanceof TcclError ? e : new TcclError('TCCL_ERR_PROTOCOL', String(e)));
    this.parser = new FrameParser(events, { maxPayload, chunksAreOwned: !reader });
    if (reader) reader.attach(this.parser, fail);
    else {
      socket.on('data', (chunk: Buffer) => {
        try {
          this.parser.push(chunk);
        } catch (e) {
          fail(e);
        }
      });
    }
    socket.on('drain', () => {
      this.waitingForDrain = false;
      this.pump();
    });
    socket.on('error', () => undefined); // 'close' follows with hadError; handled there
    socket.on('close', () => {
      const error = this.closing ? null : (this.closeError ?? new TcclError('TCCL_ERR_PEER_LOST', 'connection closed by the other side'));
      this.failPending(error ?? new TcclError('TCCL_ERR_CLOSED', 'link closed'));
      events.closed(this, error);
    });
  }

  private closeError: TcclError | null = null;

  /** Bytes accepted but not yet in the kernel: our queue plus the socket's buffer. */
  get queuedBytes(): number {
    return this.queuedPayloadBytes + this.socket.writableLength;
  }

  send(header: FrameHeader, payload: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.socket.destroyed || this.socket.writableEnded) {
        reject(this.closeError ?? new TcclError('TCCL_ERR_PEER_LOST', 'link is closed'));
        return;
      }
      // Small frames go out as one buffer: copying a few KiB is cheaper than writev's stream
      // machinery (cork, chunk arrays, two write requests) on every latency-bound message.
      let item: PendingSend;
      if (payload.length <= COALESCE_MAX_BYTES) {
        const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
        encodeHeader(header, frame);
        frame.set(payload, HEADER_BYTES);
        item = { header: frame, payload: EMPTY, offset: -1, resolve, reject };
      } else {
        item = { header: encodeHeader(header), payload, offset: -1, resolve, reject };
      }
      this.queue.push(item);
      this.queuedPayloadBytes += item.header.length + item.payload.length;
      if (!this.waitingForDrain) this.pump();
    });
  }

  private pump(): void {
    const socket = this.socket;
    while (this.queue.length) {
      if (socket.writableLength >= this.highWaterBytes) {
        this.waitingForDrain = true;
        return;
      }
      const item = this.queue[0];
      const start = Math.max(item.offset, 0);
      const end = Math.min(item.payload.length, start + SLICE_BYTES);
      const last = end === item.payload.length;
      const onWritten = last ? this.completion(item) : undefined;
      if (item.offset < 0 && end === 0) {
        socket.write(item.header, onWritten); // header only, or a coalesced small frame
        this.queuedPayloadBytes -= item.header.length;
      } else if (item.offset < 0) {
        // cork/uncork turns header + payload slice into one writev.
        socket.cork();
        socket.write(item.header);
        socket.write(item.payload.subarray(0, end), onWritten);
        socket.uncork();
        this.queuedPayloadBytes -= HEADER_BYTES;
      } else {
        socket.write(item.payload.subarray(start, end), onWritten);
      }
      this.queuedPayloadBytes -= end - start;
      item.offset = end;
      if (last) this.queue.shift();
    }
    if (this.closing && !this.socket.writableEnded) this.socket.end();
  }

  private completion(item: PendingSend): (err?: Error | null) => void {
    this.unsettled.add(item);
    return (err) => {
      if (!this.unsettled.delete(item)) return;
      if (err) item.reject(this.closeError ?? new TcclError('TCCL_ERR_PEER_LOST', `write failed: ${err.message}`));
      else item.resolve();
    };
  }

  private failPending(error: TcclError): void {
    for (const item of this.queue.splice(0)) item.reject(error);
    for (const item of this.unsettled) item.reject(error);
    this.unsettled.clear();
    this.queuedPayloadBytes = 0;
  }

  pause(): void { this.socket.pause(); }
  resume(): void { this.socket.resume(); }

  /** Send what is queued, then close our side; resolves once the socket is closed. */
  end(graceMs: number): Promise<void> {
    this.closing = true;
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      const timer = setTimeout(() => this.socket.destroy(), graceMs);
      timer.unref();
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (!this.waitingForDrain) this.pump(); // ends the socket once the queue is written
    });
  }

  // ---- LiveLink (src/link-liveness.ts): the socket's own counters, nothing on the data path.
  bytesReceived(): number { return this.socket.bytesRead; }
  bytesSent(): number { return this.socket.bytesWritten; }
  unsentBytes(): number { return this.queuedBytes; }
  paused(): boolean { return this.socket.isPaused(); }
  sendHeartbeat(frame: FrameHeader): void { void this.send(frame, EMPTY).catch(() => undefined); }
  lost(error: TcclError): void { this.destroy(error); }

  /** Drop the connection now; pending sends fail with `error`. */
  destroy(error: TcclError): void {
    if (!this.closeError) this.closeError = error;
    this.socket.destroy();
  }
}
