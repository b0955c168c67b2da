// The worker-thread kernel pool: results bitwise equal to the inline kernel; communication
// (real TCP sockets, driven by this thread's event loop) keeps completing while a long matmul
// runs on the pool; errors are coded; close fails what is queued.
import { afterAll, describe, expect, it } from 'vitest';
import { KernelPool } from '../../src/kernels/pool/kernel-pool.js';
import { matmul } from '../../src/kernels/matmul.js';
import { initLocalWorld } from '../../src/comm/init.js';
import { isTcclError } from '../../src/errors.js';
import { randomArray } from '../parallel/tape64.js';

describe('KernelPool', () => {
  const pool = new KernelPool({ threads: 2 });
  afterAll(() => pool.close());

  it('matmul on the pool is bitwise the inline matmul (every transpose, accumulate)', async () => {
    const cases: [number, number, number, boolean, boolean][] = [[7, 9, 13, false, false], [33, 20, 17, true, false], [16, 40, 24, false, true], [5, 3, 8, true, true]];
    await Promise.all(cases.map(async ([m, k, n, transA, transB]) => {
      const a = randomArray(m * k, m + k);
      const b = randomArray(k * n, k + n);
      expect(await pool.matmul(a, b, m, k, n, undefined, { transA, transB })).toEqual(matmul(a, b, m, k, n, undefined, { transA, transB }));
      const base = randomArray(m * n, 99);
      const got = await pool.matmul(a, b, m, k, n, Float32Array.from(base), { transA, transB, accumulate: true });
      expect(got).toEqual(matmul(a, b, m, k, n, Float32Array.from(base), { transA, transB, accumulate: true }));
    }));
  });

  it('allreduces over TCP complete while a long matmul runs on the pool', async () => {
    const comms = await initLocalWorld(2, { transport: 'tcp', timeoutMs: 60_000, connect: 'eager' });
    try {
      const n = 1024; // 2.1 GFLOP: tens of ms or more, against ~1 ms per 256 KiB allreduce
      const a = randomArray(n * n, 1);
      const b = randomArray(n * n, 2);
      let kernelDone = false;
      const kernel = pool.matmul(a, b, n, n, n).finally(() => {
        kernelDone = true;
      });
      let completedWhileKernelRan = 0;
      const bufs = comms.map((_, r) => new Float32Array(65536).fill(r + 1));
      while (!kernelDone) {
        await Promise.all(comms.map((c, r) => c.allreduce(bufs[r])));
        if (!kernelDone) completedWhileKernelRan++;
      }
      const c = await kernel;
      expect(c[5 * n + 7]).toBe(matmul(a, b, n, n, n)[5 * n + 7]);
      // With the kernel inline on this thread the count would be 0 by construction.
      expect(completedWhileKernelRan).toBeGreaterThan(0);
    } finally {
      await Promise.all(comms.map((c) => c.close()));
    }
  });

  it('bad arguments and a closed pool give coded errors', async () => {
    await expect(pool.matmul(new Float32Array(3), new Float32Array(4), 2, 2, 2)).rejects.toThrow(/TCCL_ERR_INVALID_ARGUMENT: matmul: A has 3 elements \(needs 4\)/);
    expect(() => new KernelPool({ threads: 0 })).toThrow(/threads must be a positive integer/);
    const other = new KernelPool({ threads: 1 });
    const running = other.matmul(randomArray(512 * 512, 3), randomArray(512 * 512, 4), 512, 512, 512);
    const queued = other.matmul(new Float32Array(4), new Float32Array(4), 2, 2, 2);
    const settled = Promise.allSettled([running, queued]);
    await other.close();
    for (const r of await settled) {
      expect(r.status).toBe('rejected');
      expect(isTcclError((r as PromiseRejectedResult).reason, 'TCCL_ERR_CLOSED')).toBe(true);
    }
    await expect(other.matmul(new Float32Array(4), new Float32Array(4), 2, 2, 2)).rejects.toThrow(/kernel pool is closed/);
  });
});
