/**
 * In-process Store for single-process tests; also the table behind StoreServer.
 * Helpers shared by every Store implementation (argument checks, counters, timeout errors)
 * live here too.
 */
import { TcclError, invalidArgument } from '../errors.js';
import { DEFAULT_STORE_TIMEOUT_MS, type Store } from './store.js';

/** Largest delay setTimeout honours; longer ones would fire immediately. */
export const MAX_STORE_TIMEOUT_MS = 2 ** 31 - 1;

/** TCCL_ERR_TIMEOUT from get/wait; `missingKeys` lists the keys that never appeared. */
export class StoreTimeoutError extends TcclError {
  readonly missingKeys: string[];

  constructor(op: string, missingKeys: string[], timeoutMs: number) {
    super(
      'TCCL_ERR_TIMEOUT',
      `store ${op} timed out after ${timeoutMs} ms; missing keys: ${JSON.stringify(missingKeys)}`,
      { op, key: missingKeys.length === 1 ? missingKeys[0] : undefined },
    );
    this.missingKeys = missingKeys;
  }
}

export function resolveTimeout(timeoutMs: number | undefined, defaultMs: number, op: string): number {
  const ms = timeoutMs ?? defaultMs;
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_STORE_TIMEOUT_MS) {
    throw invalidArgument(`timeout must be between 0 and ${MAX_STORE_TIMEOUT_MS} ms, got ${ms}`, { op });
  }
  return Math.floor(ms);
}

export function checkDelta(key: string, delta: number): void {
  if (!Number.isSafeInteger(delta)) throw invalidArgument(`add delta must be a safe integer, got ${delta}`, { op: 'add', key });
}

export function valueBytes(value: Uint8Array | string): Uint8Array {
  // Copy: the caller may reuse its buffer after set() returns.
  return typeof value === 'string' ? new TextEncoder().encode(value) : Uint8Array.from(value);
}

/**
 * New counter bytes after adding `delta` to `current` (absent = 0). Counters are decimal
 * ASCII like torch's TCPStore, so get() of a counter reads e.g. "3".
 */
export function addToCounter(key: string, current: Uint8Array | undefined, delta: number): { value: number; bytes: Uint8Array } {
  let base = 0;
  if (current !== undefined) {
    const text = new TextDecoder().decode(current);
    base = /^-?\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(base)) {
      throw invalidArgument(`value is not an integer counter: ${JSON.stringify(text.slice(0, 40))}`, { op: 'add', key });
    }
  }
  const value = base + delta;
  if (!Number.isSafeInteger(value)) throw invalidArgument(`counter overflows a safe integer`, { op: 'add', key });
  return { value, bytes: new TextEncoder().encode(String(value)) };
}

export const closedError = (op: string, key?: string) => new TcclError('TCCL_ERR_CLOSED', 'store is closed', { op, key });

/** One parked get/wait: registered under every key still missing. */
interface Waiter {
  op: string;
  missing: Set<string>;
  ready(): void;
  fail(error: TcclError): void;
}

export class MemoryStore implements Store {
  private readonly values = new Map<string, Uint8Array>();
  private readonly waitersByKey = new Map<string, Set<Waiter>>();
  private readonly parked = new Set<Waiter>();
  private closed = false;

  constructor(private readonly defaultTimeoutMs = DEFAULT_STORE_TIMEOUT_MS) {}

  async set(key: string, value: Uint8Array | string): Promise<void> {
    this.checkOpen('set', key);
    this.store(key, valueBytes(value));
  }

  /** `signal` lets StoreServer drop the waits of a client that disconnected. */
  async get(key: string, timeoutMs?: number, signal?: AbortSignal): Promise<Uint8Array> {
    this.checkOpen('get', key);
    // Read the value in the same tick as the set that woke us, before any delete can run.
    return this.park('get', [key], resolveTimeout(timeoutMs, this.defaultTimeoutMs, 'get'), signal, () =>
      this.values.get(key)!.slice(),
    );
  }

  async wait(keys: string[], timeoutMs?: number, signal?: AbortSignal): Promise<void> {
    this.checkOpen('wait', keys[0]);
    await this.park('wait', keys, resolveTimeout(timeoutMs, this.defaultTimeoutMs, 'wait'), signal, () => undefined);
  }

  async add(key: string, delta: number): Promise<number> {
    this.checkOpen('add', key);
    checkDelta(key, delta);
    const { value, bytes } = addToCounter(key, this.values.get(key), delta);
    this.store(key, bytes);
    return value;
  }

  async delete(key: string): Promise<boolean> {
    this.checkOpen('delete', key);
    return this.values.delete(key);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of [...this.parked]) waiter.fail(closedError(waiter.op, [...waiter.missing][0]));
    this.values.clear();
  }

  private checkOpen(op: string, key: string | undefined): void {
    if (this.closed) throw closedError(op, key);
  }

  private store(key: string, bytes: Uint8Array): void {
    this.values.set(key, bytes);
    const waiters = this.waitersByKey.get(key);
    if (waiters === undefined) return;
    this.waitersByKey.delete(key);
    for (const waiter of waiters) {
      waiter.missing.delete(key);
      if (waiter.missing.size === 0) waiter.ready();
    }
  }

  private park<T>(op: string, keys: string[], timeoutMs: number, signal: AbortSignal | undefined, read: () => T): Promise<T> {
    const missing = new Set(keys.filter((key) => !this.values.has(key)));
    if (missing.size === 0) return Promise.resolve(read());
    if (timeoutMs === 0) return Promise.reject(new StoreTimeoutError(op, [...missing], 0));
    if (signal?.aborted) return Promise.reject(closedError(op, [...missing][0]));

    return new Promise<T>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.parked.delete(waiter);
        for (const key of missing) {
          const waiters = this.waitersByKey.get(key);
          waiters?.delete(waiter);
          if (waiters?.size === 0) this.waitersByKey.delete(key);
        }
      };
      const waiter: Waiter = {
        op,
        missing,
        ready: () => {
          finish();
          resolve(read());
        },
        fail: (error) => {
          finish();
          reject(error);
        },
      };
      const timer = setTimeout(() => waiter.fail(new StoreTimeoutError(op, [...missing], timeoutMs)), timeoutMs);
      const onAbort = () => waiter.fail(closedError(op, [...missing][0]));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.parked.add(waiter);
      for (const key of missing) {
        let waiters = this.waitersByKey.get(key);
        if (waiters === undefined) this.waitersByKey.set(key, (waiters = new Set()));
        waiters.add(waiter);
      }
    });
  }
}
