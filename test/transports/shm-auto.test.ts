// 'auto' routing: shm between ranks that report the same host, tcp between the others.
// Two "hosts" are simulated in this process by giving ranks different host ids; every link
// is real (shared-memory rings within a host, loopback TCP across).
import { afterEach, describe, expect, it } from 'vitest';
import { init, MemoryStore, type Communicator } from '../../src/index.js';
import { AutoTransport } from '../../transports/auto/index.js';

let open: Communicator[] = [];
afterEach(async () => {
  await Promise.allSettled(open.map((c) => c.close()));
  open = [];
});

async function world(hosts: string[]): Promise<{ comms: Communicator[]; transports: AutoTransport[] }> {
  const store = new MemoryStore();
  const jobId = `auto-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const transports: AutoTransport[] = [];
  const comms = await Promise.all(hosts.map((hostId, rank) => init({
    rank, size: hosts.length, store, jobId, timeoutMs: 20_000, host: '127.0.0.1',
    transport: (setup) => {
      const t = new AutoTransport({ ...setup, spinMicros: 0, hostId });
      transports[rank] = t;
      return t;
    },
  })));
  open = comms;
  return { comms, transports };
}

describe('auto transport', () => {
  it('all ranks on one host: every peer goes over shm', async () => {
    const { comms, transports } = await world(['h', 'h', 'h']);
    expect(transports.map((t, r) => [0, 1, 2].filter((p) => p !== r).map((p) => t.transportFor(p)))).toEqual([['shm', 'shm'], ['shm', 'shm'], ['shm', 'shm']]);
    const bufs = comms.map((_, r) => new Float64Array(1000).fill(r + 1));
    await Promise.all(comms.map((c, r) => c.allreduce(bufs[r])));
    for (const b of bufs) expect(b.every((x) => x === 6)).toBe(true);
  });

  it('two hosts of two ranks: shm within a host, tcp across, collectives right over the mix', async () => {
    const { comms, transports } = await world(['A', 'A', 'B', 'B']);
    expect(transports.map((t) => [0, 1, 2, 3].map((p) => t.transportFor(p)))).toEqual([
      ['none', 'shm', 'tcp', 'tcp'],
      ['shm', 'none', 'tcp', 'tcp'],
      ['tcp', 'tcp', 'none', 'shm'],
      ['tcp', 'tcp', 'shm', 'none'],
    ]);
    const n = (1 << 20) + 3;
    const bufs = comms.map((_, r) => Float32Array.from({ length: n }, (_, i) => (i % 100) + r));
    await Promise.all(comms.map((c, r) => c.allreduce(bufs[r])));
    for (const b of bufs) for (let i = 0; i < n; i += 997) expect(b[i]).toBe(4 * (i % 100) + 6);
    const gathered = comms.map(() => new Int32Array(8));
    await Promise.all(comms.map((c, r) => c.allgather(Int32Array.of(r, 10 * r), gathered[r])));
    for (const g of gathered) expect([...g]).toEqual([0, 0, 1, 10, 2, 20, 3, 30]);
  });

  it('a rank leaving is reported by the transport that carried its link', async () => {
    const { comms } = await world(['A', 'A', 'B']);
    await comms[1].close();
    await comms[2].close();
    const viaShm = await comms[0].recv(new Uint8Array(1), 1, { tag: 1 }).catch((e: { code: string }) => e.code);
    const viaTcp = await comms[0].recv(new Uint8Array(1), 2, { tag: 1 }).catch((e: { code: string }) => e.code);
    expect([viaShm, viaTcp]).toEqual(['TCCL_ERR_PEER_LOST', 'TCCL_ERR_PEER_LOST']);
  });
});
