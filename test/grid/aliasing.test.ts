/**
 * Calls whose send and receive buffers share memory (MPI_IN_PLACE-style layouts, a ring
 * shift with sendrecv(buf, buf), alltoall(buf, buf)) give the same results as with separate
 * buffers: the Communicator sends from a copy when they overlap. Before, alltoall(buf, buf)
 * on 3+ ranks silently returned wrong blocks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initLocalWorld } from '../../src/comm/init.js';
import type { Communicator } from '../../src/comm/communicator.js';
import { onAll } from './common.js';

const block = 5;
const val = (from: number, to: number, i: number) => from * 1000 + to * 10 + i;

for (const transport of ['memory', 'tcp'] as const) {
  for (const size of [3, 4]) {
    describe(`aliased buffers over ${transport}, n=${size}`, () => {
      let comms: Communicator[] = [];
      beforeAll(async () => { comms = await initLocalWorld(size, { transport, timeoutMs: 20_000 }); });
      afterAll(async () => { await Promise.all(comms.map((c) => c.close())); });

      it('alltoall(buf, buf) and alltoallv(buf, …, buf, …), every algorithm', async () => {
        for (const algorithm of ['pairwise', 'bruck']) {
          const out = await onAll(comms, (c, r) => {
            const buf = new Int32Array(block * size);
            for (let to = 0; to < size; to++) for (let i = 0; i < block; i++) buf[to * block + i] = val(r, to, i);
            return c.alltoall(buf, buf, { algorithm });
          });
          out.forEach((buf, r) => {
            for (let from = 0; from < size; from++) for (let i = 0; i < block; i++) expect(buf[from * block + i], `${algorithm} rank ${r} block ${from}`).toBe(val(from, r, i));
          });
        }
        const counts = Array(size).fill(block);
        const v = await onAll(comms, (c, r) => {
          const buf = new Int32Array(block * size);
          for (let to = 0; to < size; to++) for (let i = 0; i < block; i++) buf[to * block + i] = val(r, to, i);
          return c.alltoallv(buf, counts, buf, counts);
        });
        v.forEach((buf, r) => { for (let from = 0; from < size; from++) expect(buf[from * block]).toBe(val(from, r, 0)); });
      });

      it('allgather, reduceScatter, gather and scatter with one buffer inside the other', async () => {
        const ag = await onAll(comms, (c, r) => {
          const dst = new Int32Array(block * size);
          const mine = dst.subarray(r * block, (r + 1) * block);
          for (let i = 0; i < block; i++) mine[i] = val(r, 0, i);
          return c.allgather(mine, dst);
        });
        ag.forEach((dst) => { for (let k = 0; k < size; k++) for (let i = 0; i < block; i++) expect(dst[k * block + i]).toBe(val(k, 0, i)); });

        const rs = await onAll(comms, (c, r) => {
          const src = new Int32Array(block * size);
          for (let j = 0; j < src.length; j++) src[j] = (r + 1) * (j + 1);
          return c.reduceScatter(src, src.subarray(r * block, (r + 1) * block));
        });
        const total = (size * (size + 1)) / 2;
        rs.forEach((dst, r) => { for (let i = 0; i < block; i++) expect(dst[i]).toBe(total * (r * block + i + 1)); });

        const root = size - 1;
        const gdst = new Int32Array(block * size);
        await onAll(comms, (c, r) => {
          const src = r === root ? gdst.subarray(r * block, (r + 1) * block) : new Int32Array(block);
          for (let i = 0; i < block; i++) src[i] = val(r, 1, i);
          return c.gather(src, r === root ? gdst : undefined, { root });
        });
        for (let k = 0; k < size; k++) expect(gdst[k * block]).toBe(val(k, 1, 0));

        const ssrc = new Int32Array(block * size);
        for (let j = 0; j < ssrc.length; j++) ssrc[j] = 7 * j;
        const sc = await onAll(comms, (c, r) => c.scatter(r === 0 ? ssrc : undefined, r === 0 ? ssrc.subarray(block, 2 * block) : new Int32Array(block), { root: 0 }));
        sc.forEach((dst, r) => { for (let i = 0; i < block; i++) expect(dst[i]).toBe(7 * (r * block + i)); });
      });

      it('sendrecv(buf, buf) shifts a ring in place', async () => {
        const out = await onAll(comms, async (c, r) => {
          const buf = new Float64Array(1000).fill(r);
          await c.sendrecv(buf, (r + 1) % size, buf, (r - 1 + size) % size, { tag: 4 });
          return buf;
        });
        out.forEach((buf, r) => expect(buf.every((x) => x === (r - 1 + size) % size)).toBe(true));
      });
    });
  }
}
