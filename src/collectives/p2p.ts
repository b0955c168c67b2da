import type { TypedArray } from '../dtype.js';

/**
 * The only thing a collective algorithm may use: byte send/recv with one peer on the
 * collective's private (context, tag). Messages between a pair are matched in posting
 * order (MPI non-overtaking), so several outstanding send/recv on a pair are fine as long as
 * both sides post them in the same order.
 */
export interface CollectiveP2P {
  readonly rank: number;
  readonly size: number;
  /** Resolves when `data` may be reused. */
  send(peer: number, data: Uint8Array): Promise<void>;
  /** Receive exactly `data.length` bytes from `peer` into `data`. */
  recv(peer: number, data: Uint8Array): Promise<void>;
  /** Shared memory with every rank of the communicator, when the transport has it. */
  readonly shared?: SharedGroup;
}

/**
 * Shared memory every rank of the collective's communicator maps (the shm transport with all
 * ranks on one host; see SharedTeam in src/transport.ts). Each rank owns a slot of two halves
 * the others can read. The reuse rule that makes two halves enough: a rank writes only its own
 * slot, only at the start of a chunk, into the half after the one it used last; it reads peers'
 * slots only between that chunk's first sync() and the next chunk's first sync(). So when it
 * writes half h again (two chunks later) every peer has passed a sync it made after its last
 * read of half h.
 */
export interface SharedGroup {
  readonly rank: number;
  readonly size: number;
  /** Bytes in each half of each rank's slot. */
  readonly slotBytes: number;
  /** The half this rank writes for its next chunk (alternates chunk by chunk). */
  nextHalf(): number;
  slot(rank: number, half: number): Uint8Array;
  /** The same half as elements of `like`'s type (whole half, made once: no view per call). */
  slotAs<A extends TypedArray>(rank: number, half: number, like: A): A;
  /**
   * This rank has finished the current step; resolve once every rank has. Undefined when they
   * all had already (no await needed). Fails on timeout, abort or a lost peer, naming them.
   */
  sync(): Promise<void> | undefined;
  /**
   * Run a shared-memory collective after every earlier one of this communicator has ended.
   * When none is running, `body` runs now and a result it returns without waiting comes back
   * as is (no promise), so small collectives can finish within the call.
   */
  exclusive<T>(body: () => T | Promise<T>): T | Promise<T>;
}
