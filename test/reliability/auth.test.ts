// HMAC challenge-response (src/auth.ts) and its use on the ws store and on tcp links, in process.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { JobAuth, PROOF_BYTES } from '../../src/auth.js';
import { setLogSink } from '../../src/diag/log.js';
import { isTcclError } from '../../src/errors.js';
import { MemoryStore } from '../../src/rendezvous/memory-store.js';
import { connectStore } from '../../src/rendezvous/ws-client.js';
import { StoreServer } from '../../src/rendezvous/ws-server.js';
import { FrameKind } from '../../src/wire/frame.js';
import { TcpTransport } from '../../transports/tcp/index.js';
import type { TransportSink } from '../../src/transport.js';

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function captureLog(): string[] {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  cleanup.push(() => void setLogSink(prev));
  return lines;
}

describe('JobAuth', () => {
  const a = new JobAuth('job', 's3cret');
  const n1 = a.nonce();
  const n2 = a.nonce();

  it('a proof verifies with the same secret, role, job and parts only', () => {
    const proof = a.proof('tcp-dial', 1, 2, n1, n2);
    expect(proof.length).toBe(PROOF_BYTES);
    expect(a.verify(proof, 'tcp-dial', 1, 2, n1, n2)).toBe(true);
    expect(new JobAuth('job', 's3cret').verify(proof, 'tcp-dial', 1, 2, n1, n2)).toBe(true);
    expect(new JobAuth('job', 'other').verify(proof, 'tcp-dial', 1, 2, n1, n2)).toBe(false);
    expect(new JobAuth('job2', 's3cret').verify(proof, 'tcp-dial', 1, 2, n1, n2)).toBe(false);
    expect(a.verify(proof, 'tcp-accept', 1, 2, n1, n2)).toBe(false); // no reflection across roles
    expect(a.verify(proof, 'tcp-dial', 2, 1, n1, n2)).toBe(false);
    expect(a.verify(proof, 'tcp-dial', 1, 2, n2, n1)).toBe(false);
    expect(a.verify(proof.subarray(1), 'tcp-dial', 1, 2, n1, n2)).toBe(false);
    expect(a.verify(undefined, 'tcp-dial', 1, 2, n1, n2)).toBe(false);
  });

  it('parts are length-prefixed: moving a boundary changes the proof', () => {
    expect(a.proof('r', 'ab', 'c')).not.toEqual(a.proof('r', 'a', 'bc'));
  });

  it('without a secret it is keyed by the job id alone, and says so', () => {
    expect(new JobAuth('job').hasSecret).toBe(false);
    expect(a.hasSecret).toBe(true);
    expect(JobAuth.fromEnv('job', { TCCL_JOB_SECRET: 's3cret' }).verify(a.proof('x'), 'x')).toBe(true);
    expect(new JobAuth('job').verify(a.proof('x'), 'x')).toBe(false);
  });
});

describe('store authentication', () => {
  async function server(auth?: JobAuth) {
    const s = await StoreServer.listen({ auth });
    cleanup.push(() => s.close());
    return s;
  }

  it('a client with the job secret is served; the server proved itself too', async () => {
    const s = await server(new JobAuth('job', 'k'));
    const c = await connectStore(s.url, { jobAuth: new JobAuth('job', 'k') });
    cleanup.push(() => c.close());
    await c.set('a', 'b');
    expect(new TextDecoder().decode(await c.get('a'))).toBe('b');
  });

  it('wrong job and missing secret are refused with 1008 and logged; a wrong secret fails the proof', async () => {
    const log = captureLog();
    const s = await server(new JobAuth('job', 'k'));
    const refusal = async (p: Promise<unknown>) => p.then(() => 'ACCEPTED', (e) => (isTcclError(e) ? `${e.code} ${e.message}` : String(e)));
    expect(await refusal(connectStore(s.url, { jobAuth: new JobAuth('other', 'k') }))).toMatch(/TCCL_ERR_STORE .*1008 \(wrong job 'other'\)/);
    expect(await refusal(connectStore(s.url, { jobId: 'job' }))).toMatch(/TCCL_ERR_STORE .*hello without a nonce/);
    expect(await refusal(connectStore(s.url, { jobAuth: new JobAuth('job', 'wrong') }))).toMatch(/TCCL_ERR_PROTOCOL .*does not hold this job's secret/);
    expect(log.join('')).toMatch(/store refused a client: wrong job 'other'/);
    expect(log.join('')).toMatch(/store refused a client: hello without a nonce/);
  });

  it('a client holding a secret refuses a server that cannot prove it (an open server)', async () => {
    const s = await server();
    await expect(connectStore(s.url, { jobAuth: new JobAuth('job', 'k') })).rejects.toMatchObject({ code: 'TCCL_ERR_PROTOCOL' });
  });
});

describe('tcp link authentication', () => {
  const sink = (): TransportSink & { got: Uint8Array[]; lost: string[] } => {
    const got: Uint8Array[] = [];
    const lost: string[] = [];
    return {
      got, lost,
      beginFrame: () => undefined,
      endFrame: (_p, _h, payload) => void got.push(payload!.slice()),
      peerLost: (_p, e) => void lost.push(e.code),
    };
  };

  async function pair(secrets: [string, string], jobs: [string, string] = ['job', 'job']) {
    const store = new MemoryStore();
    const ends = [0, 1].map((rank) => new TcpTransport({ rank, size: 2, store, prefix: 'p', timeoutMs: 5000, host: '127.0.0.1', jobId: jobs[rank], auth: new JobAuth(jobs[rank], secrets[rank]), heartbeatMs: 0 }));
    const sinks = [sink(), sink()];
    await Promise.all(ends.map((t, r) => t.start(sinks[r])));
    cleanup.push(() => Promise.all(ends.map((t) => t.close())));
    return { ends, sinks, store };
  }
  const data = (n: number) => ({ kind: FrameKind.Data, context: 0, source: 0, tag: 1, seq: 1, aux: 0, length: n });

  it('same job and secret: frames flow', async () => {
    const { ends, sinks } = await pair(['k', 'k']);
    await ends[0].send(1, data(3), new Uint8Array([1, 2, 3]));
    await expect.poll(() => sinks[1].got.length).toBe(1);
    expect([...sinks[1].got[0]]).toEqual([1, 2, 3]);
  });

  it('wrong secret: the dial fails with a coded error, nothing is delivered, the acceptor logs the refusal', async () => {
    const log = captureLog();
    const { ends, sinks } = await pair(['wrong', 'k']);
    const err = await ends[0].send(1, data(1), new Uint8Array(1)).then(() => null, (e) => e);
    expect(err?.code).toBe('TCCL_ERR_PROTOCOL');
    expect(err?.message).toMatch(/rank 1 at 127\.0\.0\.1:\d+ failed authentication/);
    expect(sinks[1].got).toHaveLength(0);
    expect(sinks[1].lost).toHaveLength(0); // an intruder is not a lost peer
    await expect.poll(() => log.join('')).toMatch(/rank 1: refused connection from 127\.0\.0\.1:\d+: the dialer \(claiming rank 0\) left during authentication/);
  });

  it('an intruder that skips the handshake is refused before any allocation, and the listener keeps working', async () => {
    const log = captureLog();
    const { ends, sinks, store } = await pair(['k', 'k']);
    const { port } = JSON.parse(new TextDecoder().decode(await store.get('p/tcp/addr/1'))) as { port: number };
    const closed = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        // A Data frame claiming 2^40 bytes: refused on the header alone.
        const h = Buffer.alloc(32);
        h.writeUInt16LE(0x4354, 0); h[2] = 1; h[3] = FrameKind.Data; h.writeUInt32LE(256, 28);
        s.write(h);
      });
      s.on('error', () => undefined);
      s.resume();
      s.on('close', () => resolve(true));
    });
    expect(closed).toBe(true);
    await expect.poll(() => log.join('')).toMatch(/refused connection from 127\.0\.0\.1:\d+: malformed frame: payload length 1099511627776 exceeds/);
    await ends[0].send(1, data(2), new Uint8Array([7, 8]));
    await expect.poll(() => sinks[1].got.length).toBe(1);
  });
});
