import { TcclError } from '../../src/errors.js';
import { encodeHeader, HEADER_BYTES, type FrameHeader } from '../../src/wire/frame.js';
import { FrameParser, type FrameSink } from '../../src/wire/parser.js';
import type { DataChannel } from './native.js';

interface PendingSend {
  header: Uint8Array;
  payload: Uint8Array;
  /** Payload bytes already handed to the channel; -1 until the header is sent. */
  offset: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export interface ChannelLinkOptions {
  /** Largest frame payload accepted from the network. */
  maxPayload: number;
  /** Bytes buffered in the channel (libdatachannel's queue) before sends wait for 'bufferedAmountLow'. */
  highWaterBytes: number;
  /** The SCTP message limit negotiated for the channel (both sides' max-message-size). */
  maxMessageBytes: number;
}

/**
 * One reliable, ordered data channel used as a byte stream of tccl frames, so framing,
 * validation and zero-copy delivery are the shared wire parser's. Frames larger than the
 * SCTP message limit are cut into messages of at most that size; the parser reassembles
 * them wherever the cuts fall. A send resolves once its bytes are in libdatachannel's queue
 * (sendMessageBinary copies), and queueing stops above `highWaterBytes` until the channel
 * reports its buffered amount low again.
 */
export class ChannelLink {
  private readonly queue: PendingSend[] = [];
  private queuedPayloadBytes = 0;
  private readonly parser: FrameParser;
  /** Messages received while paused: a data channel cannot stop its sender, so they wait here. */
  private held: Buffer[] = [];
  private paused = false;
  private failure: TcclError | null = null;
  private maxMessage: number;

  constructor(readonly channel: DataChannel, sink: FrameSink, private readonly opts: ChannelLinkOptions, private readonly onProtocolError: (e: TcclError) => void) {
    this.parser = new FrameParser(sink, { maxPayload: opts.maxPayload, chunksAreOwned: true });
    this.maxMessage = opts.maxMessageBytes;
    channel.setBufferedAmountLowThreshold(opts.highWaterBytes >> 1);
    channel.onBufferedAmountLow(() => this.pump());
    channel.onMessage((msg) => {
      if (typeof msg === 'string') return this.protocolError(new TcclError('TCCL_ERR_PROTOCOL', 'text message on a tccl data channel'));
      const chunk = Buffer.isBuffer(msg) ? msg : Buffer.from(msg);
      if (this.paused || this.held.length) this.held.push(chunk);
      else this.feed(chunk);
    });
  }

  /** The limit both sides agreed on, known once the channel is open. */
  setMaxMessageBytes(bytes: number): void {
    if (bytes >= 1024) this.maxMessage = Math.min(bytes, this.opts.maxMessageBytes);
  }

  private feed(chunk: Uint8Array): void {
    if (this.failure) return;
    try {
      this.parser.push(chunk);
    } catch (e) {
      this.protocolError(e instanceof TcclError ? e : new TcclError('TCCL_ERR_PROTOCOL', String(e)));
    }
  }

  private protocolError(e: TcclError): void {
    if (this.failure) return;
    this.failure = e;
    this.held = [];
    this.onProtocolError(e);
  }

  /** Bytes accepted by send() not yet in libdatachannel, plus what it still buffers. */
  get queuedBytes(): number {
    let buffered = 0;
    try {
      buffered = this.channel.isOpen() ? this.channel.bufferedAmount() : 0;
    } catch {
      buffered = 0; // the native channel is already gone
    }
    return this.queuedPayloadBytes + buffered;
  }

  send(header: FrameHeader, payload: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.queue.push({ header: encodeHeader(header), payload, offset: -1, resolve, reject });
      this.queuedPayloadBytes += HEADER_BYTES + payload.length;
      if (this.queue.length === 1) this.pump();
    });
  }

  private pump(): void {
    const channel = this.channel;
    const maxMessage = this.maxMessage;
    try {
      while (this.queue.length && !this.failure) {
        if (channel.bufferedAmount() >= this.opts.highWaterBytes) return; // resumed by onBufferedAmountLow
        const item = this.queue[0];
        if (item.offset < 0) {
          if (HEADER_BYTES + item.payload.length <= maxMessage) {
            // A small frame goes as one message: one copy here beats a second native message.
            const msg = Buffer.allocUnsafe(HEADER_BYTES + item.payload.length);
            msg.set(item.header, 0);
            msg.set(item.payload, HEADER_BYTES);
            channel.sendMessageBinary(msg);
            item.offset = item.payload.length;
          } else {
            channel.sendMessageBinary(item.header);
            item.offset = 0;
          }
          this.queuedPayloadBytes -= HEADER_BYTES;
          this.queuedPayloadBytes -= item.offset;
        } else {
          const end = Math.min(item.payload.length, item.offset + maxMessage);
          const slice = item.payload.subarray(item.offset, end);
          channel.sendMessageBinary(Buffer.from(slice.buffer, slice.byteOffset, slice.byteLength));
          this.queuedPayloadBytes -= end - item.offset;
          item.offset = end;
        }
        if (item.offset === item.payload.length) {
          this.queue.shift();
          item.resolve(); // libdatachannel copied the bytes: the caller may reuse the buffer
        }
      }
    } catch (e) {
      this.fail(new TcclError('TCCL_ERR_PEER_LOST', `data channel send failed: ${(e as Error).message}`));
    }
  }

  pause(): void { this.paused = true; }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // Deliver what arrived while paused on a later turn, as a socket resumes reading: the
    // engine calls resume from inside postRecv, before that receive is counted as waiting.
    if (this.held.length && !this.draining) {
      this.draining = true;
      setImmediate(this.drain);
    }
  }

  private draining = false;
  private readonly drain = (): void => {
    this.draining = false;
    while (this.held.length && !this.paused && !this.failure) this.feed(this.held.shift()!);
  };

  /** Fail every pending send with `error`; later sends fail too. */
  fail(error: TcclError): void {
    if (!this.failure) this.failure = error;
    for (const item of this.queue.splice(0)) item.reject(error);
    this.queuedPayloadBytes = 0;
    this.held = [];
  }
}
