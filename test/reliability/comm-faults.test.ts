// Failure handling inside one process: collective deadlines and their message, the DETAIL
// desync check, abort propagation, heartbeat silence and a malformed frame on an
// authenticated link (only that link closes).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { JobAuth, NONCE_BYTES } from '../../src/auth.js';
import { initLocalWorld, type Communicator } from '../../src/index.js';
import { setDebugLevel, setLogSink } from '../../src/diag/log.js';
import { isTcclError } from '../../src/errors.js';
import { MemoryStore } from '../../src/rendezvous/memory-store.js';
import type { TransportSink } from '../../src/transport.js';
import { encodeHeader, FrameKind, HEADER_BYTES } from '../../src/wire/frame.js';
import { TcpTransport } from '../../transports/tcp/index.js';

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  setDebugLevel(process.env.TCCL_DEBUG ?? 'WARN');
});

function captureLog(): string[] {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  cleanup.push(() => void setLogSink(prev));
  return lines;
}

async function world(n: number, timeoutMs: number): Promise<Communicator[]> {
  const comms = await initLocalWorld(n, { transport: 'memory', timeoutMs });
  cleanup.push(() => Promise.allSettled(comms.map((c) => c.close())));
  return comms;
}

const settle = (p: PromiseLike<unknown>) => Promise.resolve(p).then(() => null, (e: unknown) => e);

describe('collective deadline', () => {
  it('a rank that never calls: the others time out naming it, the op, seq and bytes, and print the flight recorder', async () => {
    const log = captureLog();
    const comms = await world(3, 400);
    await Promise.all(comms.map((c) => c.allreduce(new Float32Array(64))));
    const errs = await Promise.all(comms.slice(0, 2).map((c) => settle(c.allreduce(new Float32Array(64)))));
    for (const e of errs) {
      expect(isTcclError(e, 'TCCL_ERR_TIMEOUT')).toBe(true);
      expect((e as Error).message).toMatch(/allreduce did not complete within 400 ms: not heard from rank \d; \d+ bytes received and \d+ bytes sent so far .*op allreduce, seq 2/);
    }
    // Whoever waits directly on rank 2 names it (the other may be waiting on that one).
    expect(errs.some((e) => (e as { peer: number[] }).peer.includes(2))).toBe(true);
    const text = log.join('');
    expect(text).toMatch(/tccl ERROR rank 0: TCCL_ERR_TIMEOUT/);
    expect(text).toMatch(/flight recorder, last 2 operations of rank 0 \(oldest first\):\n {2}ctx 0 seq 1 allreduce allreduce\(count=64, dtype=float32, op=sum\) algo=\w+ done/);
    expect(text).toMatch(/ctx 0 seq 2 allreduce .* failed/);
  });

  it('per-call timeoutMs overrides the communicator default', async () => {
    captureLog();
    const comms = await world(2, 60_000);
    const e = await settle(comms[0].barrier({ timeoutMs: 150 }));
    expect(isTcclError(e, 'TCCL_ERR_TIMEOUT')).toBe(true);
    expect((e as Error).message).toContain('barrier did not complete within 150 ms');
  });
});

describe('TCCL_DEBUG=DETAIL call check', () => {
  it('another count on one rank: every rank fails with DESYNC naming both calls', async () => {
    setDebugLevel('DETAIL');
    const comms = await world(3, 5000);
    const errs = await Promise.all(comms.map((c) => settle(c.allreduce(new Int32Array(c.rank === 1 ? 5 : 10)))));
    for (const e of errs) {
      expect(isTcclError(e, 'TCCL_ERR_DESYNC')).toBe(true);
      expect((e as Error).message).toContain('ranks 0,2 called allreduce(count=10, dtype=int32, op=sum); rank 1 called allreduce(count=5, dtype=int32, op=sum)');
    }
  });

  it('another root or op is a disagreement too; agreeing calls pass and give correct results', async () => {
    setDebugLevel('DETAIL');
    const comms = await world(2, 5000);
    const roots = await Promise.all(comms.map((c) => settle(c.broadcast(new Float64Array(4), { root: c.rank }))));
    for (const e of roots) expect((e as Error).message).toMatch(/rank 0 called broadcast\(count=4, dtype=float64, root=0\); rank 1 called broadcast\(count=4, dtype=float64, root=1\)/);
    const ops = await Promise.all(comms.map((c) => settle(c.allreduce(new Float64Array(4), { op: c.rank ? 'max' : 'sum' }))));
    for (const e of ops) expect(isTcclError(e, 'TCCL_ERR_DESYNC')).toBe(true);
    const sums = await Promise.all(comms.map((c) => c.allreduce(new Float64Array([c.rank + 1, 10]))));
    for (const s of sums) expect([...s]).toEqual([3, 20]);
  });
});

describe('abort', () => {
  it('comm.abort on one rank fails pending operations everywhere with ABORTED naming it', async () => {
    const comms = await world(3, 5000);
    const pending = [0, 2].map((r) => settle(comms[r].allreduce(new Float32Array(16))));
    // Abort once both wait in the collective (their receives are posted).
    const posted = (c: Communicator) => (c as unknown as { engine: { pending(ctx: number): { posted: number } } }).engine.pending(c.collectiveContext).posted;
    await expect.poll(() => posted(comms[0]) > 0 && posted(comms[2]) > 0).toBe(true);
    comms[1].abort('test says stop');
    for (const e of await Promise.all(pending)) {
      expect(isTcclError(e, 'TCCL_ERR_ABORTED')).toBe(true);
      expect((e as Error).message).toContain('rank 1 aborted: test says stop');
    }
  });
});

describe('tcp liveness and malformed frames on an authenticated link', () => {
  const auth = new JobAuth('job', 'k');
  const recorder = (): TransportSink & { lost: { peer: number; code: string; message: string }[]; got: number } => {
    const s = {
      lost: [] as { peer: number; code: string; message: string }[],
      got: 0,
      beginFrame: () => undefined,
      endFrame: () => void s.got++,
      peerLost: (peer: number, e: { code: string; message: string }) => void s.lost.push({ peer, code: e.code, message: e.message }),
    };
    return s;
  };

  /** A raw socket that completes the dialer handshake as `rank` (it knows the secret), then does what the test says. */
  async function rawPeer(port: number, rank: number, target: number): Promise<net.Socket> {
    const s = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => s.once('connect', r));
    const mine = auth.nonce();
    const job = new TextEncoder().encode('job');
    const hello = new Uint8Array(NONCE_BYTES + job.length);
    hello.set(mine);
    hello.set(job, NONCE_BYTES);
    s.write(encodeHeader({ kind: FrameKind.Hello, context: 0, source: rank, tag: target, seq: 0, aux: 1, length: hello.length }));
    s.write(hello);
    const reply = await new Promise<Buffer>((resolve) => {
      let buf = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= HEADER_BYTES + 64) {
          s.off('data', onData);
          resolve(buf);
        }
      };
      s.on('data', onData);
    });
    const theirs = reply.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
    const proof = auth.proof('tcp-dial', rank, target, theirs, mine);
    s.write(encodeHeader({ kind: FrameKind.Hello, context: 0, source: rank, tag: target, seq: 0, aux: 3, length: proof.length }));
    s.write(proof);
    s.on('error', () => undefined);
    return s;
  }

  async function transports(n: number, heartbeatMs: number) {
    const store = new MemoryStore();
    const ends = Array.from({ length: n }, (_, rank) => new TcpTransport({ rank, size: 3, store, prefix: 'p', timeoutMs: 5000, host: '127.0.0.1', jobId: 'job', auth, heartbeatMs }));
    const sinks = ends.map(() => recorder());
    await Promise.all(ends.map((t, r) => t.start(sinks[r])));
    cleanup.push(() => Promise.all(ends.map((t) => t.close())));
    const port = (JSON.parse(new TextDecoder().decode(await store.get('p/tcp/addr/0'))) as { port: number }).port;
    return { ends, sinks, port };
  }
  const data = { kind: FrameKind.Data, context: 0, source: 1, tag: 1, seq: 1, aux: 0, length: 4 };

  it('a peer that authenticates and then falls silent is lost with PEER_LOST, by heartbeat', async () => {
    const { sinks, port } = await transports(1, 200);
    const silent = await rawPeer(port, 2, 0);
    cleanup.push(() => void silent.destroy());
    await expect.poll(() => sinks[0].lost, { timeout: 5000 }).toHaveLength(1);
    expect(sinks[0].lost[0]).toMatchObject({ peer: 2, code: 'TCCL_ERR_PEER_LOST' });
    expect(sinks[0].lost[0].message).toMatch(/no data or heartbeat from rank 2 for \d+ ms \(heartbeat interval 200 ms\)/);
  });

  it('idle authenticated links stay up: heartbeats keep them alive', async () => {
    const { ends, sinks } = await transports(2, 100);
    await ends[1].send(0, data, new Uint8Array(4));
    await expect.poll(() => sinks[0].got).toBe(1);
    // Idle for many intervals, then the link still carries data.
    await new Promise((r) => setTimeout(r, 800));
    expect(sinks[0].lost).toEqual([]);
    await ends[1].send(0, data, new Uint8Array(4));
    await expect.poll(() => sinks[0].got).toBe(2);
  });

  it('a malformed frame on an authenticated link closes that link with PROTOCOL; other links carry on', async () => {
    const { ends, sinks, port } = await transports(2, 0);
    await ends[1].send(0, data, new Uint8Array(4));
    await expect.poll(() => sinks[0].got).toBe(1);
    const bad = await rawPeer(port, 2, 0);
    cleanup.push(() => void bad.destroy());
    const header = Buffer.from(encodeHeader({ ...data, source: 2 }));
    header[0] ^= 0xff; // wrong magic
    bad.write(header);
    await expect.poll(() => sinks[0].lost).toHaveLength(1);
    expect(sinks[0].lost[0]).toMatchObject({ peer: 2, code: 'TCCL_ERR_PROTOCOL' });
    expect(sinks[0].lost[0].message).toMatch(/bad magic/);
    await ends[1].send(0, data, new Uint8Array(4));
    await expect.poll(() => sinks[0].got).toBe(2);
  });
});
