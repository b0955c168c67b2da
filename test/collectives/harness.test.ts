/** The harness must catch the bugs it exists for. */
import { describe, expect, it } from 'vitest';
import { runRanks } from './harness.js';

describe('harness', () => {
  it('delivers in posting order per pair with out-of-order completions', async () => {
    const { results } = await runRanks(2, async (p2p, r) => {
      if (r === 0) {
        await Promise.all([1, 2, 3].map((v) => p2p.send(1, Uint8Array.of(v))));
        return [];
      }
      const bufs = [new Uint8Array(1), new Uint8Array(1), new Uint8Array(1)];
      await Promise.all(bufs.map((b) => p2p.recv(0, b)));
      return bufs.map((b) => b[0]);
    }, { seed: 3 });
    expect(results[1]).toEqual([1, 2, 3]);
  });

  it('reports a deadlock (send awaited before the receive its peer needs, rendezvous)', async () => {
    await expect(runRanks(2, async (p2p, r) => {
      await p2p.send(1 - r, new Uint8Array(4));
      await p2p.recv(1 - r, new Uint8Array(4));
    })).rejects.toThrow(/deadlock: 0>1: 1 send/);
  });

  it('the same pattern passes in eager mode', async () => {
    await runRanks(2, async (p2p, r) => {
      await p2p.send(1 - r, new Uint8Array(4));
      await p2p.recv(1 - r, new Uint8Array(4));
    }, { mode: 'eager' });
  });

  it('reports length mismatches, unmatched operations and self-sends', async () => {
    await expect(runRanks(2, async (p2p, r) => {
      if (r === 0) await p2p.send(1, new Uint8Array(4));
      else await p2p.recv(0, new Uint8Array(5));
    })).rejects.toThrow(/sent 4 bytes, receive posted for 5/);
    await expect(runRanks(2, async (p2p, r) => {
      if (r === 0) void p2p.send(1, new Uint8Array(4)).catch(() => {});
    }, { mode: 'eager' })).rejects.toThrow(/unmatched operations after the run: 0>1: 1 send/);
    await expect(runRanks(2, async (p2p) => { await p2p.send(p2p.rank, new Uint8Array(1)); })).rejects.toThrow(/itself/);
  });

  it('rendezvous reads the send buffer at delivery: reusing it early corrupts the message', async () => {
    const { results } = await runRanks(2, async (p2p, r) => {
      if (r === 0) {
        const buf = Uint8Array.of(7);
        const sent = p2p.send(1, buf);
        buf[0] = 9; // bug under test: overwritten before the send completed
        await sent;
        return 0;
      }
      const b = new Uint8Array(1);
      await p2p.recv(0, b);
      return b[0];
    });
    expect(results[1]).toBe(9);
  });
});
