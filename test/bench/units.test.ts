// tcclbench's pure parts: flags, nccl-tests' byte counts and busbw factors, exact data,
// the wrong-element count, injection, and the table format.
import { describe, expect, it } from 'vitest';
import { BenchUsageError, itersFor, parseBenchArgs, parseSize, sweepSizes, type BenchOptions } from '../../bench/tcclbench/args.js';
import { countWrong, elementHash, expectedReduction, fmix32, inputArray } from '../../bench/tcclbench/data.js';
import { corrupt, parseInjection } from '../../bench/tcclbench/inject.js';
import { bandwidth, busFactor, layoutFor } from '../../bench/tcclbench/layout.js';
import { formatTime, tableHeader, tableRow } from '../../bench/tcclbench/report.js';
import { bf16ToF32, f16ToF32 } from '../../src/kernels/half.js';
import type { DType } from '../../src/dtype.js';
import type { ReduceOpName } from '../../src/kernels/reduce.js';

const run = (argv: string[]): BenchOptions => {
  const p = parseBenchArgs(argv);
  if (p.kind !== 'run') throw new Error('expected a run');
  return p.options;
};

describe('flags', () => {
  it("takes nccl-tests' flags, values and defaults", () => {
    const o = run(['allreduce', '-b', '8', '-e', '128M', '-f', '2', '-n', '20', '-w', '5', '-c', '1', '-d', 'float32', '-o', 'sum', '-J', 'out.json']);
    expect(o).toMatchObject({ collective: 'allreduce', minBytes: 8, maxBytes: 128 << 20, stepFactor: 2, iters: 20, warmup: 5, check: 1, dtypes: ['float32'], ops: ['sum'], json: 'out.json', root: 0, average: 'max' });
    expect(run(['broadcast'])).toMatchObject({ minBytes: 32 << 20, maxBytes: 32 << 20, stepFactor: 1, stepBytes: 1 << 20, iters: 20, warmup: 5, check: 1 });
    expect(run(['reduce-scatter', '-t', 'shm', '-a', '1', '-dfloat', '-T', '2.5']).collective).toBe('reduce_scatter');
    expect(run(['reduce-scatter', '-t', 'shm', '-a', '1', '-dfloat', '-T', '2.5'])).toMatchObject({ transport: 'shm', average: 'avg', dtypes: ['float32'], timeoutMs: 2500 });
    expect(run(['allgather', '--minbytes=1K', '--op', 'all']).ops).toHaveLength(8);
    expect(run(['allgather', '-d', 'all']).dtypes).toHaveLength(8);
    expect(parseBenchArgs(['-h']).kind).toBe('help');
  });

  it('--jit-warmup: 0 unless given (nccl-tests semantics), any integer >= 0', () => {
    expect(run(['allreduce']).jitWarmup).toBe(0);
    expect(run(['allreduce', '--jit-warmup', '20000']).jitWarmup).toBe(20000);
    expect(run(['allreduce', '--jit-warmup=0']).jitWarmup).toBe(0);
  });

  it('barrier: one size-0 row whatever -b/-e/-d say (still checked)', () => {
    const o = run(['barrier', '-b', '8', '-e', '1M', '-f', '2', '-d', 'all']);
    expect(o).toMatchObject({ collective: 'barrier', minBytes: 0, maxBytes: 0, dtypes: ['float32'] });
    expect(sweepSizes(o)).toEqual([0]);
    expect(sweepSizes(run(['barrier']))).toEqual([0]);
    expect(() => parseBenchArgs(['barrier', '-d', 'float128'])).toThrow(/unknown datatype/);
    expect(() => parseBenchArgs(['barrier', '-b', '2M', '-e', '1M'])).toThrow(/smaller than -b/);
  });

  it('refuses what it cannot run, naming the flag', () => {
    const bad: [string[], RegExp][] = [
      [[], /missing the collective/],
      [['allreduce2'], /unknown collective/],
      [['allreduce', '-b', '1X'], /-b must be a size/],
      [['allreduce', '-b', '2M', '-e', '1M'], /smaller than -b/],
      [['allreduce', '-n', '0'], /-n must be >= 1/],
      [['allreduce', '-a', '4'], /-a must be 0/],
      [['allreduce', '-o', 'mean'], /unknown op/],
      [['allreduce', '-q', '1'], /unknown option/],
      [['allreduce', '-n'], /needs a value/],
      [['allreduce', 'allgather'], /unexpected argument/],
      [['allreduce', '--jit-warmup', '1x'], /--jit-warmup must be an integer >= 0, got "1x"/],
      [['allreduce', '--jit-warmup', '-1'], /--jit-warmup must be an integer >= 0, got "-1"/],
      [['allreduce', '--jit-warmup'], /--jit-warmup needs a value/],
    ];
    for (const [argv, msg] of bad) {
      const e = (() => { try { parseBenchArgs(argv); } catch (err) { return err; } return undefined; })();
      expect(e, argv.join(' ')).toBeInstanceOf(BenchUsageError);
      expect((e as BenchUsageError).code).toBe('TCCL_ERR_INVALID_ARGUMENT');
      expect((e as Error).message).toMatch(msg);
    }
  });

  it('sizes: binary units; sweeps by factor or by step', () => {
    expect([parseSize('8', 'x'), parseSize('64K', 'x'), parseSize('1.5M', 'x'), parseSize('1G', 'x')]).toEqual([8, 65536, 1572864, 1 << 30]);
    expect(sweepSizes({ minBytes: 8, maxBytes: 64, stepFactor: 2, stepBytes: 0 })).toEqual([8, 16, 32, 64]);
    expect(sweepSizes({ minBytes: 100, maxBytes: 350, stepFactor: 1, stepBytes: 100 })).toEqual([100, 200, 300]);
  });

  it('--iter-bytes trims iterations of large messages only, never below 3 timed and 1 warm-up', () => {
    const o = { ...run(['allreduce', '-n', '10', '-w', '3', '--iter-bytes', '256M']) };
    expect(o.iterBytes).toBe(256 << 20);
    expect(itersFor(8, o)).toEqual({ iters: 10, warmup: 3 });
    expect(itersFor(32 << 20, o)).toEqual({ iters: 8, warmup: 3 });
    expect(itersFor(64 << 20, o)).toEqual({ iters: 4, warmup: 3 });
    expect(itersFor(1 << 30, o)).toEqual({ iters: 3, warmup: 1 });
    expect(itersFor(1 << 30, { ...o, iterBytes: 0 })).toEqual({ iters: 10, warmup: 3 });
    expect(itersFor(1 << 30, { ...o, warmup: 0 })).toEqual({ iters: 3, warmup: 0 });
  });
});

describe("nccl-tests' accounting", () => {
  it('busbw factors (PERFORMANCE.md)', () => {
    expect(busFactor('allreduce', 4)).toBe(1.5);
    for (const c of ['reduce_scatter', 'allgather', 'alltoall'] as const) expect(busFactor(c, 4)).toBe(0.75);
    for (const c of ['broadcast', 'reduce', 'sendrecv'] as const) expect(busFactor(c, 4)).toBe(1);
    expect(busFactor('barrier', 4)).toBe(0);
  });

  it('counts and the size column as getCollByteCount', () => {
    // 1 KiB of float32 over 3 ranks: 256 elements, 85 per rank
    expect(layoutFor('allreduce', 1024, 4, 3)).toEqual({ sendCount: 256, recvCount: 256, paramCount: 256, sizeBytes: 1024, algBytes: 1024 });
    expect(layoutFor('reduce_scatter', 1024, 4, 3)).toEqual({ sendCount: 255, recvCount: 85, paramCount: 85, sizeBytes: 1020, algBytes: 1020 });
    expect(layoutFor('allgather', 1024, 4, 3)).toEqual({ sendCount: 85, recvCount: 255, paramCount: 85, sizeBytes: 1020, algBytes: 1020 });
    expect(layoutFor('alltoall', 1024, 4, 3)).toEqual({ sendCount: 255, recvCount: 255, paramCount: 85, sizeBytes: 1020, algBytes: 1020 });
    expect(layoutFor('sendrecv', 8, 4, 2)).toMatchObject({ paramCount: 2, sizeBytes: 8 });
    expect(layoutFor('barrier', 0, 4, 3)).toEqual({ sendCount: 0, recvCount: 0, paramCount: 0, sizeBytes: 0, algBytes: 0 });
    expect(bandwidth('barrier', layoutFor('barrier', 0, 4, 3), 3, 1e-6)).toEqual({ algbw: 0, busbw: 0 });
    const { algbw, busbw } = bandwidth('allreduce', layoutFor('allreduce', 1e6, 1, 4), 4, 1e-3);
    expect(algbw).toBeCloseTo(1, 12);
    expect(busbw).toBeCloseTo(1.5, 12);
  });
});

describe('verifiable data', () => {
  it('the hash is a bijection-based fmix32 (golden values shared with mpibench.c)', () => {
    expect(fmix32(0)).toBe(0);
    expect(fmix32(1)).toBe(0x514e28b7);
    expect(elementHash(1, 0, 0)).toBe(fmix32(0x9e3779b9));
    const seen = new Set<number>();
    for (let i = 0; i < 4096; i++) seen.add(elementHash(3, 1, i));
    expect(seen.size).toBe(4096);
  });

  it('every element of a rank differs from its neighbours and from other ranks', () => {
    const a = inputArray('float32', undefined, 4, 1, 0, 0, 1 << 16) as Float32Array;
    const b = inputArray('float32', undefined, 4, 1, 1, 0, 1 << 16) as Float32Array;
    let same = 0;
    for (let i = 1; i < a.length; i++) same += Number(a[i] === a[i - 1]) + Number(a[i] === b[i]);
    expect(same).toBeLessThan(4); // 2^25 values: collisions are rare, never systematic
  });

  const decode = (dtype: DType, x: number | bigint) => (dtype === 'float16' ? f16ToF32(Number(x)) : dtype === 'bfloat16' ? bf16ToF32(Number(x)) : x);
  it.each(['float32', 'float64', 'float16', 'bfloat16'] as const)('%s sums over 8 ranks are exact, so any combine order matches', (dtype) => {
    const n = 8;
    const count = 512;
    const want = expectedReduction(dtype, 'sum', n, 5, 100, count);
    const inputs = Array.from({ length: n }, (_, r) => inputArray(dtype, 'sum', n, 5, r, 100, count));
    for (let k = 0; k < count; k++) {
      let forward = 0;
      let backward = 0;
      for (let r = 0; r < n; r++) forward += Number(decode(dtype, inputs[r][k]));
      for (let r = n - 1; r >= 0; r--) backward += Number(decode(dtype, inputs[r][k]));
      expect(forward).toBe(backward);
      expect(Number(decode(dtype, want[k]))).toBe(forward);
    }
  });

  it.each([['int32', 'sum'], ['int8', 'prod'], ['uint8', 'max'], ['int64', 'bxor'], ['int32', 'avg'], ['float32', 'prod'], ['float64', 'min']] as [DType, ReduceOpName][])(
    '%s %s reference equals a naive fold', (dtype, op) => {
      const n = 3;
      const want = expectedReduction(dtype, op, n, 9, 0, 64);
      const ins = Array.from({ length: n }, (_, r) => inputArray(dtype, op, n, 9, r, 0, 64));
      for (let k = 0; k < 64; k++) {
        if (dtype === 'int64') {
          expect(want[k]).toBe((ins[0][k] as bigint) ^ (ins[1][k] as bigint) ^ (ins[2][k] as bigint));
          continue;
        }
        const v = ins.map((a) => Number(a[k]));
        const wrap = (x: number) => (dtype === 'int8' ? (x << 24) >> 24 : dtype === 'uint8' ? x & 0xff : dtype === 'int32' ? x | 0 : x);
        const fold = op === 'sum' ? wrap(v[0] + v[1] + v[2])
          : op === 'prod' ? (dtype === 'int8' ? wrap(wrap(v[0] * v[1]) * v[2]) : v[0] * v[1] * v[2])
            : op === 'max' ? Math.max(...v) : op === 'min' ? Math.min(...v) : Math.trunc(wrap(v[0] + v[1] + v[2]) / 3);
        expect(Number(want[k]), `element ${k}`).toBe(dtype === 'float32' ? Math.fround(fold) : fold);
      }
    });

  it('countWrong counts elements, not bytes; injection is caught', () => {
    const want = inputArray('float64', undefined, 2, 1, 0, 0, 100);
    const got = want.slice();
    expect(countWrong(got, want, 'float64')).toBe(0);
    expect(corrupt(parseInjection('swap')!, got)).toBe(2);
    expect(countWrong(got, want, 'float64')).toBe(2);
    const one = want.slice();
    corrupt(parseInjection('bump:1')!, one);
    expect(countWrong(one, want, 'float64')).toBe(1);
    expect(parseInjection('bump:3')).toEqual({ mode: 'bump', rank: 3 });
    expect(() => parseInjection('drop')).toThrow(/swap\[:rank\]/);
  });
});

describe('table', () => {
  it("formats like nccl-tests' reporter", () => {
    expect([formatTime(12.345), formatTime(123.45), formatTime(12345.6)]).toEqual(['  12.35', '  123.5', '  12346']);
    const p = { timeUs: 40.5, medianUs: 40, algbw: 0.0002, busbw: 0.0003, wrong: 0, iters: 20 };
    const row = tableRow({ size: 8, count: 2, type: 'float32', redop: 'sum', root: -1, outOfPlace: p, inPlace: { ...p, wrong: null } });
    expect(row.trim().split(/\s+/)).toEqual(['8', '2', 'float32', 'sum', '-1', '40.50', '0.00', '0.00', '0', '40.50', '0.00', '0.00', 'N/A']);
    // No in-place form (barrier): every in-place column N/A.
    const barrierRow = tableRow({ size: 0, count: 0, type: 'none', redop: 'none', root: -1, outOfPlace: { ...p, algbw: 0, busbw: 0, wrong: null }, inPlace: null });
    expect(barrierRow.trim().split(/\s+/)).toEqual(['0', '0', 'none', 'none', '-1', '40.50', '0.00', '0.00', 'N/A', 'N/A', 'N/A', 'N/A', 'N/A']);
    expect(tableHeader()[1]).toMatch(/size\s+count\s+type\s+redop\s+root\s+time\s+algbw\s+busbw\s+#wrong\s+time\s+algbw\s+busbw\s+#wrong/);
  });
});
