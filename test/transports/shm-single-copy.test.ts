// The single-copy path of process ranks (TCCL_SHM_SINGLE_COPY_BYTES=N): payloads of N bytes
// or more are pulled straight from the sender's memory (process_vm_readv) instead of crossing
// the ring; smaller ones, and all of them with 0 (the default), use the ring. Ranks share this process here, which the
// kernel treats exactly like two processes of one user.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initLocalWorld, type Communicator } from '../../src/index.js';
import { engineOf, sameBytes } from './helpers.js';

let open: Communicator[] = [];
// Off by default (slower than the ring on the VM this was built on): on for these tests.
beforeEach(() => { process.env.TCCL_SHM_SINGLE_COPY_BYTES = String(256 << 10); });
afterEach(async () => {
  await Promise.allSettled(open.map((c) => c.close()));
  open = [];
  delete process.env.TCCL_SHM_SINGLE_COPY_BYTES;
  delete process.env.TCCL_SHM_PULL_WINDOW;
});

/** Descriptors rank `from` has written towards `to` (each one is a single-copy send). */
const singleCopies = (c: Communicator, to: number): number =>
  (engineOf(c).transport as unknown as { links: ({ bulkWritten: number } | null)[] }).links[to]!.bulkWritten;

const data = (n: number, seed: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
};

describe('shm single-copy path', () => {
  it('large payloads are pulled, into posted receives and as unexpected messages, intact and in order', async () => {
    const w = (open = await initLocalWorld(2, { transport: 'shm', timeoutMs: 10_000 }));
    const big = [data(1 << 20, 1), data(3 << 20, 2), data(1 << 20, 3)];
    const posted = new Uint8Array(1 << 20);
    const first = w[1].irecv(posted, 0, { tag: 1 });
    const sends = big.map((b, k) => w[0].isend(b, 1, { tag: 1 + k }));
    // A small message between large ones still takes the ring, in its place in the order.
    const small = w[0].isend(data(100, 9), 1, { tag: 1 });
    await first;
    sameBytes(posted, big[0], 'posted');
    const rest = [new Uint8Array(3 << 20), new Uint8Array(1 << 20)];
    await Promise.all(rest.map((b, k) => w[1].recv(b, 0, { tag: 2 + k })));
    sameBytes(rest[0], big[1], 'rest[0]');
    sameBytes(rest[1], big[2], 'rest[1]');
    const got = new Uint8Array(100);
    await w[1].recv(got, 0, { tag: 1 });
    sameBytes(got, data(100, 9), 'got');
    await Promise.all([...sends, small]);
    expect(singleCopies(w[0], 1)).toBe(3);
  });

  it('a send completes only once its payload was pulled: the buffer can be reused right after', async () => {
    const w = (open = await initLocalWorld(2, { transport: 'shm', timeoutMs: 10_000 }));
    const buf = data(2 << 20, 5);
    const expected = buf.slice();
    await w[0].send(buf, 1, { tag: 7 }); // no receive posted: pulled into an unexpected buffer
    buf.fill(0);
    const got = new Uint8Array(2 << 20);
    await w[1].recv(got, 0, { tag: 7 });
    sameBytes(got, expected, 'got');
  });

  it('a sender offers at most TCCL_SHM_PULL_WINDOW bytes of payload before waiting for pulls', async () => {
    process.env.TCCL_SHM_PULL_WINDOW = String(1 << 20);
    const w = (open = await initLocalWorld(2, { transport: 'shm', timeoutMs: 10_000 }));
    const link = (engineOf(w[0]).transport as unknown as { links: { pullBytes: number }[] }).links[1];
    const sends = Array.from({ length: 8 }, (_, k) => w[0].isend(data(512 << 10, k), 1, { tag: k }));
    let done = false;
    void Promise.all(sends).then(() => { done = true; });
    let peak = 0;
    // Sample the window on every event-loop turn until the receiver has pulled everything.
    while (!done) {
      peak = Math.max(peak, link.pullBytes);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(1 << 20);
    for (let k = 0; k < 8; k++) {
      const got = new Uint8Array(512 << 10);
      await w[1].recv(got, 0, { tag: k });
      sameBytes(got, data(512 << 10, k), `message ${k}`);
    }
    delete process.env.TCCL_SHM_PULL_WINDOW;
  });

  it('TCCL_SHM_SINGLE_COPY_BYTES=0 keeps every payload on the ring', async () => {
    process.env.TCCL_SHM_SINGLE_COPY_BYTES = '0';
    const w = (open = await initLocalWorld(2, { transport: 'shm', timeoutMs: 10_000 }));
    const got = new Uint8Array(2 << 20);
    await Promise.all([w[0].send(data(2 << 20, 4), 1, { tag: 1 }), w[1].recv(got, 0, { tag: 1 })]);
    sameBytes(got, data(2 << 20, 4), 'got');
    expect(singleCopies(w[0], 1)).toBe(0);
  });

  it('collectives over the single-copy path give the same result as over the ring', async () => {
    const w = (open = await initLocalWorld(3, { transport: 'shm', timeoutMs: 10_000 }));
    const n = (3 << 20) + 5;
    const bufs = w.map((_, r) => Float32Array.from({ length: n }, (_, i) => (i % 251) + r));
    // A message algorithm: the default over shm (algorithm 'shm') sends no messages at all.
    await Promise.all(w.map((c, r) => c.allreduce(bufs[r], { algorithm: 'ring' })));
    for (const b of bufs) for (let i = 0; i < n; i += 1009) expect(b[i]).toBe(3 * (i % 251) + 3);
    expect(singleCopies(w[0], 1) + singleCopies(w[0], 2)).toBeGreaterThan(0);
  });
});
