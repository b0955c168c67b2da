// Shared by the transport conformance suite and the communicator error tests.
import { expect } from 'vitest';
import type { Engine } from '../../src/comm/engine.js';
import { initLocalWorld, isTcclError, type Communicator, type TcclError } from '../../src/index.js';
import type { TypedArray } from '../../src/dtype.js';

export type TransportKind = 'memory' | 'tcp' | 'shm' | 'threads' | 'webrtc';

export interface WorldOptions {
  timeoutMs?: number;
  maxUnexpectedBytes?: number;
  connect?: 'lazy' | 'eager';
}

/**
 * Opens worlds and sub-communicators and closes every one of them in `closeAll` (call it
 * from afterEach): sub-communicators first, then the world communicators.
 */
export class WorldTracker {
  private readonly subs: Communicator[] = [];
  private readonly worlds: Communicator[] = [];
  constructor(readonly transport: TransportKind, private readonly defaults: WorldOptions = {}) {}

  async world(size: number, opts: WorldOptions = {}): Promise<Communicator[]> {
    const w = await initLocalWorld(size, { transport: this.transport, timeoutMs: 20_000, ...this.defaults, ...opts });
    this.worlds.push(...w);
    return w;
  }

  track<T extends Communicator | null>(c: T): T {
    if (c) this.subs.push(c);
    return c;
  }

  async closeAll(): Promise<void> {
    const subs = this.subs.splice(0);
    await Promise.allSettled(subs.map((c) => c.close()));
    const worlds = this.worlds.splice(0);
    await Promise.allSettled(worlds.map((c) => c.close()));
  }
}

/** The engine behind a communicator (tests only: it is a protected member). */
export const engineOf = (c: Communicator): Engine => (c as unknown as { engine: Engine }).engine;

export { prng } from '../support/prng.js';

/** murmur3's 32-bit finalizer: a bijection on u32. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A seed naming one message: (sender, receiver, index) → u32. */
export const messageSeed = (src: number, dst: number, k: number): number => fmix32(fmix32(src * 0x10001 + 0x51) ^ fmix32(dst * 0x1003 + 0x77) ^ fmix32(k + 0x9e37));

/**
 * Fill `bytes` with a pattern unique per (seed, position): 32-bit word j is a bijection of
 * seed + j, so no two words of one message are equal and different messages differ.
 */
export function fillPattern(bytes: Uint8Array, seed: number): Uint8Array {
  const words = bytes.byteOffset % 4 === 0 ? Math.floor(bytes.length / 4) : 0;
  if (words) {
    const w = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
    for (let j = 0; j < words; j++) w[j] = fmix32((seed + j) >>> 0);
  }
  for (let j = words * 4; j < bytes.length; j++) bytes[j] = fmix32((seed + j + 0x1234567) >>> 0) & 0xff;
  return bytes;
}

export const bytesOf = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** Expected bytes for a message, without keeping them around. */
export function pattern(length: number, seed: number): Uint8Array {
  return fillPattern(new Uint8Array(length), seed);
}

/** Compare bytes natively; on mismatch name the first differing offset (no huge diffs). */
export function sameBytes(actual: ArrayBufferView, expected: ArrayBufferView, label: string): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.length === e.length && a.equals(e)) return;
  let i = 0;
  while (i < Math.min(a.length, e.length) && a[i] === e[i]) i++;
  expect.fail(`${label}: ${a.length} bytes vs expected ${e.length}; first difference at byte ${i} (got ${a[i]}, expected ${e[i]})`);
}

export type TypedCtor = { new (length: number): TypedArray; readonly BYTES_PER_ELEMENT: number; readonly name: string };

export function makeArray(ctor: TypedCtor, count: number, seed: number): TypedArray {
  const a = new ctor(count);
  fillPattern(bytesOf(a), seed);
  return a;
}

/** Resolves to the TcclError `promise` rejects with; fails if it resolves or throws something else. */
export async function rejection(promise: PromiseLike<unknown>): Promise<TcclError> {
  const outcome = await Promise.resolve(promise).then(
    (value) => ({ resolved: value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.resolved)}`);
  if (!isTcclError(outcome.error)) throw outcome.error;
  return outcome.error;
}

/** The TcclError `fn` throws synchronously. */
export function thrown(fn: () => unknown): TcclError {
  try {
    fn();
  } catch (e) {
    if (!isTcclError(e)) throw e;
    return e;
  }
  throw new Error('expected a synchronous throw');
}

/**
 * Wait for a condition by yielding to the event loop (setImmediate), not by sleeping:
 * fails after `limitMs` so a broken library shows up as a failure, not a hang.
 */
export async function until(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
