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
}
