/**
 * Behaviour every Store must share, run against MemoryStore, FileStore and WsStore.
 * "Fences" (a round trip on the same handle) prove a parked call reached the store before
 * the test moves on, so nothing depends on sleeps.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTcclError, type TcclError } from '../../src/errors.js';
import { StoreTimeoutError } from '../../src/rendezvous/memory-store.js';
import type { Store } from '../../src/rendezvous/store.js';

export interface StoreHarness {
  /** Another handle on the same underlying store (a new client, a new FileStore on the same dir). */
  open(): Promise<Store>;
  /** Closes every handle opened and whatever backs them. */
  teardown(): Promise<void>;
}

export interface BehaviourOptions {
  /** Concurrent add() calls per handle, over four handles. */
  addsPerHandle?: number;
}

export const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Resolves to the rejection of `promise`, failing the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<TcclError> {
  const outcome = await promise.then(
    (value) => ({ resolved: value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a rejection, got ${String(outcome.resolved)}`);
  if (!isTcclError(outcome.error)) throw outcome.error;
  return outcome.error;
}

/** Tracks whether `promise` has settled, without leaving a rejection unhandled. */
function track<T>(promise: Promise<T>) {
  const state = { settled: false, promise };
  promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}

export function storeBehaviour(name: string, createHarness: () => Promise<StoreHarness>, opts: BehaviourOptions = {}): void {
  const addsPerHandle = opts.addsPerHandle ?? 25;

  describe(`${name}: Store behaviour`, () => {
    let harness: StoreHarness;
    let a: Store;
    let b: Store;

    beforeEach(async () => {
      harness = await createHarness();
      [a, b] = [await harness.open(), await harness.open()];
    });
    afterEach(() => harness.teardown());

    it('round-trips bytes and strings, later sets overwrite', async () => {
      const binary = new Uint8Array([0, 1, 2, 255, 0]);
      await a.set('bin', binary);
      binary[0] = 9; // the store kept its own copy
      expect(await b.get('bin')).toEqual(new Uint8Array([0, 1, 2, 255, 0]));

      await a.set('str', 'héllo');
      expect(text(await b.get('str'))).toBe('héllo');
      await b.set('str', 'again');
      expect(text(await a.get('str'))).toBe('again');

      await a.set('empty', new Uint8Array());
      expect((await b.get('empty')).byteLength).toBe(0);
    });

    it('get waits for a key set later', async () => {
      const pending = track(a.get('late', 10_000));
      await a.set('fence', '1');
      expect(pending.settled).toBe(false);
      await b.set('late', 'value');
      expect(text(await pending.promise)).toBe('value');
    });

    it('wait covers keys set before and after it starts', async () => {
      await b.set('w/1', 'x');
      await b.set('w/2', 'x');
      const pending = track(a.wait(['w/1', 'w/2', 'w/3', 'w/4'], 10_000));
      await a.set('fence', '1');
      await b.set('w/3', 'x');
      await a.set('fence', '2');
      expect(pending.settled).toBe(false);
      await b.set('w/4', 'x');
      await pending.promise;
      await a.wait([], 0);
    });

    it('wakes 16 concurrent waiters on one key', async () => {
      // Half get, half wait, spread over both handles.
      const waiters = Array.from({ length: 16 }, (_, i) => {
        const store = i % 4 < 2 ? a : b;
        return i % 2 === 0 ? store.get('shared', 10_000).then(text) : store.wait(['shared'], 10_000).then(() => 'woke');
      });
      await a.set('fence', '1');
      await b.set('fence', '2');
      await a.set('shared', 'go');
      const results = await Promise.all(waiters);
      expect(results.filter((r) => r === 'go')).toHaveLength(8);
      expect(results.filter((r) => r === 'woke')).toHaveLength(8);
    });

    it(`add from ${4 * addsPerHandle} concurrent callers yields exactly that many`, async () => {
      const handles = [a, b, await harness.open(), await harness.open()];
      const adds = handles.flatMap((store) => Array.from({ length: addsPerHandle }, () => store.add('counter', 1)));
      const results = await Promise.all(adds);
      const total = 4 * addsPerHandle;
      expect(results.sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(text(await b.get('counter'))).toBe(String(total));
    });

    it('add starts from zero, accepts negative deltas and rejects non-counters', async () => {
      expect(await a.add('n', -5)).toBe(-5);
      expect(await b.add('n', 12)).toBe(7);
      await a.set('n2', '40');
      expect(await b.add('n2', 2)).toBe(42);

      await a.set('word', 'not a number');
      const notCounter = await rejection(b.add('word', 1));
      expect(notCounter.code).toBe('TCCL_ERR_INVALID_ARGUMENT');
      expect(notCounter.message).toContain('"word"');
      expect((await rejection(a.add('n', 1.5))).code).toBe('TCCL_ERR_INVALID_ARGUMENT');
    });

    it('times out with TCCL_ERR_TIMEOUT naming the missing keys', async () => {
      const getError = await rejection(a.get('absent-key', 30));
      expect(getError.code).toBe('TCCL_ERR_TIMEOUT');
      expect(getError.message).toContain('"absent-key"');

      await b.set('present', 'x');
      const waitError = await rejection(a.wait(['present', 'gone-1', 'gone-2'], 30));
      expect(waitError.code).toBe('TCCL_ERR_TIMEOUT');
      expect(waitError).toBeInstanceOf(StoreTimeoutError);
      expect((waitError as StoreTimeoutError).missingKeys).toEqual(['gone-1', 'gone-2']);
      expect(waitError.message).toContain('gone-1');
      expect(waitError.message).not.toContain('"present"');

      // A zero timeout checks once instead of waiting.
      expect((await rejection(a.get('absent-key', 0))).code).toBe('TCCL_ERR_TIMEOUT');
      expect(text(await a.get('present', 0))).toBe('x');
      expect((await rejection(a.get('present', -1))).code).toBe('TCCL_ERR_INVALID_ARGUMENT');
    });

    it('delete removes a key and reports whether it existed', async () => {
      await a.set('doomed', 'x');
      expect(await b.delete('doomed')).toBe(true);
      expect(await b.delete('doomed')).toBe(false);
      expect((await rejection(a.get('doomed', 0))).code).toBe('TCCL_ERR_TIMEOUT');
      await a.set('doomed', 'back');
      expect(text(await b.get('doomed'))).toBe('back');
    });

    it('close fails pending waits and later calls with TCCL_ERR_CLOSED', async () => {
      const pending = rejection(a.wait(['never'], 10_000));
      await a.set('fence', '1');
      await a.close();
      const error = await pending;
      expect(error.code).toBe('TCCL_ERR_CLOSED');
      expect((await rejection(a.get('fence'))).code).toBe('TCCL_ERR_CLOSED');
      await a.close(); // idempotent
    });
  });
}
