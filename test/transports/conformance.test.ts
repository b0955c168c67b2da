// The transport conformance suite, once per transport.
import { transportConformance } from './conformance.js';
import { describe, expect, it } from 'vitest';

transportConformance('memory');
transportConformance('tcp');
transportConformance('tcp', { connect: 'eager' });

// Both ranks send first, so both dial: each then sends on its own link. A Goodbye arriving
// on one link must not cut off data still in flight on the other.
describe('tcp: simultaneous dial then close', () => {
  it('the last message before close is delivered although the other link closes first', async () => {
    const { initLocalWorld } = await import('../../src/index.js');
    for (let round = 0; round < 20; round++) {
      const [a, b] = await initLocalWorld(2, { transport: 'tcp', timeoutMs: 10_000 });
      const x = new Uint8Array(8), y = new Uint8Array(8);
      await Promise.all([a.sendrecv(x, 1, y, 1, { tag: 3 }), b.sendrecv(x.slice(), 0, y.slice(), 0, { tag: 3 })]);
      const last = new Uint8Array(1 << 20).fill(7);
      const got = new Uint8Array(1 << 20);
      const recv = a.irecv(got, 1, { tag: 9 });
      await b.send(last, 0, { tag: 9 });
      await b.close();
      await recv;
      expect(got[got.length - 1]).toBe(7);
      await a.close();
    }
  });
});

// Shared memory between ranks of this process (each rank maps its peers' /dev/shm segments,
// doorbells over abstract unix sockets): the same rings and code paths as separate processes.
transportConformance('shm');
// WebRTC links start in the background at init (preconnect), so lazy and eager set up the same
// links: one run keeps the default test time down (~40 s). connectAll runs in the multi-process
// kill test; the on-demand inbox path in test/transports/webrtc.test.ts.
transportConformance('webrtc');

// Thread ranks' rings (SharedArrayBuffer, Atomics.waitAsync doorbells), all ranks on this thread.
transportConformance('threads');
