// Data-parallel gradient buckets: averaged gradients on every rank, buckets started by
// markReady while "backward" is still running (before finish), index order kept whatever the
// ready order, fp16/bf16 compression within 16-bit precision, parameter broadcast, misuse.
import { describe, expect, it } from 'vitest';
import { DataParallel } from '../../src/parallel/data-parallel.js';
import { makeParam, type Param } from '../../src/parallel/param.js';
import { randomArray, expectClose } from './tape64.js';
import { onEveryRank } from './harness.js';

const SHAPES = [300, 17, 1024, 5, 700, 64];

function paramsFor(rank: number): Param[] {
  return SHAPES.map((n, i) => {
    const p = makeParam(`p${i}`, randomArray(n, 100 + i));
    p.grad.set(randomArray(n, 1000 * (rank + 1) + i));
    return p;
  });
}

function expectedAverage(size: number): Float64Array[] {
  return SHAPES.map((n, i) => {
    const avg = new Float64Array(n);
    for (let r = 0; r < size; r++) randomArray(n, 1000 * (r + 1) + i).forEach((v, j) => (avg[j] += v / size));
    return avg;
  });
}

describe('DataParallel gradient buckets', () => {
  for (const P of [1, 2, 4]) {
    it(`P=${P}: gradients averaged over ranks, buckets started during backward`, async () => {
      const want = expectedAverage(P);
      await onEveryRank(P, async (g) => {
        const params = paramsFor(g.rank);
        // 2 KiB buckets: several buckets, parameters never split.
        const dp = new DataParallel(g.comm, params, { bucketBytes: 2048 });
        expect(dp.stats.buckets).toBeGreaterThan(2);
        // Backward produces the last parameters first; mark them as a trainer would, layer by layer.
        for (let i = params.length - 1; i >= 1; i--) dp.markReady(params[i]);
        const early = dp.stats.startedDuringBackward;
        expect(early).toBeGreaterThan(0);
        expect(early).toBeLessThan(dp.stats.buckets);
        dp.markReady(params[0]);
        expect(dp.stats.startedDuringBackward).toBe(dp.stats.buckets);
        await dp.finish();
        params.forEach((p, i) => expectClose(p.grad, want[i], `grad ${p.name} rank ${g.rank}`, 1e-6, 1e-7));
        // A second step reuses the buckets.
        for (const p of params) p.grad.fill(g.rank + 1);
        dp.markReady(...params);
        await dp.finish();
        for (const p of params) expect(p.grad.every((v) => Math.abs(v - (P + 1) / 2) < 1e-6)).toBe(true);
      });
    });
  }

  it('ready order differs between ranks: buckets still start in index order, results agree', async () => {
    const want = expectedAverage(3);
    await onEveryRank(3, async (g) => {
      const params = paramsFor(g.rank);
      const dp = new DataParallel(g.comm, params, { bucketBytes: 2048 });
      const order = g.rank === 1 ? [...params] : [...params].reverse();
      for (const p of order) dp.markReady(p);
      await dp.finish();
      params.forEach((p, i) => expectClose(p.grad, want[i], `grad ${p.name} rank ${g.rank}`, 1e-6, 1e-7));
    });
  });

  for (const compression of ['fp16', 'bf16'] as const) {
    it(`${compression} compression: averages within 16-bit precision`, async () => {
      const want = expectedAverage(4);
      // Every partial sum is rounded to 16 bits, so the error scales with the summands (|g|/4 ≤ 0.25
      // here), not with the result: 3 roundings of up to half an ulp at 0.5 (2^-11 fp16, 2^-8 bf16).
      const [rtol, atol] = compression === 'fp16' ? [2e-3, 2e-3] : [1.6e-2, 6e-3];
      await onEveryRank(4, async (g) => {
        const params = paramsFor(g.rank);
        const dp = new DataParallel(g.comm, params, { compression });
        await dp.finish(); // nothing marked: finish starts every bucket itself
        expect(dp.stats.startedDuringBackward).toBe(0);
        params.forEach((p, i) => expectClose(p.grad, want[i], `grad ${p.name}`, rtol, atol));
      });
    });
  }

  it('broadcastParameters makes every replica equal to the root', async () => {
    await onEveryRank(3, async (g) => {
      const params = SHAPES.map((n, i) => makeParam(`p${i}`, randomArray(n, 10 * g.rank + i)));
      await new DataParallel(g.comm, params).broadcastParameters(0);
      params.forEach((p, i) => expect(p.data).toEqual(randomArray(SHAPES[i], i)));
    });
  });

  it('misuse: unknown parameter, marked twice, duplicate parameter, bad options', async () => {
    await onEveryRank(1, async (g) => {
      const params = paramsFor(0);
      const dp = new DataParallel(g.comm, params);
      expect(() => dp.markReady(makeParam('stranger', new Float32Array(3)))).toThrow(/TCCL_ERR_INVALID_ARGUMENT: data parallel: parameter stranger is not managed here/);
      dp.markReady(params[2]);
      expect(() => dp.markReady(params[2])).toThrow(/parameter p2 marked ready twice in one step/);
      expect(() => new DataParallel(g.comm, [params[0], params[0]])).toThrow(/listed twice/);
      expect(() => new DataParallel(g.comm, params, { compression: 'int8' as never })).toThrow(/unknown compression 'int8'/);
      expect(() => new DataParallel(g.comm, params, { bucketBytes: 0 })).toThrow(/bucketBytes must be positive/);
    });
  });
});
