/**
 * Several collectives in flight on one communicator, and misuse: local argument errors leave
 * the communicator usable; a count mismatch between ranks rejects instead of hanging.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initLocalWorld } from '../../src/comm/init.js';
import type { Communicator } from '../../src/comm/communicator.js';
import { isTcclError } from '../../src/errors.js';
import { concat, expectSameBits, movementData, onAll, ref, rankInput } from './common.js';
import type { TypedArray } from '../../src/dtype.js';

const codeOf = async (fn: () => unknown): Promise<string> => {
  try {
    await fn();
    return 'NO_ERROR';
  } catch (e) {
    return isTcclError(e) ? e.code : `NOT_TCCL(${String(e)})`;
  }
};

for (const transport of ['memory', 'tcp'] as const) {
  for (const size of [3, 4]) {
    describe(`${transport} n=${size}`, () => {
      let comms: Communicator[] = [];
      beforeAll(async () => { comms = await initLocalWorld(size, { transport, timeoutMs: 30_000 }); });
      afterAll(async () => { await Promise.all(comms.map((c) => c.close())); });

      it('iallreduce, iallgather, ibroadcast, ialltoall in flight together, awaited in reverse order', async () => {
        for (const count of [1, 1000, 70_000]) {
          const arExp = ref('float32', 'sum', size, count);
          const agExp = concat('int32', comms.map((_, r) => movementData('int32', r, count)));
          const root = size - 1;
          const bExp = movementData('float64', root, count, 1);
          const a2aSrc = comms.map((_, r) => movementData('int64', r, count * size, 2));
          await onAll(comms, async (c, r) => {
            const ar = rankInput('float32', 'sum', r, count);
            const ag = new Int32Array(count * size);
            const b = r === root ? movementData('float64', root, count, 1) : new Float64Array(count);
            const a2a = new BigInt64Array(count * size);
            const reqs = [
              c.iallreduce(ar, { op: 'sum' }),
              c.iallgather(movementData('int32', r, count), ag),
              c.ibroadcast(b, { root }),
              c.ialltoall(a2aSrc[r], a2a),
            ];
            for (let i = reqs.length - 1; i >= 0; i--) await reqs[i];
            const a2aExp = concat('int64', comms.map((_, i) => a2aSrc[i].subarray(r * count, (r + 1) * count) as TypedArray));
            expectSameBits(ar, arExp, `r${r} iallreduce`);
            expectSameBits(ag, agExp, `r${r} iallgather`);
            expectSameBits(b, bExp, `r${r} ibroadcast`);
            expectSameBits(a2a, a2aExp, `r${r} ialltoall`);
          });
        }
      });

      it('local misuse raises TCCL_ERR_INVALID_ARGUMENT and the communicator keeps working', async () => {
        const codes = await onAll(comms, async (c) => ({
          allgatherLength: await codeOf(() => c.allgather(new Float32Array(3), new Float32Array(3 * c.size + 1))),
          reduceScatterLength: await codeOf(() => c.reduceScatter(new Float32Array(5), new Float32Array(2))),
          outLength: await codeOf(() => c.allreduce(new Float32Array(4), { out: new Float32Array(5) })),
          alltoallIndivisible: await codeOf(() => c.alltoall(new Int32Array(c.size + 1), new Int32Array(c.size + 1))),
          dstType: await codeOf(() => c.allgather(new Float32Array(1), new Float64Array(c.size) as unknown as Float32Array)),
          broadcastRoot: await codeOf(() => c.broadcast(new Float32Array(4), { root: c.size })),
          reduceRoot: await codeOf(() => c.reduce(new Float32Array(4), { root: -1 })),
          gatherRoot: await codeOf(() => c.gather(new Float32Array(1), new Float32Array(c.size), { root: c.size + 3 })),
          bandOnFloat: await codeOf(() => c.allreduce(new Float32Array(4), { op: 'band' })),
          bxorOnHalf: await codeOf(() => c.allreduce(new Uint16Array(4), { op: 'bxor', dtype: 'bfloat16' })),
          uint16NoDtype: await codeOf(() => c.allreduce(new Uint16Array(4))),
          notTypedArray: await codeOf(() => c.allreduce([1, 2, 3] as unknown as Float32Array)),
          unknownAlgorithm: await codeOf(() => c.allreduce(new Float32Array(4), { algorithm: 'bogus' })),
        }));
        for (const c of codes) for (const [k, v] of Object.entries(c)) expect(`${k}:${v}`).toBe(`${k}:TCCL_ERR_INVALID_ARGUMENT`);
        // Still in step: every rank's next allreduce is correct.
        const exp = ref('int32', 'sum', size, 7);
        await onAll(comms, async (c, r) => {
          expect(await c.allreduce(rankInput('int32', 'sum', r, 7))).toEqual(exp);
        });
      });
    });
  }

  it(`${transport}: a rank with a different allreduce count rejects (desync or timeout) instead of hanging`, async () => {
    const comms = await initLocalWorld(3, { transport, timeoutMs: 30_000 });
    try {
      for (const [algorithm, bigCount] of [['rd', 7], ['ring', 7], ['rabenseifner', 7], ['auto', 100_000]] as const) {
        const results = await Promise.allSettled(comms.map((c) =>
          c.allreduce(new Float32Array(c.rank === 1 ? bigCount + 5 : bigCount), { timeoutMs: 1_000, algorithm })));
        const codes = results.map((r) => (r.status === 'rejected' ? (isTcclError(r.reason) ? r.reason.code : 'NOT_TCCL') : 'FULFILLED'));
        if (process.env.GRID_VERBOSE) console.log(`desync ${transport} ${algorithm}: ${codes.join(',')}`);
        // At least the odd rank must fail, and nobody may hang (allSettled returned) or crash untyped.
        expect(codes.some((c) => c === 'TCCL_ERR_DESYNC' || c === 'TCCL_ERR_TIMEOUT'), `${algorithm}: ${codes.join(',')}`).toBe(true);
        for (const c of codes) expect(['TCCL_ERR_DESYNC', 'TCCL_ERR_TIMEOUT', 'FULFILLED']).toContain(c);
        expect(codes[1], `${algorithm}: ${codes.join(',')}`).not.toBe('FULFILLED');
        // Each pass on a fresh world: a desynced world need not be reusable.
        await Promise.all(comms.map((c) => c.close()));
        comms.splice(0, comms.length, ...(await initLocalWorld(3, { transport, timeoutMs: 30_000 })));
      }
    } finally {
      await Promise.all(comms.map((c) => c.close()));
    }
  });
}
