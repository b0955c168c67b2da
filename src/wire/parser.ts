import { TcclError } from '../errors.js';
import { decodeHeader, HEADER_BYTES, type FrameHeader } from './frame.js';

/**
 * Where parsed frames go. `beginFrame` picks the payload's destination:
 *  - a Uint8Array of exactly `header.length` bytes: the payload is copied straight into it
 *    (a receive that is already posted: the one copy);
 *  - `null`: the payload is skipped (e.g. a truncated receive that already failed);
 *  - `undefined`: the parser provides storage (a view of the input when the payload lies
 *    inside one owned chunk, otherwise a fresh array).
 */
export interface FrameSink {
  beginFrame(header: FrameHeader): Uint8Array | null | undefined;
  endFrame(header: FrameHeader, payload: Uint8Array | null): void;
}

export interface ParserOptions {
  /** Largest payload accepted; longer frames are a protocol error before any allocation. */
  maxPayload: number;
  /** True when pushed chunks are never reused by the caller, so views of them may be kept. */
  chunksAreOwned: boolean;
}

/** Streaming frame parser: a state machine fed bytes split at any position, with no socket in it. */
export class FrameParser {
  private readonly headerBuf = new Uint8Array(HEADER_BYTES);
  private headerFill = 0;
  private header: FrameHeader | null = null;
  private dest: Uint8Array | null = null;
  private payloadFill = 0;
  private failed: TcclError | null = null;

  constructor(private readonly sink: FrameSink, private readonly opts: ParserOptions) {}

  /** Bytes of the current frame still expected (0 between frames). */
  get pendingBytes(): number {
    if (this.header) return this.header.length - this.payloadFill;
    return this.headerFill ? HEADER_BYTES - this.headerFill : 0;
  }

  /**
   * Where the next `minBytes`+ of the current payload may be read straight from the socket:
   * the unfilled rest of its destination, or null between frames, for a skipped payload, or
   * when less than `minBytes` remains. Pair with `pushedDirect`.
   */
  directTarget(minBytes: number): Uint8Array | null {
    if (this.failed || !this.header || !this.dest) return null;
    const remaining = this.header.length - this.payloadFill;
    return remaining >= minBytes ? this.dest.subarray(this.payloadFill) : null;
  }

  /** `n` bytes were written into the view `directTarget` returned. */
  pushedDirect(n: number): void {
    const header = this.header;
    if (!header || !this.dest || n > header.length - this.payloadFill) throw new TcclError('TCCL_ERR_INTERNAL', `direct read of ${n} bytes outside the current payload`);
    this.payloadFill += n;
    if (this.payloadFill === header.length) {
      const payload = this.dest;
      this.header = null;
      this.dest = null;
      this.sink.endFrame(header, payload);
    }
  }

  /** Feed bytes. Throws TCCL_ERR_PROTOCOL on malformed input; after that every push throws. */
  push(chunk: Uint8Array): void {
    if (this.failed) throw this.failed;
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.header === null) {
        // Fast path: a whole header inside the chunk needs no staging copy.
        let headerSrc: Uint8Array;
        let headerOff: number;
        if (this.headerFill === 0 && end - pos >= HEADER_BYTES) {
          headerSrc = chunk;
          headerOff = pos;
          pos += HEADER_BYTES;
        } else {
          const take = Math.min(HEADER_BYTES - this.headerFill, end - pos);
          this.headerBuf.set(chunk.subarray(pos, pos + take), this.headerFill);
          this.headerFill += take;
          pos += take;
          if (this.headerFill < HEADER_BYTES) return;
          headerSrc = this.headerBuf;
          headerOff = 0;
        }
        this.headerFill = 0;
        let header: FrameHeader;
        try {
          header = decodeHeader(headerSrc, headerOff, this.opts.maxPayload);
        } catch (e) {
          this.failed = e as TcclError;
          throw e;
        }
        const dest = this.sink.beginFrame(header);
        if (dest && dest.length !== header.length) {
          this.failed = new TcclError('TCCL_ERR_INTERNAL', `frame destination has ${dest.length} bytes, frame has ${header.length}`);
          throw this.failed;
        }
        if (header.length === 0) {
          this.sink.endFrame(header, dest === null ? null : (dest ?? new Uint8Array(0)));
          continue;
        }
        if (dest === undefined && this.opts.chunksAreOwned && end - pos >= header.length) {
          // Unexpected payload entirely inside this chunk: hand up a view, no copy.
          const view = chunk.subarray(pos, pos + header.length);
          pos += header.length;
          this.sink.endFrame(header, view);
          continue;
        }
        this.header = header;
        // Unexpected payload: fresh storage, fully overwritten before anyone sees it.
        this.dest = dest === undefined ? unfilled(header.length) : dest;
        this.payloadFill = 0;
      }
      const header = this.header;
      const take = Math.min(header.length - this.payloadFill, end - pos);
      if (this.dest) this.dest.set(chunk.subarray(pos, pos + take), this.payloadFill);
      this.payloadFill += take;
      pos += take;
      if (this.payloadFill === header.length) {
        const payload = this.dest;
        this.header = null;
        this.dest = null;
        this.sink.endFrame(header, payload);
      }
    }
  }
}

/** A fresh array for `n` bytes; large ones skip zero-filling (every byte is written before use). */
function unfilled(n: number): Uint8Array {
  if (n < 4096) return new Uint8Array(n);
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}
