import type { TcclError } from './errors.js';
import type { Store } from './rendezvous/store.js';
import type { FrameHeader } from './wire/frame.js';

/**
 * What a transport hands received frames to (the communicator). `peer` is the sender's
 * world rank. Only Data and Abort frames come up; Hello/Heartbeat/Goodbye stay in the transport.
 * `beginFrame` picks the payload destination exactly as FrameSink does (see wire/parser.ts).
 */
export interface TransportSink {
  beginFrame(peer: number, header: FrameHeader): Uint8Array | null | undefined;
  endFrame(peer: number, header: FrameHeader, payload: Uint8Array | null): void;
  /** The link to `peer` is gone (closed, reset, protocol error, heartbeat silence). */
  peerLost(peer: number, error: TcclError): void;
}

/**
 * Moves tagged byte frames between world ranks; knows nothing about collectives.
 * Frames to one peer arrive in the order they were sent.
 */
export interface Transport {
  readonly name: string;
  readonly rank: number;
  readonly size: number;
  /** Install the receiver and start accepting links (publishes this rank's address in the store). */
  start(sink: TransportSink): Promise<void>;
  /** Build the links to every peer now instead of on first use. */
  connectAll(timeoutMs: number): Promise<void>;
  /**
   * Queue one frame for `peer`. Resolves when `payload` may be reused by the caller
   * (written to the kernel / copied to the consumer); never copies it just to queue it.
   */
  send(peer: number, header: FrameHeader, payload: Uint8Array): Promise<void>;
  /** Stop reading from `peer` (flow control when the unexpected queue is full) / start again. */
  pauseReceive(peer: number): void;
  resumeReceive(peer: number): void;
  /** Bytes accepted by send() but not yet handed to the kernel, for one peer or all. */
  queuedBytes(peer?: number): number;
  /** Flush queued sends, say goodbye, close every link. */
  close(): Promise<void>;
  /**
   * Drop every link now; pending sends reject with `reason`. May return a promise that settles
   * once the peers were told (the store must stay open until then: it finds silent peers).
   */
  abort(reason: TcclError): void | Promise<void>;
  /** Shared memory with every rank of the job, when this transport has it (see SharedTeam). */
  sharedTeam?(): SharedTeam | null;
  /**
   * A SharedTeam of its own for a communicator made by split/dup. Collective over `members`
   * (world ranks in communicator rank order, this rank among them): every member must call it,
   * with the same `key` (unique per communicator on the job). Null, on every member alike,
   * when this transport cannot give these members shared memory; rejects (TcclError naming
   * the members missing) when setting it up fails or outlasts `timeoutMs`.
   */
  createSharedTeam?(key: string, members: readonly number[], timeoutMs: number): Promise<SharedTeam | null>;
}

/**
 * Memory every rank of the job maps (a shared-memory transport whose ranks are all on this
 * host): per rank a step word and two data halves ("slots") every rank can read, so a
 * collective can copy in once, reduce straight from the peers' slots and copy out once,
 * with no messages. The world communicator uses the transport's (src/comm/shared-group.ts);
 * communicators made by split/dup get their own (Transport.createSharedTeam).
 */
export interface SharedTeam {
  readonly rank: number;
  readonly size: number;
  /** Bytes in each half of a rank's slot (a multiple of 64). */
  readonly slotBytes: number;
  /**
   * False when the ranks share one thread (in-process test worlds): waiting must then
   * return to the event loop instead of blocking, or the peer could never arrive.
   */
  readonly blocking: boolean;
  /** Rank `rank`'s half `half` (0 or 1): the same memory in every rank. */
  slot(rank: number, half: number): Uint8Array;
  /** This rank has finished `step` (steps count up by one, wrapping at 2^31): wake peers waiting on it. */
  arrive(step: number): void;
  /** Whether `peer` has finished `step`. */
  reached(peer: number, step: number): boolean;
  /**
   * Wait at most `ms` for `peer` to finish `step`, blocking this thread: when `eager` (the
   * first wait of a step) poll first, then sleep on the peer's step word. True once it has.
   */
  waitFor(peer: number, step: number, ms: number, eager: boolean): boolean;
}

export interface TransportInit {
  rank: number;
  size: number;
  store: Store;
  /** Store key prefix for this job / communicator group. */
  prefix: string;
  timeoutMs: number;
}
