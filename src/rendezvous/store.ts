/**
 * Rendezvous key-value store (gloo's Store, torch's c10d Store): ranks publish addresses
 * and counters here before any link exists.
 */
export interface Store {
  /** Set `key` to `value`, waking every waiter on it. */
  set(key: string, value: Uint8Array | string): Promise<void>;
  /** Value of `key`; waits for it up to `timeoutMs` (default: the store's timeout). */
  get(key: string, timeoutMs?: number): Promise<Uint8Array>;
  /** Resolve once every key exists; TCCL_ERR_TIMEOUT naming the missing keys otherwise. */
  wait(keys: string[], timeoutMs?: number): Promise<void>;
  /** Atomically add `delta` to the integer counter at `key` (missing = 0); returns the new value. */
  add(key: string, delta: number): Promise<number>;
  /** Remove `key`; true if it existed. */
  delete(key: string): Promise<boolean>;
  /** Release connections / handles. Pending waits fail with TCCL_ERR_CLOSED. */
  close(): Promise<void>;
}

export const DEFAULT_STORE_TIMEOUT_MS = 300_000;
