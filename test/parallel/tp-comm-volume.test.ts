// Communication volume of tensor parallelism: the group's counters show 2 allreduces of
// rows×H forward and 2 backward per transformer block, and the bytes each rank actually hands
// to its transport (counted under the communicator, on real TCP sockets) are
// 2(P−1)/P × the allreduced bytes — the ring allreduce's volume.
import { describe, expect, it } from 'vitest';
import { init } from '../../src/comm/init.js';
import { MemoryStore } from '../../src/rendezvous/memory-store.js';
import { TcpTransport } from '../../transports/tcp/index.js';
import type { Transport, TransportSink } from '../../src/transport.js';
import type { FrameHeader } from '../../src/wire/frame.js';
import type { TcclError } from '../../src/errors.js';
import { ParallelGroup } from '../../src/parallel/group.js';
import { ParallelTransformerBlock } from '../../src/parallel/transformer-block.js';
import { ParallelMLP } from '../../src/parallel/parallel-mlp.js';
import { randomArray } from './tape64.js';
import { onEveryRank } from './harness.js';

/** A transport that counts the payload bytes it is asked to send, then delegates. */
class CountingTransport implements Transport {
  sentBytes = 0;
  constructor(private readonly inner: Transport) {}
  get name() { return `counting(${this.inner.name})`; }
  get rank() { return this.inner.rank; }
  get size() { return this.inner.size; }
  start(sink: TransportSink) { return this.inner.start(sink); }
  connectAll(timeoutMs: number) { return this.inner.connectAll(timeoutMs); }
  send(peer: number, header: FrameHeader, payload: Uint8Array) {
    this.sentBytes += payload.byteLength;
    return this.inner.send(peer, header, payload);
  }
  pauseReceive(peer: number) { this.inner.pauseReceive(peer); }
  resumeReceive(peer: number) { this.inner.resumeReceive(peer); }
  queuedBytes(peer?: number) { return this.inner.queuedBytes(peer); }
  close() { return this.inner.close(); }
  abort(reason: TcclError) { this.inner.abort(reason); }
}

function blockWeights(H: number, F: number) {
  return {
    attn: { wq: randomArray(H * H, 60, 0.3), wk: randomArray(H * H, 61, 0.3), wv: randomArray(H * H, 62, 0.3), wo: randomArray(H * H, 63, 0.3) },
    mlp: { w1: randomArray(H * F, 64, 0.3), b1: randomArray(F, 65, 0.1), w2: randomArray(F * H, 66, 0.3), b2: randomArray(H, 67, 0.1) },
  };
}

describe('tensor-parallel communication volume', () => {
  const [batch, seq, H, F, heads] = [2, 8, 16, 32, 4];
  const rows = batch * seq;

  for (const P of [2, 4]) {
    it(`counters, P=${P}: per block forward 2 allreduces of T×H, backward 2, nothing else`, async () => {
      await onEveryRank(P, async (g) => {
        const w = blockWeights(H, F);
        const blocks = [0, 1].map((i) => new ParallelTransformerBlock(g, { hidden: H, heads, kvHeads: heads, ffn: F, name: `b${i}` }, w));
        let x = randomArray(rows * H, 68);
        for (const b of blocks) x = await b.forward(x, batch, seq);
        const layerBytes = rows * H * 4;
        expect(g.counters.get('allreduce', 'forward')).toMatchObject({ count: 2 * blocks.length, bytes: 2 * blocks.length * layerBytes });
        expect(g.counters.get('allreduce', 'backward').count).toBe(0);
        let dy = randomArray(rows * H, 69);
        for (const b of [...blocks].reverse()) dy = await b.backward(dy);
        expect(g.counters.get('allreduce', 'backward')).toMatchObject({ count: 2 * blocks.length, bytes: 2 * blocks.length * layerBytes });
        expect(g.counters.total().count).toBe(4 * blocks.length);
      });
    });
  }

  for (const P of [2, 4]) {
    it(`bytes sent per rank over TCP, P=${P}: 2(P−1)/P × the bytes of each ring allreduce`, async () => {
      const store = new MemoryStore();
      const jobId = `volume-${process.pid}-${P}`;
      const transports: CountingTransport[] = [];
      const comms = await Promise.all(Array.from({ length: P }, (_, rank) => init({
        rank, size: P, store, jobId, host: '127.0.0.1', timeoutMs: 20_000, connect: 'eager',
        transport: (setup) => {
          const t = new CountingTransport(new TcpTransport(setup));
          transports[rank] = t;
          return t;
        },
      })));
      try {
        const x = randomArray(rows * H, 70);
        const dy = randomArray(rows * H, 71);
        const w = blockWeights(H, F).mlp;
        const before = transports.map((t) => t.sentBytes);
        const groups = comms.map((c) => new ParallelGroup(c, { allreduceAlgorithm: 'ring' }));
        await Promise.all(groups.map(async (g) => {
          const mlp = ParallelMLP.fromFull(g, H, F, w);
          await mlp.forward(x, rows);
          await mlp.backward(Float32Array.from(dy));
        }));
        for (const [rank, g] of groups.entries()) {
          const reduced = g.counters.total();
          expect(reduced.count).toBe(2);
          expect(reduced.bytes).toBe(2 * rows * H * 4);
          const sent = transports[rank].sentBytes - before[rank];
          expect(sent).toBe((2 * (P - 1) / P) * reduced.bytes);
        }
      } finally {
        await Promise.all(comms.map((c) => c.close()));
      }
    });
  }
});
