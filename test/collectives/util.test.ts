import { describe, expect, it } from 'vitest';
import { evenBlocks, pow2Floor, xrecv, xsend } from '../../src/collectives/util.js';
import { runRanks } from './harness.js';

describe('collective utilities', () => {
  it('evenBlocks gives the first count % parts blocks one extra element', () => {
    expect(evenBlocks(10, 4)).toEqual({ counts: [3, 3, 2, 2], displs: [0, 3, 6, 8, 10] });
    expect(evenBlocks(2, 4)).toEqual({ counts: [1, 1, 0, 0], displs: [0, 1, 2, 2, 2] });
    expect(evenBlocks(0, 3).counts).toEqual([0, 0, 0]);
    expect([1, 2, 3, 5, 8, 9, 1000].map(pow2Floor)).toEqual([1, 2, 2, 4, 8, 8, 512]);
  });

  it('xsend/xrecv cut a logical message into ≤ max pieces on both sides and skip empty ones', async () => {
    const data = Uint8Array.from({ length: 1000 }, (_, i) => i * 7);
    const got = new Uint8Array(1000);
    const { stats } = await runRanks(2, async (p2p, r) => {
      if (r === 0) { await xsend(p2p, 1, data, 300); await xsend(p2p, 1, new Uint8Array(0), 300); }
      else { await xrecv(p2p, 0, got, 300); await xrecv(p2p, 0, new Uint8Array(0), 300); }
    });
    expect(got).toEqual(data);
    expect(stats.messages[0]).toBe(4); // 300 + 300 + 300 + 100, nothing for the empty one
  });
});
