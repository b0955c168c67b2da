import { describe, expect, it } from 'vitest';
import { barrier } from '../../src/collectives/index.js';
import { runRanks } from './harness.js';

describe('barrier (dissemination)', () => {
  for (const size of [1, 2, 3, 4, 5, 7, 8, 9]) {
    it(`n=${size}: nobody leaves before everybody arrived; ceil(log2 n) zero-byte rounds`, async () => {
      for (const mode of ['rendezvous', 'eager'] as const) {
        const arrived = new Array<boolean>(size).fill(false);
        const { stats } = await runRanks(size, async (p2p, r) => {
          // Stagger arrivals: rank r idles r·3 event-loop turns first.
          for (let i = 0; i < r * 3; i++) await new Promise((res) => setImmediate(res));
          arrived[r] = true;
          await barrier(p2p);
          expect(arrived.every(Boolean)).toBe(true);
        }, { mode, seed: size });
        const rounds = size === 1 ? 0 : Math.ceil(Math.log2(size));
        expect(stats.messages).toEqual(new Array(size).fill(rounds));
        expect(stats.bytes).toEqual(new Array(size).fill(0));
      }
    });
  }
});
