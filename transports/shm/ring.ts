/**
 * Single-producer / single-consumer byte ring in shared memory (a /dev/shm mapping or a
 * SharedArrayBuffer). Frames go in as a byte stream exactly as on a socket, so the one
 * frame parser (src/wire/parser.ts) reads them; the consumer copies straight out of the
 * ring into the posted receive buffer.
 *
 * Layout: a 256-byte control block (each word on its own cache line, so producer and
 * consumer never write the same line), then `capacity` data bytes (a power of two).
 * Positions are free-running u32 counters; `head - tail` (mod 2^32) is the bytes held.
 * No I/O here: the owner decides when to poll and how to wake the other side.
 */

export const RING_CONTROL_BYTES = 256;
const HEAD = 0; // producer's write position
const TAIL = 16; // consumer's read position
const PULLED = 20; // consumer's count of payloads copied straight from the producer's memory
const READER_SLEEPING = 32; // consumer stopped polling: producer must ring its doorbell
const WRITER_WAITING = 48; // producer found the ring full: consumer must ring its doorbell

export const MIN_RING_BYTES = 4096;
export const MAX_RING_BYTES = 1 << 30;

export function ringBytes(capacity: number): number {
  return RING_CONTROL_BYTES + capacity;
}

export class Ring {
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  private readonly mask: number;
  /** Private copies of the position this side owns (only it writes that word). */
  private head: number;
  private tail: number;

  /** `buffer` may be an ArrayBuffer over a shared mapping or a SharedArrayBuffer. */
  constructor(buffer: ArrayBufferLike, byteOffset: number, readonly capacity: number) {
    if (capacity < MIN_RING_BYTES || capacity > MAX_RING_BYTES || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError(`ring capacity must be a power of two in [${MIN_RING_BYTES}, ${MAX_RING_BYTES}], got ${capacity}`);
    }
    if (byteOffset % 64 !== 0) throw new RangeError(`ring offset ${byteOffset} is not cache-line aligned`);
    this.ctl = new Int32Array(buffer, byteOffset, RING_CONTROL_BYTES / 4);
    this.data = new Uint8Array(buffer, byteOffset + RING_CONTROL_BYTES, capacity);
    this.mask = capacity - 1;
    this.head = Atomics.load(this.ctl, HEAD);
    this.tail = Atomics.load(this.ctl, TAIL);
  }

  // ---- producer side ---------------------------------------------------------------------

  /** Bytes the producer may write now. */
  free(): number {
    return this.capacity - ((this.head - Atomics.load(this.ctl, TAIL)) >>> 0);
  }

  /** Copy `src` in at the write position (caller checked free()); not visible until publish(). */
  write(src: Uint8Array): void {
    const at = this.head & this.mask;
    const first = Math.min(src.length, this.capacity - at);
    if (first === src.length) this.data.set(src, at);
    else {
      this.data.set(src.subarray(0, first), at);
      this.data.set(src.subarray(first), 0);
    }
    this.head = (this.head + src.length) | 0;
  }

  /** Make written bytes visible. True when the consumer was asleep and must be woken (once). */
  publish(): boolean {
    Atomics.store(this.ctl, HEAD, this.head);
    return Atomics.load(this.ctl, READER_SLEEPING) !== 0 && Atomics.exchange(this.ctl, READER_SLEEPING, 0) !== 0;
  }

  /**
   * The producer will stop polling: ask for a doorbell when space frees up. False when space
   * appeared meanwhile (keep writing instead of sleeping).
   */
  waitForSpace(): boolean {
    Atomics.store(this.ctl, WRITER_WAITING, 1);
    if (this.free() > 0) {
      Atomics.store(this.ctl, WRITER_WAITING, 0);
      return false;
    }
    return true;
  }

  /** Payloads the consumer has pulled out of the producer's memory so far (free-running). */
  pulled(): number {
    return Atomics.load(this.ctl, PULLED);
  }

  /** Like waitForSpace, for the pull numbered `seq`: false if it is already done. */
  waitForPull(seq: number): boolean {
    Atomics.store(this.ctl, WRITER_WAITING, 1);
    if (((this.pulled() - seq) | 0) >= 0) {
      Atomics.store(this.ctl, WRITER_WAITING, 0);
      return false;
    }
    return true;
  }

  // ---- consumer side ---------------------------------------------------------------------

  /** One more payload pulled: the producer may reuse it. True when it waits and must be woken. */
  markPulled(): boolean {
    Atomics.add(this.ctl, PULLED, 1);
    return Atomics.load(this.ctl, WRITER_WAITING) !== 0 && Atomics.exchange(this.ctl, WRITER_WAITING, 0) !== 0;
  }

  /** Bytes ready to read. */
  readable(): number {
    return (Atomics.load(this.ctl, HEAD) - this.tail) >>> 0;
  }

  /** View of `max` bytes at the read position, fewer where the data area wraps; `max` <= readable(). */
  peek(max: number): Uint8Array {
    const at = this.tail & this.mask;
    return this.data.subarray(at, at + Math.min(max, this.capacity - at));
  }

  /** Release `n` bytes to the producer. True when it waits for space and must be woken (once). */
  consume(n: number): boolean {
    this.tail = (this.tail + n) | 0;
    Atomics.store(this.ctl, TAIL, this.tail);
    return Atomics.load(this.ctl, WRITER_WAITING) !== 0 && Atomics.exchange(this.ctl, WRITER_WAITING, 0) !== 0;
  }

  /**
   * The consumer will stop polling: ask for a doorbell on the next publish. False when data
   * arrived meanwhile (keep reading instead of sleeping). The store-then-load on both sides
   * (seq-cst) means one of them always sees the other: no lost wake-up.
   */
  sleep(): boolean {
    Atomics.store(this.ctl, READER_SLEEPING, 1);
    if (this.readable() > 0) {
      Atomics.store(this.ctl, READER_SLEEPING, 0);
      return false;
    }
    return true;
  }

  /** The consumer polls again: producers need not ring. */
  awake(): void {
    if (Atomics.load(this.ctl, READER_SLEEPING) !== 0) Atomics.store(this.ctl, READER_SLEEPING, 0);
  }
}
