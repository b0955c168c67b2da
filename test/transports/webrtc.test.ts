// WebRTC-specific behaviour (the shared conformance suite runs in conformance.test.ts):
// what a handshake that cannot complete reports, and ICE server configuration.
import { afterEach, describe, expect, it } from 'vitest';
import { init, isTcclError, MemoryStore, type Communicator } from '../../src/index.js';
import { WebRtcTransport } from '../../transports/webrtc/index.js';
import { parseIceServers } from '../../transports/webrtc/native.js';
import { rejection } from './helpers.js';

/** A real store that loses every ICE candidate: descriptions still travel, connectivity never comes. */
class CandidateLosingStore extends MemoryStore {
  override async set(key: string, value: Uint8Array | string): Promise<void> {
    if (/\/webrtc\/pair\/.*\/cand\//.test(key)) return;
    return super.set(key, value);
  }
}

describe('webrtc handshake failures', () => {
  const open: Communicator[] = [];
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((c) => c.close()));
  });

  it('ICE that never connects fails the send with TCCL_ERR_TIMEOUT naming both ranks and the states reached', async () => {
    const store = new CandidateLosingStore();
    const comms = await Promise.all([0, 1].map((rank) => init({
      rank, size: 2, store, timeoutMs: 20_000, jobId: 'ice-fail',
      transport: (setup) => new WebRtcTransport({ ...setup, host: '127.0.0.1', iceTimeoutMs: 1500, preconnect: false }),
    })));
    open.push(...comms);
    const err = await rejection(comms[0].send(new Uint8Array(8), 1, { tag: 1 }));
    expect(err.code, err.message).toBe('TCCL_ERR_TIMEOUT');
    expect(err.message).toMatch(/webrtc link between rank 0 and rank 1 did not open within 1500 ms/);
    expect(err.message).toMatch(/ICE state '\w+', peer connection '\w+', gathering '\w+', signalling '[\w-]+'/);
    // The link stays failed: a later send reports the same error instead of hanging.
    expect((await rejection(comms[0].send(new Uint8Array(8), 1, { tag: 2 }))).code).toBe('TCCL_ERR_TIMEOUT');
  }, 30_000);
});

describe('ICE server configuration', () => {
  it('TCCL_ICE_SERVERS takes stun:/turn: URLs separated by commas or spaces', () => {
    expect(parseIceServers(undefined)).toEqual([]);
    expect(parseIceServers('stun:stun.example.org:3478, turn:u:p@turn.example.org:3478')).toEqual(['stun:stun.example.org:3478', 'turn:u:p@turn.example.org:3478']);
  });

  it('anything else is TCCL_ERR_INVALID_ARGUMENT naming the entry', () => {
    let caught: unknown;
    try {
      parseIceServers('stun:ok.example.org http://bad.example.org');
    } catch (e) {
      caught = e;
    }
    expect(isTcclError(caught, 'TCCL_ERR_INVALID_ARGUMENT')).toBe(true);
    expect(String((caught as Error).message)).toContain("'http://bad.example.org'");
  });
});
