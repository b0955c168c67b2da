// allgatherv accepts a dst longer than the counts add up to (MPI's recvbuf may be larger):
// every algorithm fills its start and leaves the rest alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initLocalWorld, type Communicator } from '../../src/index.js';

describe('allgatherv into a longer dst', () => {
  const worlds: Record<string, Communicator[]> = {};
  beforeAll(async () => {
    worlds.memory = await initLocalWorld(3, { transport: 'memory', timeoutMs: 10_000 });
    worlds.threads = await initLocalWorld(3, { transport: 'threads', timeoutMs: 10_000 });
  });
  afterAll(async () => {
    for (const comms of Object.values(worlds)) await Promise.all(comms.map((c) => c.close()));
  });

  for (const [transport, algorithms] of [['memory', ['ring', 'rd']], ['threads', ['ring', 'rd', 'shm']]] as const) {
    for (const algorithm of algorithms) {
      it(`${transport}, ${algorithm}`, async () => {
        const counts = [2, 0, 3];
        const got = await Promise.all(worlds[transport].map((c) => {
          const src = Int32Array.from({ length: counts[c.rank] }, (_, i) => 100 * c.rank + i);
          return c.allgatherv(src, new Int32Array(8).fill(-1), counts, { algorithm });
        }));
        for (const dst of got) expect(Array.from(dst)).toEqual([0, 1, 200, 201, 202, -1, -1, -1]);
      });
    }
  }
});
