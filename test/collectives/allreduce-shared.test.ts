/**
 * The shared-memory allreduce (src/collectives/allreduce-shared.ts) through the real
 * Communicator over in-process shm and thread worlds: the block partition, chunking through
 * small slots (4096 B: reduce-all only) and large ones (256 KiB: the reduce-scatter + copy-out
 * block path), every op for int32 and float64 against exact references, float32 bits alike on
 * every rank, in place / out of place / partly overlapping, several calls in flight, and the
 * number of steps (team.arrive calls) each call takes, which pins down which path ran.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SHARED_REDUCE_ALL_MAX_BYTES, sharedBlock } from '../../src/collectives/allreduce-shared.js';
import { initLocalWorld, isTcclError } from '../../src/index.js';
import { openSharedWorld, type SharedWorld } from '../support/shared-world.js';
import { prngUint32 } from '../support/prng.js';
import { engineOf } from '../transports/helpers.js';

type Op = 'sum' | 'avg' | 'min' | 'max' | 'prod';
const OPS: Op[] = ['sum', 'avg', 'min', 'max', 'prod'];

describe('sharedBlock', () => {
  it('splits [0, len) into n consecutive blocks, covering every element once, boundaries on 64-byte lines', () => {
    const lens = [0, 1, 2, 7, 8, 15, 16, 17, 63, 64, 65, 100, 1000, 1023, 1024, 1025, 4097, 16384, 16385, 65536, 100003];
    const sizes = [1, 2, 3, 4, 5, 7, 8, 9, 16, 64, 100];
    const wrong: string[] = []; // collected, not asserted one by one: ~10^4 blocks
    let checked = 0;
    for (const es of [1, 2, 4, 8]) {
      const unit = 64 / es;
      for (const len of lens) {
        for (const n of sizes) {
          const units = Math.ceil(len / unit);
          let next = 0;
          for (let r = 0; r < n; r++) {
            const [lo, hi] = sharedBlock(len, n, r, es);
            const where = `len=${len} n=${n} r=${r} es=${es}: [${lo}, ${hi})`;
            if (lo !== next) wrong.push(`${where} does not start where block ${r - 1} ended (${next})`);
            if (hi < lo || hi > len) wrong.push(`${where} is not a range within [0, ${len})`);
            // Every boundary inside the array falls on a cache line (the array's end need not).
            if (hi < len && (hi * es) % 64 !== 0) wrong.push(`${where} ends inside a cache line`);
            // Balanced: no block holds more than its share of whole lines.
            if (hi - lo > Math.ceil(units / n) * unit) wrong.push(`${where} holds more than ${Math.ceil(units / n)} lines`);
            next = hi;
            checked++;
          }
          if (next !== len) wrong.push(`len=${len} n=${n} es=${es}: blocks end at ${next}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBe(4 * lens.length * sizes.reduce((a, b) => a + b, 0));
  });

  it('n = 1 owns everything; more ranks than lines leave some blocks empty', () => {
    expect(sharedBlock(1000, 1, 0, 4)).toEqual([0, 1000]);
    // 3 int32 lines (16 elements each, the last partial) over 7 ranks.
    const blocks = Array.from({ length: 7 }, (_, r) => sharedBlock(40, 7, r, 4));
    expect(blocks.filter(([lo, hi]) => hi > lo)).toEqual([[0, 16], [16, 32], [32, 40]]);
  });
});

// ---- worlds ---------------------------------------------------------------------------



/** Steps one allreduce of `count` elements takes: one per chunk up to 64 KiB, two per larger chunk. */
function expectedSteps(count: number, es: number, slotBytes: number, n: number): number {
  if (n === 1 || count === 0) return 0;
  const chunk = Math.floor(slotBytes / es);
  let steps = 0;
  for (let off = 0; off < count; off += chunk) steps += Math.min(chunk, count - off) * es <= SHARED_REDUCE_ALL_MAX_BYTES ? 1 : 2;
  return steps;
}

// ---- data and references ----------------------------------------------------------------

/** Rank r's int32 at index i: unique per (seed, rank, index), spread over the whole int32 range. */
function i32Value(seed: number, r: number, i: number): number {
  let h = Math.imul(seed + 0x9e3779b1, r + 1) ^ Math.imul(i + 0x7f4a7c15, 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 13)) | 0;
}
const PROD_SET = [1, -1, 2, -2, 0.5, -0.5, 1.5]; // ≤ 7 factors stay exact in float64
function f64Value(seed: number, op: Op, r: number, i: number): number {
  const h = i32Value(seed, r, i) >>> 0;
  return op === 'prod' ? PROD_SET[h % PROD_SET.length] : (h % 8192) - 4096;
}

function i32Input(seed: number, r: number, count: number): Int32Array {
  const a = new Int32Array(count);
  for (let i = 0; i < count; i++) a[i] = i32Value(seed, r, i);
  return a;
}
function f64Input(seed: number, op: Op, r: number, count: number): Float64Array {
  const a = new Float64Array(count);
  for (let i = 0; i < count; i++) a[i] = f64Value(seed, op, r, i);
  return a;
}

function i32Reference(seed: number, op: Op, n: number, count: number): Int32Array {
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    let acc = i32Value(seed, 0, i);
    for (let r = 1; r < n; r++) {
      const v = i32Value(seed, r, i);
      acc = op === 'sum' || op === 'avg' ? (acc + v) | 0 : op === 'prod' ? Math.imul(acc, v) : op === 'min' ? Math.min(acc, v) : Math.max(acc, v);
    }
    out[i] = op === 'avg' ? (acc / n) | 0 : acc;
  }
  return out;
}
function f64Reference(seed: number, op: Op, n: number, count: number): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    let acc = f64Value(seed, op, 0, i);
    for (let r = 1; r < n; r++) {
      const v = f64Value(seed, op, r, i);
      acc = op === 'sum' || op === 'avg' ? acc + v : op === 'prod' ? acc * v : op === 'min' ? Math.min(acc, v) : Math.max(acc, v);
    }
    out[i] = op === 'avg' ? acc / n : acc;
  }
  return out;
}

/** First index where a and b differ (bitwise for floats via their bytes), or -1. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
function expectEqualArrays(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  const i = firstDifference(got, want);
  expect(i, `${what}: first difference at ${i}: got ${got[i]}, want ${want[i]} (length ${got.length} vs ${want.length})`).toBe(-1);
}

let seedCounter = 1;

/** One allreduce on every rank; checks the result everywhere and the steps it took. */
async function roundI32(w: SharedWorld, op: Op, count: number, placement: 'in' | 'out' | 'overlap-after' | 'overlap-before'): Promise<void> {
  const n = w.comms.length;
  const seed = seedCounter++;
  const want = i32Reference(seed, op, n, count);
  const inputs = w.comms.map((_, r) => i32Input(seed, r, count));
  const shift = Math.max(1, Math.floor(count / 3));
  const setups = inputs.map((input) => {
    if (placement === 'in') return { src: input.slice(), out: undefined };
    if (placement === 'out') return { src: input.slice(), out: new Int32Array(count).fill(0x5a5a5a5a) };
    // src and out partly overlap in one buffer: out starts after src, or before it.
    const backing = new Int32Array(count + shift);
    const src = placement === 'overlap-after' ? backing.subarray(0, count) : backing.subarray(shift, shift + count);
    src.set(input);
    const out = placement === 'overlap-after' ? backing.subarray(shift, shift + count) : backing.subarray(0, count);
    return { src, out };
  });
  w.resetSteps();
  const results = await Promise.all(w.comms.map((c, r) => c.allreduce(setups[r].src, { op, out: setups[r].out })));
  const what = `${w.label} int32 ${op} count=${count} ${placement}`;
  for (let r = 0; r < n; r++) {
    expect(results[r]).toBe(setups[r].out ?? setups[r].src);
    expectEqualArrays(results[r], want, `${what} rank ${r}`);
    if (placement === 'out') expectEqualArrays(setups[r].src, inputs[r], `${what} rank ${r}: src untouched`);
  }
  expect(w.steps(), `${what}: steps`).toEqual(Array(n).fill(expectedSteps(count, 4, w.slotBytes, n)));
}

async function roundF64(w: SharedWorld, op: Op, count: number, placement: 'in' | 'out'): Promise<void> {
  const n = w.comms.length;
  const seed = seedCounter++;
  const want = f64Reference(seed, op, n, count);
  const src = w.comms.map((_, r) => f64Input(seed, op, r, count));
  const outs = src.map(() => (placement === 'out' ? new Float64Array(count).fill(-7) : undefined));
  w.resetSteps();
  const results = await Promise.all(w.comms.map((c, r) => c.allreduce(src[r], { op, out: outs[r] })));
  const what = `${w.label} float64 ${op} count=${count} ${placement}`;
  for (let r = 0; r < n; r++) {
    expectEqualArrays(results[r], want, `${what} rank ${r}`);
    if (placement === 'out') expectEqualArrays(src[r], f64Input(seed, op, r, count), `${what} rank ${r}: src untouched`);
  }
  expect(w.steps(), `${what}: steps`).toEqual(Array(n).fill(expectedSteps(count, 8, w.slotBytes, n)));
}

/** float32 with rounding (random values): every rank must hold the very same bits, close to the exact sum. */
async function roundF32Bits(w: SharedWorld, count: number): Promise<void> {
  const n = w.comms.length;
  const seed = seedCounter++;
  const bufs = w.comms.map((_, r) => {
    const next = prngUint32(seed * 1000 + r);
    return Float32Array.from({ length: count }, () => (next() / 2 ** 32 - 0.5) * 1e3);
  });
  const exact = new Float64Array(count);
  for (const b of bufs) for (let i = 0; i < count; i++) exact[i] += b[i];
  await Promise.all(w.comms.map((c, r) => c.allreduce(bufs[r])));
  const bits = bufs.map((b) => new Uint32Array(b.buffer, b.byteOffset, b.length));
  for (let r = 1; r < n; r++) expectEqualArrays(bits[r], bits[0], `${w.label} float32 count=${count}: rank ${r} bits vs rank 0`);
  let worst = 0;
  for (let i = 0; i < count; i++) worst = Math.max(worst, Math.abs(bufs[0][i] - exact[i]));
  expect(worst, `${w.label} float32 count=${count}: error against the float64 sum`).toBeLessThan(n * 1e3 * 2 ** -22);
}

// ---- worlds × cases ----------------------------------------------------------------------

const SIZES = [2, 3, 4, 7];
const SMALL_SLOT = 4096; // 1024 int32 per chunk; every chunk ≤ 64 KiB: reduce-all
const BIG_SLOT = 256 << 10; // 65536 int32 per chunk; chunks over 64 KiB take the block path

for (const transport of ['shm', 'threads'] as const) {
  for (const n of SIZES) {
    describe(`allreduce over ${transport} shared memory, n=${n}`, () => {
      let small: SharedWorld;
      let big: SharedWorld;
      beforeAll(async () => {
        small = await openSharedWorld(transport, n, SMALL_SLOT);
        big = await openSharedWorld(transport, n, BIG_SLOT);
      });
      afterAll(async () => {
        vi.restoreAllMocks();
        await Promise.all([...(small?.comms ?? []), ...(big?.comms ?? [])].map((c) => c.close()));
      });

      it('4096-byte slots: int32 every op, counts 0..100003 (up to 98 chunks), in place and out of place', async () => {
        for (const count of [0, 1, 7, 1000, 1024, 1025, 100_003]) {
          for (const op of OPS) {
            if (count === 100_003 && op !== 'sum' && op !== 'prod') continue; // the big count: two ops suffice
            await roundI32(small, op, count, 'in');
            await roundI32(small, op, count, 'out');
          }
        }
      });

      it('4096-byte slots: float64 every op exact, in place and out of place', async () => {
        for (const count of [1, 511, 512, 513, 20_000]) {
          for (const op of OPS) {
            await roundF64(small, op, count, count % 2 ? 'out' : 'in');
          }
        }
      });

      it('256 KiB slots: the block path (chunks over 64 KiB), its 64 KiB boundary, and a chunk of each kind in one call', async () => {
        // 16384 int32 = 64 KiB: reduce-all (1 step); 16385: blocks (2 steps); 65536 + 1000: a
        // block chunk then a reduce-all chunk; 65536 + 16384 / 16385: a second chunk of exactly
        // 64 KiB (reduce-all) or just over (blocks); 100003: two block chunks.
        for (const count of [16_384, 16_385, 65_536 + 1000, 65_536 + 16_384, 65_536 + 16_385, 100_003]) {
          for (const op of ['sum', 'min', 'prod'] as Op[]) await roundI32(big, op, count, 'in');
          await roundI32(big, 'avg', count, 'out');
        }
        for (const op of OPS) await roundF64(big, op, 40_001, 'out');
      });

      it('partly overlapping src and out (out after src, out before src): the result is right on every rank', async () => {
        for (const count of [7, 3000]) {
          await roundI32(small, 'sum', count, 'overlap-after');
          await roundI32(small, 'max', count, 'overlap-before');
        }
        await roundI32(big, 'sum', 100_003, 'overlap-after');
        await roundI32(big, 'sum', 100_003, 'overlap-before');
      });

      it('float32 sums with rounding: the same bits on every rank (reduce-all and block paths)', async () => {
        await roundF32Bits(small, 5000);
        await roundF32Bits(big, 100_003);
      });

      it('several iallreduce calls in flight at once (not awaited), sizes mixed: each result is right', async () => {
        for (const w of [small, big]) {
          const plan: { op: Op; count: number; dtype: 'int32' | 'float64' }[] = [
            { op: 'sum', count: 7, dtype: 'int32' },
            { op: 'max', count: 100_003, dtype: 'int32' },
            { op: 'prod', count: 1000, dtype: 'float64' },
            { op: 'sum', count: 0, dtype: 'int32' },
            { op: 'min', count: 1025, dtype: 'int32' },
            { op: 'avg', count: 30_001, dtype: 'float64' },
            { op: 'sum', count: 1, dtype: 'int32' },
          ];
          const seeds = plan.map(() => seedCounter++);
          const bufs = w.comms.map((_, r) => plan.map((p, k) => (p.dtype === 'int32' ? i32Input(seeds[k], r, p.count) : f64Input(seeds[k], p.op, r, p.count))));
          w.resetSteps();
          // Every rank issues every call before any completes.
          const requests = w.comms.map((c, r) => plan.map((p, k) => c.iallreduce(bufs[r][k], { op: p.op })));
          await Promise.all(requests.flat());
          plan.forEach((p, k) => {
            const want = p.dtype === 'int32' ? i32Reference(seeds[k], p.op, n, p.count) : f64Reference(seeds[k], p.op, n, p.count);
            for (let r = 0; r < n; r++) expectEqualArrays(bufs[r][k], want, `${w.label} in flight #${k} ${p.dtype} ${p.op} count=${p.count} rank ${r}`);
          });
          const steps = plan.reduce((s, p) => s + expectedSteps(p.count, p.dtype === 'int32' ? 4 : 8, w.slotBytes, n), 0);
          expect(w.steps()).toEqual(Array(n).fill(steps));
        }
      });

      it('back to back small, huge, small (half alternation across calls and paths)', async () => {
        for (const w of [small, big]) {
          for (const count of [1, 100_003, 3, 16_385, 2, 70_000, 1]) await roundI32(w, 'sum', count, count % 2 ? 'in' : 'out');
        }
      });
    });
  }
}

describe('which communicators use the shared memory', () => {
  it('the world and a dup each have a team of their own (shm accepted on both; the dup leaves the world\'s steps alone); a thread world\'s dup refuses shm and goes by messages', async () => {
    const w = await openSharedWorld('shm', 3, SMALL_SLOT);
    try {
      const dups = await Promise.all(w.comms.map((c) => c.dup()));
      try {
        const bufs = w.comms.map((_, r) => Int32Array.of(r + 1, 10 * r));
        w.resetSteps();
        // In-process shm worlds get sub-teams too (their waits never block: one thread).
        await Promise.all(dups.map((d, r) => d.allreduce(bufs[r], { algorithm: 'shm' })));
        for (const b of bufs) expect([...b]).toEqual([6, 30]);
        expect(w.steps()).toEqual([0, 0, 0]); // not the world's slots
        await Promise.all(dups.map((d, r) => d.allreduce(bufs[r])));
        for (const b of bufs) expect([...b]).toEqual([18, 90]);
        expect(w.steps()).toEqual([0, 0, 0]);
        // The world itself takes 'shm' when asked, on its own team.
        await Promise.all(w.comms.map((c, r) => c.allreduce(bufs[r], { algorithm: 'shm' })));
        for (const b of bufs) expect([...b]).toEqual([54, 270]);
        expect(w.steps()).toEqual([1, 1, 1]);
        // Setting up the dup's team left nothing in the store (a job that splits often would
        // grow it without bound), and neither does a split into two communicators.
        const halves = await Promise.all(w.comms.map((c, r) => c.split(r === 1 ? 0 : 1)));
        await Promise.all(halves.map((h) => h!.close()));
        const store = (engineOf(w.comms[0]).transport as unknown as { opts: { store: { values: Map<string, unknown> } } }).opts.store;
        expect([...store.values.keys()].filter((k) => k.includes('/team/'))).toEqual([]);
      } finally {
        await Promise.all(dups.map((d) => d.close()));
      }
    } finally {
      vi.restoreAllMocks();
      await Promise.all(w.comms.map((c) => c.close()));
    }
    const t = await openSharedWorld('threads', 2, SMALL_SLOT);
    try {
      const dups = await Promise.all(t.comms.map((c) => c.dup()));
      const bufs = [Int32Array.of(1, 2), Int32Array.of(3, 4)];
      t.resetSteps();
      await Promise.all(dups.map((d, r) => d.allreduce(bufs[r])));
      expect(bufs.map((b) => [...b])).toEqual([[4, 6], [4, 6]]);
      expect(t.steps()).toEqual([0, 0]);
      let thrown: unknown;
      try {
        dups[0].iallreduce(new Int32Array(4), { algorithm: 'shm' });
      } catch (e) {
        thrown = e;
      }
      expect(isTcclError(thrown, 'TCCL_ERR_INVALID_ARGUMENT'), String(thrown)).toBe(true);
      expect(String(thrown)).toMatch(/allreduce algorithm 'shm' needs shared memory with every rank/);
      await Promise.all(dups.map((d) => d.close()));
    } finally {
      vi.restoreAllMocks();
      await Promise.all(t.comms.map((c) => c.close()));
    }
  });

  it('TCCL_SHM_COLLECTIVES=0 turns it off: messages only, shm refused', async () => {
    const saved = process.env.TCCL_SHM_COLLECTIVES;
    process.env.TCCL_SHM_COLLECTIVES = '0';
    const w = await openSharedWorld('threads', 2, SMALL_SLOT);
    try {
      const bufs = [Int32Array.of(1, 2), Int32Array.of(3, 4)];
      await Promise.all(w.comms.map((c, r) => c.allreduce(bufs[r])));
      expect(bufs.map((b) => [...b])).toEqual([[4, 6], [4, 6]]);
      expect(w.steps()).toEqual([0, 0]);
      expect(() => w.comms[0].iallreduce(new Int32Array(1), { algorithm: 'shm' })).toThrow(/needs shared memory/);
    } finally {
      if (saved === undefined) delete process.env.TCCL_SHM_COLLECTIVES;
      else process.env.TCCL_SHM_COLLECTIVES = saved;
      vi.restoreAllMocks();
      await Promise.all(w.comms.map((c) => c.close()));
    }
  });
});

describe('shared-memory allreduce: cancellation and timeouts', () => {
  it('an AbortSignal already aborted fails the call at once with TCCL_ERR_ABORTED, even when no peer is late', async () => {
    const comms = await initLocalWorld(3, { transport: 'threads', timeoutMs: 10_000 });
    try {
      const aborted = AbortSignal.abort(new Error('stop'));
      // Ranks 0 and 1 arrive first; rank 2 (aborted) would otherwise find everyone there and finish without waiting.
      const first = comms.slice(0, 2).map((c) => c.allreduce(new Int32Array([c.rank + 1]), { timeoutMs: 500 }).then(() => 'ok', (e: unknown) => (isTcclError(e) ? e.code : String(e))));
      const late = await comms[2].allreduce(new Int32Array([3]), { signal: aborted }).then(() => 'ok', (e: unknown) => e);
      expect(isTcclError(late) && late.code).toBe('TCCL_ERR_ABORTED');
      expect((late as Error).message).toContain('allreduce cancelled by its AbortSignal (rank 2, op allreduce, seq 1)');
      // The other two never see rank 2's contribution: they time out naming it.
      expect(await Promise.all(first)).toEqual(['TCCL_ERR_TIMEOUT', 'TCCL_ERR_TIMEOUT']);
    } finally {
      for (const c of comms) c.abort('test over');
    }
  });

  it('a timeout names every rank not there yet, and counts no messages', async () => {
    const comms = await initLocalWorld(4, { transport: 'threads', timeoutMs: 10_000 });
    try {
      const errors = await Promise.all(comms.slice(0, 2).map((c) => c.allreduce(new Int32Array([1]), { timeoutMs: 300 }).then(() => null, (e: unknown) => e as Error)));
      for (const [r, e] of errors.entries()) {
        expect(isTcclError(e) && e.code).toBe('TCCL_ERR_TIMEOUT');
        expect(e!.message).toContain('allreduce did not complete within 300 ms: not heard from ranks 2,3;');
        expect(e!.message).toContain('(0 messages)');
        expect(e!.message).toContain(`(rank ${r}, peers [2,3], op allreduce, seq 1)`);
      }
    } finally {
      for (const c of comms) c.abort('test over');
    }
  });
});

describe('shared-memory collectives under TCCL_DEBUG=DETAIL', () => {
  it('several in flight at once, each behind its cross-rank call check, all complete with the right results', async () => {
    const { setDebugLevel, debugLevel } = await import('../../src/diag/log.js');
    const saved = debugLevel();
    setDebugLevel('DETAIL');
    const comms = await initLocalWorld(3, { transport: 'threads', timeoutMs: 20_000 });
    try {
      const results = await Promise.all(comms.map(async (c) => {
        // One rank issues a turn later than the others.
        if (c.rank === 1) await new Promise((resolve) => setImmediate(resolve));
        const a = c.iallreduce(Int32Array.from({ length: 5 }, (_, i) => i + 10 * c.rank));
        const b = c.ibroadcast(c.rank === 2 ? Int32Array.of(7, 8, 9) : new Int32Array(3), { root: 2 });
        const d = c.iallreduce(Float64Array.of(c.rank, 1), { op: 'max' });
        return [Array.from(await a), Array.from(await b), Array.from(await d)];
      }));
      for (const r of results) expect(r).toEqual([[30, 33, 36, 39, 42], [7, 8, 9], [2, 1]]);
    } finally {
      setDebugLevel(saved);
      await Promise.all(comms.map((c) => c.close()));
    }
  });
});

describe('a peer that finished first and closed', () => {
  it('does not fail a rank still waiting on a step that peer already reached (its slot stays mapped)', async () => {
    const comms = await initLocalWorld(2, { transport: 'threads', timeoutMs: 10_000 });
    try {
      const first = comms[0].allreduce(Int32Array.of(1, 2)); // waits for rank 1 (returning to the event loop)
      await new Promise((resolve) => setImmediate(resolve));
      expect(Array.from(await comms[1].allreduce(Int32Array.of(10, 20)))).toEqual([11, 22]); // everyone there: done at once
      await comms[1].close(); // its Goodbye reaches rank 0 while rank 0 still looks at rank 1's step word
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(Array.from(await first)).toEqual([11, 22]);
    } finally {
      await comms[0].close();
    }
  });
});
