/**
 * Store on a shared filesystem (gloo's FileStore): one file per key, so ranks on any host
 * that mounts `dir` rendezvous without a server. Readers poll; writers rename atomically.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { mkdir, open, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { TcclError } from '../errors.js';
import {
  StoreTimeoutError,
  addToCounter,
  checkDelta,
  closedError,
  resolveTimeout,
  valueBytes,
} from './memory-store.js';
import { DEFAULT_STORE_TIMEOUT_MS, type Store } from './store.js';

export interface FileStoreOptions {
  /** Default get/wait timeout and the longest add() waits for the counter lock; default 300 s. */
  timeoutMs?: number;
  /** A lock file older than this belongs to a dead process and is removed; default 10 s. */
  staleLockMs?: number;
}

const MIN_POLL_MS = 1;
const MAX_POLL_MS = 50;
const DEFAULT_STALE_LOCK_MS = 10_000;
/** Keeps file names under the common 255-byte limit; longer keys are hashed instead. */
const MAX_ENCODED_KEY_LENGTH = 200;

export class FileStore implements Store {
  private readonly timeoutMs: number;
  private readonly staleLockMs: number;
  private readonly closing = new AbortController();
  /** Tail of this instance's add() queue per lock: one contender per process, not one per call. */
  private readonly lockQueues = new Map<string, Promise<unknown>>();
  private dirReady: Promise<unknown> | undefined;

  constructor(
    readonly dir: string,
    opts: FileStoreOptions = {},
  ) {
    this.timeoutMs = resolveTimeout(opts.timeoutMs, DEFAULT_STORE_TIMEOUT_MS, 'open');
    this.staleLockMs = opts.staleLockMs ?? DEFAULT_STALE_LOCK_MS;
    // Every parked get/wait/add listens for close() on this one signal.
    setMaxListeners(Infinity, this.closing.signal);
  }

  set(key: string, value: Uint8Array | string): Promise<void> {
    return this.run('set', key, () => this.writeAtomic(this.keyPath(key), valueBytes(value)));
  }

  get(key: string, timeoutMs?: number): Promise<Uint8Array> {
    return this.run('get', key, async () => {
      const ms = resolveTimeout(timeoutMs, this.timeoutMs, 'get');
      const path = this.keyPath(key);
      return this.poll('get', ms, () => readIfExists(path), () => [key]);
    });
  }

  wait(keys: string[], timeoutMs?: number): Promise<void> {
    return this.run('wait', keys[0], async () => {
      const ms = resolveTimeout(timeoutMs, this.timeoutMs, 'wait');
      let missing = keys;
      const allPresent = async () => {
        const present = await Promise.all(missing.map((key) => exists(this.keyPath(key))));
        missing = missing.filter((_, i) => !present[i]);
        return missing.length === 0 ? true : undefined;
      };
      await this.poll('wait', ms, allPresent, () => missing);
    });
  }

  add(key: string, delta: number): Promise<number> {
    return this.run('add', key, async () => {
      checkDelta(key, delta);
      const path = this.keyPath(key);
      // The lock makes read-modify-write atomic across processes; set() needs none (rename is atomic).
      return this.queued(`${path}.lock`, () =>
        this.withLock(`${path}.lock`, key, async () => {
          const { value, bytes } = addToCounter(key, await readIfExists(path), delta);
          await this.writeAtomic(path, bytes);
          return value;
        }),
      );
    });
  }

  delete(key: string): Promise<boolean> {
    return this.run('delete', key, async () => {
      try {
        await unlink(this.keyPath(key));
        return true;
      } catch (error) {
        if (errorCode(error) === 'ENOENT') return false;
        throw error;
      }
    });
  }

  /** Pending get/wait/add calls fail with TCCL_ERR_CLOSED; the files stay for other ranks. */
  async close(): Promise<void> {
    this.closing.abort();
  }

  /** Checks the store is open, creates `dir` once, and reports filesystem failures as TCCL_ERR_STORE. */
  private async run<T>(op: string, key: string | undefined, body: () => Promise<T>): Promise<T> {
    if (this.closing.signal.aborted) throw closedError(op, key);
    try {
      this.dirReady ??= mkdir(this.dir, { recursive: true });
      await this.dirReady;
      return await body();
    } catch (error) {
      if (error instanceof TcclError) throw error;
      if (this.closing.signal.aborted) throw closedError(op, key);
      throw new TcclError('TCCL_ERR_STORE', `file store ${this.dir} failed`, { op, key, cause: error });
    }
  }

  private keyPath(key: string): string {
    const encoded = Buffer.from(key, 'utf8').toString('base64url');
    const name =
      encoded.length <= MAX_ENCODED_KEY_LENGTH ? `k_${encoded}` : `h_${createHash('sha256').update(key).digest('hex')}`;
    return join(this.dir, name);
  }

  /** Readers see the old file or the new one, never a partial write. */
  private async writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
    // Dot-prefixed so a temp file can never be taken for a key (those start with k_ or h_).
    const temp = join(this.dir, `.tmp-${process.pid}-${randomBytes(8).toString('hex')}`);
    await writeFile(temp, bytes);
    try {
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  /** Re-runs `probe` with growing pauses until it yields a value or `timeoutMs` passes. */
  private async poll<T>(op: string, timeoutMs: number, probe: () => Promise<T | undefined>, missingKeys: () => string[]): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let pauseMs = MIN_POLL_MS;
    for (;;) {
      const found = await probe();
      if (found !== undefined) return found;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new StoreTimeoutError(op, missingKeys(), timeoutMs);
      await this.pause(Math.min(pauseMs, remaining), op, missingKeys()[0]);
      pauseMs = Math.min(pauseMs * 2, MAX_POLL_MS);
    }
  }

  /** Runs `task` after every earlier task queued on `lockPath` by this instance settles. */
  private queued<T>(lockPath: string, task: () => Promise<T>): Promise<T> {
    const previous = this.lockQueues.get(lockPath) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => {});
    this.lockQueues.set(lockPath, tail);
    void tail.then(() => {
      if (this.lockQueues.get(lockPath) === tail) this.lockQueues.delete(lockPath);
    });
    return result;
  }

  private async withLock<T>(lockPath: string, key: string, critical: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.timeoutMs;
    let pauseMs = MIN_POLL_MS;
    for (;;) {
      try {
        await (await open(lockPath, 'wx')).close();
        break;
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error;
      }
      if (await this.removeIfStale(lockPath)) continue;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new TcclError('TCCL_ERR_TIMEOUT', `counter lock ${lockPath} still held after ${this.timeoutMs} ms`, { op: 'add', key });
      }
      await this.pause(Math.min(pauseMs, remaining), 'add', key);
      pauseMs = Math.min(pauseMs * 2, MAX_POLL_MS);
    }
    try {
      return await critical();
    } finally {
      await rm(lockPath, { force: true });
    }
  }

  /**
   * A holder keeps the lock for one read and one rename, so an old lock means its holder died.
   * Two processes may both judge the same lock stale; staleLockMs is far above any real hold
   * time, which keeps that window to crashed holders only.
   */
  private async removeIfStale(lockPath: string): Promise<boolean> {
    try {
      const { mtimeMs } = await stat(lockPath);
      if (Date.now() - mtimeMs <= this.staleLockMs) return false;
      await rm(lockPath, { force: true });
      return true;
    } catch (error) {
      // Released between our open and stat: retry at once.
      if (errorCode(error) === 'ENOENT') return true;
      throw error;
    }
  }

  private async pause(ms: number, op: string, key: string | undefined): Promise<void> {
    try {
      await delay(ms, undefined, { signal: this.closing.signal });
    } catch {
      throw closedError(op, key);
    }
  }
}

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException | undefined)?.code;

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    const buffer = await readFile(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
}
