import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/rendezvous/memory-store.js';
import { rejection, storeBehaviour, text } from './store-behaviour.js';

storeBehaviour('MemoryStore', async () => {
  const store = new MemoryStore();
  return { open: async () => store, teardown: () => store.close() };
});

describe('MemoryStore', () => {
  it('hands out copies, so callers cannot change stored values', async () => {
    const store = new MemoryStore();
    await store.set('k', 'abc');
    (await store.get('k')).fill(0);
    expect(text(await store.get('k'))).toBe('abc');
    await store.close();
  });

  it('uses the constructor timeout when a call gives none', async () => {
    const store = new MemoryStore(20);
    const error = await rejection(store.get('missing'));
    expect(error.code).toBe('TCCL_ERR_TIMEOUT');
    expect(error.message).toContain('20 ms');
    await store.close();
  });

  it('drops a parked wait when its abort signal fires', async () => {
    const store = new MemoryStore();
    const disconnected = new AbortController();
    const pending = store.wait(['k'], 10_000, disconnected.signal);
    disconnected.abort();
    expect((await rejection(pending)).code).toBe('TCCL_ERR_CLOSED');
    // The aborted waiter is gone: setting the key later wakes nothing and throws nothing.
    await store.set('k', 'v');
    await store.close();
  });
});
