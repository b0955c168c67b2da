/**
 * The shared-memory barrier, broadcast, allgather / allgatherv and reduce-scatter
 * (src/collectives/*-shared.ts) through the real Communicator over in-process shm and thread
 * worlds with 4096-byte slots, so most calls take several chunks: per-rank unique data (the
 * value depends on rank and index, so a misplaced element shows), odd counts, count 0, every
 * root, several collectives in flight at once, and the number of steps (team.arrive calls)
 * each call takes, which pins down that the shared-memory algorithm ran and how many chunks it
 * cut. Also: reduce-scatter with uneven counts and with a slot smaller than n elements (the
 * linear fallback) over an in-process SharedGroup, and 'shm' refused where there is none.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { allgathervShared } from '../../src/collectives/allgather-shared.js';
import { broadcastShared } from '../../src/collectives/broadcast-shared.js';
import type { SharedGroup } from '../../src/collectives/p2p.js';
import { SHARED_BROADCAST_MIN_BYTES, selectAllgather, selectBarrier, selectBroadcast, selectReduceScatter } from '../../src/collectives/select.js';
import { reduceScatterShared } from '../../src/collectives/reduce-scatter-shared.js';
import { initLocalWorld, isTcclError, type Communicator } from '../../src/index.js';
import { openSharedWorld, type SharedWorld } from '../support/shared-world.js';

const SLOT = 4096;

// ---- worlds ---------------------------------------------------------------------------



// ---- data ---------------------------------------------------------------------------------

/** A value unique per (seed, rank, index), spread over the int32 range. */
function hash(seed: number, r: number, i: number): number {
  let h = Math.imul(seed + 0x9e3779b1, r + 1) ^ Math.imul(i + 0x7f4a7c15, 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 13)) | 0;
}

type Kind = 'int32' | 'uint8' | 'float64';
type Arr = Int32Array | Uint8Array | Float64Array;
const ES: Record<Kind, number> = { int32: 4, uint8: 1, float64: 8 };

function make(kind: Kind, count: number, at: (i: number) => number): Arr {
  const a = kind === 'int32' ? new Int32Array(count) : kind === 'uint8' ? new Uint8Array(count) : new Float64Array(count);
  for (let i = 0; i < count; i++) a[i] = at(i);
  return a;
}
/** Rank r's data: uint8 and int32 wrap the hash; float64 takes small values whose sums of ≤ 5 are exact. */
const data = (kind: Kind, seed: number, r: number, count: number): Arr =>
  make(kind, count, kind === 'float64' ? (i) => (hash(seed, r, i) % 4096) + 0.25 : (i) => hash(seed, r, i));
const filled = (kind: Kind, count: number, v: number): Arr => make(kind, count, () => v);

function expectSame(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  let i = got.length === want.length ? -1 : Math.min(got.length, want.length);
  if (i < 0) for (let k = 0; k < got.length; k++) if (!Object.is(got[k], want[k])) { i = k; break; }
  expect(i, `${what}: first difference at ${i}: got ${got[i]}, want ${want[i]} (length ${got.length} vs ${want.length})`).toBe(-1);
}

const chunks = (bytes: number, per: number) => Math.ceil(bytes / per);

let seedCounter = 1;

// ---- the four collectives, one round each ---------------------------------------------------

async function broadcastRound(w: SharedWorld, kind: Kind, count: number, root: number): Promise<void> {
  const n = w.comms.length;
  const seed = seedCounter++;
  const want = data(kind, seed, root, count);
  const bufs = w.comms.map((_, r) => (r === root ? want.slice() : filled(kind, count, 0x5a)));
  w.resetSteps();
  const got = await Promise.all(w.comms.map((c, r) => c.broadcast(bufs[r], { root, algorithm: 'shm' })));
  const what = `${w.label} broadcast ${kind} count=${count} root=${root}`;
  for (let r = 0; r < n; r++) {
    expect(got[r], `${what} rank ${r}: returns its buffer`).toBe(bufs[r]);
    expectSame(bufs[r], want, `${what} rank ${r}`);
  }
  expect(w.steps(), `${what}: steps`).toEqual(Array(n).fill(chunks(count * ES[kind], SLOT)));
}

async function allgatherRound(w: SharedWorld, kind: Kind, count: number): Promise<void> {
  const n = w.comms.length;
  const seed = seedCounter++;
  const srcs = w.comms.map((_, r) => data(kind, seed, r, count));
  const want = make(kind, n * count, (i) => srcs[Math.floor(i / count)][i % count]);
  const dsts = w.comms.map(() => filled(kind, n * count, 0x33));
  w.resetSteps();
  await Promise.all(w.comms.map((c, r) => c.allgather(srcs[r], dsts[r])));
  const what = `${w.label} allgather ${kind} count=${count}`;
  for (let r = 0; r < n; r++) {
    expectSame(dsts[r], want, `${what} rank ${r}`);
    expectSame(srcs[r], data(kind, seed, r, count), `${what} rank ${r}: src untouched`);
  }
  expect(w.steps(), `${what}: steps`).toEqual(Array(n).fill(chunks(count * ES[kind], SLOT)));
}

async function allgathervRound(w: SharedWorld, kind: Kind, counts: number[]): Promise<void> {
  const n = w.comms.length;
  const seed = seedCounter++;
  const srcs = w.comms.map((_, r) => data(kind, seed, r, counts[r]));
  const flat: number[] = [];
  for (const s of srcs) flat.push(...s);
  const want = make(kind, flat.length, (i) => flat[i]);
  const dsts = w.comms.map(() => filled(kind, flat.length, 0x44));
  w.resetSteps();
  await Promise.all(w.comms.map((c, r) => c.allgatherv(srcs[r], dsts[r], counts)));
  const what = `${w.label} allgatherv ${kind} counts=${counts.join(',')}`;
  for (let r = 0; r < n; r++) expectSame(dsts[r], want, `${what} rank ${r}`);
  expect(w.steps(), `${what}: steps`).toEqual(Array(n).fill(chunks(Math.max(...counts) * ES[kind], SLOT)));
}

type RsOp = 'sum' | 'max' | 'prod' | 'avg';
/** Exact reference: int32 wraps (prod via Math.imul); float64 values are small integers + 0.25. */
function combine(kind: Kind, op: RsOp, a: number, b: number): number {
  if (op === 'max') return Math.max(a, b);
  if (kind === 'int32') return op === 'prod' ? Math.imul(a, b) : (a + b) | 0;
  return op === 'prod' ? a * b : a + b;
}

async function reduceScatterRound(w: SharedWorld, kind: 'int32' | 'float64', op: RsOp, count: number): Promise<void> {
  const n = w.comms.length;
  const seed = seedCounter++;
  const srcs = w.comms.map((_, r) => data(kind, seed, r, count * n));
  const full = make(kind, count * n, (i) => {
    let acc = srcs[0][i];
    for (let r = 1; r < n; r++) acc = combine(kind, op, acc, srcs[r][i]);
    return op === 'avg' ? (kind === 'int32' ? (acc / n) | 0 : acc / n) : acc;
  });
  const dsts = w.comms.map(() => filled(kind, count, 9));
  w.resetSteps();
  await Promise.all(w.comms.map((c, r) => c.reduceScatter(srcs[r], dsts[r], { op })));
  const what = `${w.label} reduceScatter ${kind} ${op} count=${count}`;
  for (let r = 0; r < n; r++) {
    expectSame(dsts[r], full.subarray(r * count, (r + 1) * count), `${what} rank ${r}`);
    expectSame(srcs[r], data(kind, seed, r, count * n), `${what} rank ${r}: src untouched`);
  }
  const piece = Math.floor(SLOT / ES[kind] / n);
  expect(w.steps(), `${what}: steps`).toEqual(Array(n).fill(Math.ceil(count / piece)));
}

// ---- worlds × cases ----------------------------------------------------------------------

for (const transport of ['shm', 'threads'] as const) {
  for (const n of [2, 3, 5]) {
    describe(`shared-memory collectives over ${transport}, n=${n}, ${SLOT}-byte slots`, () => {
      let w: SharedWorld;
      beforeAll(async () => {
        w = await openSharedWorld(transport, n, SLOT);
      });
      afterAll(async () => {
        vi.restoreAllMocks();
        await Promise.all((w?.comms ?? []).map((c) => c.close()));
      });

      it('barrier: one step, and no rank leaves before the last one entered', async () => {
        for (let round = 0; round < 3; round++) {
          w.resetSteps();
          const left: boolean[] = Array(n).fill(false);
          const early = w.comms.slice(0, n - 1).map((c, r) => c.barrier().then(() => { left[r] = true; }));
          // Give the early ranks every chance to (wrongly) leave before the last one enters.
          for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
          expect(left, `${w.label} barrier round ${round}: someone left early`).toEqual(Array(n).fill(false));
          await Promise.all([...early, w.comms[n - 1].barrier()]);
          expect(left.slice(0, n - 1)).toEqual(Array(n - 1).fill(true));
          expect(w.steps()).toEqual(Array(n).fill(1));
        }
      });

      it(`broadcast by default: shm on 2 ranks at any size, on 3+ from ${SHARED_BROADCAST_MIN_BYTES} bytes`, async () => {
        for (const [count, root] of [[1000, 0], [SHARED_BROADCAST_MIN_BYTES / 4 - 1, n - 1], [SHARED_BROADCAST_MIN_BYTES / 4, 1]]) {
          const seed = seedCounter++;
          const bufs = w.comms.map((_, r) => (r === root ? data('int32', seed, r, count) : filled('int32', count, 0)));
          w.resetSteps();
          await Promise.all(w.comms.map((c, r) => c.broadcast(bufs[r], { root })));
          for (let r = 0; r < n; r++) expectSame(bufs[r], data('int32', seed, root, count), `${w.label} default broadcast count=${count} rank ${r}`);
          const shm = n === 2 || count * 4 >= SHARED_BROADCAST_MIN_BYTES;
          expect(w.steps(), `${w.label} default broadcast count=${count}: steps`).toEqual(Array(n).fill(shm ? chunks(count * 4, SLOT) : 0));
        }
      });

      it('broadcast (shm) from every root: counts 0, 1, odd, a slot exactly, one over, many chunks', async () => {
        for (let root = 0; root < n; root++) {
          for (const count of [0, 1, 7, 1024, 1025, 10_001]) await broadcastRound(w, 'int32', count, root);
          for (const count of [4095, 4096, 4097, 13_333]) await broadcastRound(w, 'uint8', count, root);
          await broadcastRound(w, 'float64', 3001, root);
        }
      });

      it('allgather: counts 0, 1, odd, a slot exactly, one over, many chunks', async () => {
        for (const count of [0, 1, 7, 1024, 1025, 5003]) await allgatherRound(w, 'int32', count);
        for (const count of [1, 4097, 9999]) await allgatherRound(w, 'uint8', count);
        await allgatherRound(w, 'float64', 1537);
      });

      it('allgatherv: uneven counts, empty blocks, blocks of different chunk counts', async () => {
        const layouts = [
          Array.from({ length: n }, (_, k) => (k === 1 ? 0 : 3 + 7 * k)),
          Array.from({ length: n }, (_, k) => (k % 2 ? 2049 + 1000 * k : 5)), // some blocks take 2-4 chunks, others 1
          Array.from({ length: n }, (_, k) => (k === n - 1 ? 3000 : 0)), // one rank contributes all
          Array(n).fill(0) as number[],
        ];
        for (const counts of layouts) await allgathervRound(w, 'int32', counts);
        await allgathervRound(w, 'uint8', Array.from({ length: n }, (_, k) => 4096 * k + 1));
      });

      it('reduceScatter: int32 sum / max / prod / avg and float64 sum / avg, counts 0 to many chunks', async () => {
        for (const count of [0, 1, 7, 1000, 2051]) {
          for (const op of ['sum', 'max', 'prod', 'avg'] as RsOp[]) await reduceScatterRound(w, 'int32', op, count);
        }
        for (const count of [3, 777]) {
          for (const op of ['sum', 'avg'] as RsOp[]) await reduceScatterRound(w, 'float64', op, count);
        }
      });

      it('several collectives in flight at once (not awaited in between): each result is right', async () => {
        const seed = seedCounter++;
        const count = 1501; // 2 chunks of int32 for broadcast and allgather
        const bcast = w.comms.map((_, r) => (r === n - 1 ? data('int32', seed, r, count) : filled('int32', count, 0)));
        const agSrc = w.comms.map((_, r) => data('int32', seed + 1, r, count));
        const agDst = w.comms.map(() => filled('int32', count * n, 0));
        const rsSrc = w.comms.map((_, r) => data('int32', seed + 2, r, count * n));
        const rsDst = w.comms.map(() => filled('int32', count, 0));
        const arBuf = w.comms.map((_, r) => data('int32', seed + 3, r, 3000));
        const a2aSrc = w.comms.map((_, r) => data('int32', seed + 4, r, 5 * n));
        const a2aDst = w.comms.map(() => filled('int32', 5 * n, 0));
        const bcast2 = w.comms.map((_, r) => (r === 0 ? data('uint8', seed + 5, r, 9000) : filled('uint8', 9000, 0)));
        const gvCounts = Array.from({ length: n }, (_, k) => 1100 * (k + 1));
        const gvSrc = w.comms.map((_, r) => data('int32', seed + 6, r, gvCounts[r]));
        const gvDst = w.comms.map(() => filled('int32', gvCounts.reduce((a, b) => a + b, 0), 0));
        w.resetSteps();
        const requests = w.comms.map((c, r) => [
          c.ibroadcast(bcast[r], { root: n - 1, algorithm: 'shm' }),
          c.iallgather(agSrc[r], agDst[r]),
          c.ibarrier(),
          c.ireduceScatter(rsSrc[r], rsDst[r]),
          c.iallreduce(arBuf[r]),
          c.ialltoall(a2aSrc[r], a2aDst[r], { algorithm: 'pairwise' }), // by messages, between shared ones
          c.ibroadcast(bcast2[r], { root: 0 }), // by default: shm on 2 ranks, else binomial
          c.iallgatherv(gvSrc[r], gvDst[r], gvCounts),
          c.ibarrier(),
        ]);
        await Promise.all(requests.flat());
        const rsPiece = Math.floor(SLOT / 4 / n);
        const arSteps = Math.ceil(3000 / (SLOT / 4)); // allreduce: 4 KiB chunks take one step each
        const expectedSteps = 2 + 2 + 1 + Math.ceil(count / rsPiece) + arSteps + (n === 2 ? 3 : 0) + chunks(gvCounts[n - 1] * 4, SLOT) + 1;
        expect(w.steps(), `${w.label} in flight: steps`).toEqual(Array(n).fill(expectedSteps));
        const sumOf = (srcs: Arr[], i: number) => srcs.reduce((acc, s) => (acc + s[i]) | 0, 0);
        const arInputs = w.comms.map((_, k) => data('int32', seed + 3, k, 3000));
        const arWant = make('int32', 3000, (i) => sumOf(arInputs, i));
        for (let r = 0; r < n; r++) {
          const what = `${w.label} in flight, rank ${r}`;
          expectSame(bcast[r], data('int32', seed, n - 1, count), `${what}: broadcast`);
          expectSame(agDst[r], make('int32', count * n, (i) => agSrc[Math.floor(i / count)][i % count]), `${what}: allgather`);
          expectSame(rsDst[r], make('int32', count, (i) => sumOf(rsSrc, r * count + i)), `${what}: reduceScatter`);
          expectSame(arBuf[r], arWant, `${what}: allreduce`);
          expectSame(a2aDst[r], make('int32', 5 * n, (i) => a2aSrc[Math.floor(i / 5)][r * 5 + (i % 5)]), `${what}: alltoall`);
          expectSame(bcast2[r], data('uint8', seed + 5, 0, 9000), `${what}: second broadcast`);
          const flat: number[] = [];
          for (const s of gvSrc) flat.push(...s);
          expectSame(gvDst[r], flat, `${what}: allgatherv`);
        }
      });

      it("message algorithms forced on the shared world still work and take no shared steps; 'shm' forced works too", async () => {
        const seed = seedCounter++;
        const bufs = w.comms.map((_, r) => (r === 1 ? data('int32', seed, 1, 3000) : filled('int32', 3000, 0)));
        w.resetSteps();
        await Promise.all(w.comms.map((c, r) => c.broadcast(bufs[r], { root: 1, algorithm: 'binomial' })));
        const srcs = w.comms.map((_, r) => data('int32', seed + 1, r, 10));
        const dsts = w.comms.map(() => filled('int32', 10 * n, 0));
        await Promise.all(w.comms.map((c, r) => c.allgather(srcs[r], dsts[r], { algorithm: 'ring' })));
        const rs = w.comms.map(() => filled('int32', 10, 0));
        await Promise.all(w.comms.map((c, r) => c.reduceScatter(dsts[r], rs[r], { algorithm: 'rh' })));
        expect(w.steps()).toEqual(Array(n).fill(0));
        for (let r = 0; r < n; r++) {
          expectSame(bufs[r], data('int32', seed, 1, 3000), `${w.label} forced binomial rank ${r}`);
          expectSame(dsts[r], make('int32', 10 * n, (i) => srcs[Math.floor(i / 10)][i % 10]), `${w.label} forced ring rank ${r}`);
          expectSame(rs[r], make('int32', 10, (i) => Math.imul(n, dsts[0][r * 10 + i])), `${w.label} forced rh rank ${r}`);
        }
        await Promise.all(w.comms.map((c, r) => c.broadcast(bufs[r], { root: 0, algorithm: 'shm' })));
        expect(w.steps()).toEqual(Array(n).fill(chunks(3000 * 4, SLOT)));
      });
    });
  }
}

// ---- reduce-scatter with uneven counts and tiny slots, over an in-process SharedGroup ----------

/**
 * n SharedGroups over plain memory, for calling the algorithms directly: sync is a barrier
 * over promises (every rank yields to the others at every step).
 */
function memoryGroups(n: number, slotBytes: number): SharedGroup[] {
  const slots = Array.from({ length: n }, () => [new Uint8Array(slotBytes), new Uint8Array(slotBytes)]);
  const arrived: number[] = Array(n).fill(0);
  let waiters: { step: number; resolve: () => void }[] = [];
  return Array.from({ length: n }, (_, rank) => {
    let half = 1;
    let step = 0;
    return {
      rank,
      size: n,
      slotBytes,
      nextHalf: () => (half ^= 1),
      slot: (r: number, h: number) => slots[r][h],
      sync: () => {
        arrived[rank] = ++step;
        const mine = step;
        const ready = waiters.filter((x) => arrived.every((a) => a >= x.step));
        waiters = waiters.filter((x) => !ready.includes(x));
        for (const x of ready) x.resolve();
        return new Promise<void>((resolve) => {
          if (arrived.every((a) => a >= mine)) setImmediate(resolve);
          else waiters.push({ step: mine, resolve });
        });
      },
      exclusive: (body) => body(),
    };
  });
}

describe('reduceScatterShared over an in-process SharedGroup', () => {
  const cases: { what: string; n: number; slotBytes: number; counts: number[] }[] = [
    { what: 'uneven counts with empty blocks', n: 3, slotBytes: 256, counts: [0, 45, 7] },
    { what: 'one block much longer than the others', n: 4, slotBytes: 256, counts: [1, 100, 2, 0] },
    { what: 'all blocks empty', n: 3, slotBytes: 256, counts: [0, 0, 0] },
    // float64: 2 elements per slot < 5 ranks: the linear fallback.
    { what: 'a slot smaller than n elements (linear fallback), uneven counts', n: 5, slotBytes: 16, counts: [3, 0, 4, 1, 5] },
    { what: 'a slot smaller than n elements, equal counts', n: 5, slotBytes: 16, counts: [6, 6, 6, 6, 6] },
  ];
  for (const c of cases) {
    it(`${c.what}: n=${c.n}, ${c.slotBytes}-byte slots, counts ${c.counts.join(',')}`, async () => {
      const groups = memoryGroups(c.n, c.slotBytes);
      const total = c.counts.reduce((a, b) => a + b, 0);
      const seed = seedCounter++;
      const srcs = groups.map((_, r) => data('float64', seed, r, total) as Float64Array);
      const dsts = c.counts.map((k) => new Float64Array(k).fill(-1));
      await Promise.all(groups.map((g, r) => reduceScatterShared(g, srcs[r], dsts[r], c.counts, 'float64', 'sum')));
      let at = 0;
      for (let r = 0; r < c.n; r++) {
        const want = Float64Array.from({ length: c.counts[r] }, (_, i) => srcs.reduce((acc, s) => acc + s[at + i], 0));
        expectSame(dsts[r], want, `${c.what} rank ${r}`);
        at += c.counts[r];
      }
    });
  }

  it('dst overlapping src (dst is the rank\'s own block of src): the result is still right', async () => {
    const groups = memoryGroups(3, 64);
    const count = 20;
    const seed = seedCounter++;
    const inputs = groups.map((_, r) => data('int32', seed, r, 3 * count) as Int32Array);
    const srcs = inputs.map((a) => a.slice());
    const dsts = srcs.map((s, r) => s.subarray(r * count, (r + 1) * count));
    await Promise.all(groups.map((g, r) => reduceScatterShared(g, srcs[r], dsts[r], [count, count, count], 'int32', 'sum')));
    for (let r = 0; r < 3; r++) {
      const want = Int32Array.from({ length: count }, (_, i) => inputs.reduce((acc, s) => (acc + s[r * count + i]) | 0, 0));
      expectSame(dsts[r], want, `in place rank ${r}`);
    }
  });

  it('allgathervShared and broadcastShared with src inside dst / odd slot sizes', async () => {
    const groups = memoryGroups(3, 24);
    const counts = [5, 0, 11];
    const seed = seedCounter++;
    const blocks = counts.map((k, r) => data('int32', seed, r, k) as Int32Array);
    // MPI_IN_PLACE style: each rank's block already sits at its place in dst.
    const dsts = groups.map((_, r) => {
      const d = new Int32Array(16).fill(-3);
      d.set(blocks[r], r === 0 ? 0 : r === 1 ? 5 : 5);
      return d;
    });
    const srcs = dsts.map((d, r) => d.subarray(r === 0 ? 0 : 5, (r === 0 ? 0 : 5) + counts[r]));
    await Promise.all(groups.map((g, r) => allgathervShared(g, srcs[r], dsts[r], counts)));
    const want = Int32Array.from([...blocks[0], ...blocks[2]]);
    for (let r = 0; r < 3; r++) expectSame(dsts[r], want, `allgatherv in place rank ${r}`);
    const bufs = groups.map((_, r) => (r === 2 ? data('int32', seed + 1, 2, 31) as Int32Array : new Int32Array(31)));
    await Promise.all(groups.map((g, r) => broadcastShared(g, bufs[r], 2)));
    for (let r = 0; r < 3; r++) expectSame(bufs[r], data('int32', seed + 1, 2, 31), `broadcast rank ${r}`);
  });
});

// ---- selection ----------------------------------------------------------------------------------

describe('selection with and without shared memory', () => {
  it("'shm' by default with shared memory (broadcast: 2 ranks, or 3+ from SHARED_BROADCAST_MIN_BYTES); the size rules without", () => {
    const env = {};
    for (const bytes of [0, 8, 1 << 20, 64 << 20]) {
      expect(selectReduceScatter(bytes, 4, undefined, env, true)).toBe('shm');
      expect(selectAllgather(bytes, 4, undefined, env, true)).toBe('shm');
      expect(selectBroadcast(bytes, 2, undefined, env, true)).toBe('shm');
      expect(selectReduceScatter(bytes, 4, undefined, env, false)).not.toBe('shm');
      expect(selectAllgather(bytes, 4, undefined, env, false)).not.toBe('shm');
      expect(selectBroadcast(bytes, 4, undefined, env, false)).not.toBe('shm');
    }
    expect(selectBroadcast(SHARED_BROADCAST_MIN_BYTES - 1, 3, undefined, env, true)).toBe('binomial');
    expect(selectBroadcast(SHARED_BROADCAST_MIN_BYTES, 3, undefined, env, true)).toBe('shm');
    expect(selectBarrier(4, undefined, env, true)).toBe('shm');
    expect(selectBarrier(4, undefined, env, false)).toBe('dissemination');
  });

  it('the call option, then TCCL_ALGO_<X>, override it either way; shared_memory aliases; bad names are refused', () => {
    expect(selectBroadcast(64 << 20, 4, 'chain', {}, true)).toBe('chain');
    expect(selectAllgather(8, 4, undefined, { TCCL_ALGO_ALLGATHER: 'ring' }, true)).toBe('ring');
    expect(selectReduceScatter(8, 4, undefined, { TCCL_ALGO_REDUCE_SCATTER: 'Shared_Memory' }, true)).toBe('shm');
    expect(selectBroadcast(8, 4, 'shm', {}, true)).toBe('shm');
    expect(selectBarrier(4, undefined, { TCCL_ALGO_BARRIER: 'dissemination' }, true)).toBe('dissemination');
    expect(selectBarrier(1, undefined, { TCCL_ALGO_BARRIER: 'shm' }, false)).toBe('shm'); // one rank needs no memory
    expect(() => selectBarrier(4, undefined, { TCCL_ALGO_BARRIER: 'tree' }, true)).toThrow(/TCCL_ALGO_BARRIER='tree' is not a barrier algorithm \(expected dissemination, shm, shared_memory or auto\)/);
    for (const f of [
      () => selectBroadcast(8, 2, 'shm', {}, false),
      () => selectAllgather(8, 2, undefined, { TCCL_ALGO_ALLGATHER: 'shm' }, false),
      () => selectReduceScatter(8, 2, 'shm', {}, false),
      () => selectBarrier(2, 'shm', {}, false),
    ]) {
      let thrown: unknown;
      try {
        f();
      } catch (e) {
        thrown = e;
      }
      expect(isTcclError(thrown, 'TCCL_ERR_INVALID_ARGUMENT'), String(thrown)).toBe(true);
      expect(String(thrown)).toMatch(/algorithm 'shm' needs shared memory with every rank/);
    }
  });
});

// ---- where there is no shared memory -----------------------------------------------------------

describe("'shm' forced without shared memory", () => {
  it('tcp world of 2: every collective refuses it with TCCL_ERR_INVALID_ARGUMENT, naming the collective; the communicator stays usable', async () => {
    const comms = await initLocalWorld(2, { transport: 'tcp', timeoutMs: 30_000 });
    try {
      const c = comms[0];
      const attempts: [string, () => unknown][] = [
        ['broadcast', () => c.ibroadcast(new Int32Array(4), { algorithm: 'shm' })],
        ['allgather', () => c.iallgather(new Int32Array(2), new Int32Array(4), { algorithm: 'shm' })],
        ['allgather', () => c.iallgatherv(new Int32Array(2), new Int32Array(3), [2, 1], { algorithm: 'shared_memory' })],
        ['reduce-scatter', () => c.ireduceScatter(new Int32Array(4), new Int32Array(2), { algorithm: 'SHM' })],
        ['allreduce', () => c.iallreduce(new Int32Array(4), { algorithm: 'shm' })],
      ];
      for (const [kind, attempt] of attempts) {
        let thrown: unknown;
        try {
          attempt();
        } catch (e) {
          thrown = e;
        }
        expect(isTcclError(thrown, 'TCCL_ERR_INVALID_ARGUMENT'), `${kind}: ${String(thrown)}`).toBe(true);
        expect(String(thrown)).toContain(`${kind} algorithm 'shm' needs shared memory with every rank`);
      }
      // Through the environment too, barrier included (read when a communicator is made).
      for (const [env, kind, attempt] of [
        ['TCCL_ALGO_BROADCAST', 'broadcast', (k: Communicator) => k.ibroadcast(new Int32Array(4))],
        ['TCCL_ALGO_BARRIER', 'barrier', (k: Communicator) => k.ibarrier()],
      ] as const) {
        const saved = process.env[env];
        process.env[env] = 'shm';
        let fresh: Communicator[] = [];
        try {
          fresh = await initLocalWorld(2, { transport: 'tcp', timeoutMs: 30_000 });
          expect(() => attempt(fresh[0])).toThrow(`${kind} algorithm 'shm' needs shared memory with every rank`);
          expect(() => attempt(c)).not.toThrow(); // made before: the variable is not read again
        } finally {
          if (saved === undefined) delete process.env[env];
          else process.env[env] = saved;
          await Promise.all(fresh.map((k) => k.close()));
        }
      }
      // The two calls on c above started on rank 0 only: finish them with rank 1.
      await Promise.all([comms[1].broadcast(new Int32Array(4)), comms[1].barrier()]);
      // Nothing was started: both ranks go on with the default algorithms.
      const bufs = [Int32Array.of(1, 2, 3), new Int32Array(3)];
      await Promise.all(comms.map((k, r) => k.broadcast(bufs[r])));
      expect([...bufs[1]]).toEqual([1, 2, 3]);
      await Promise.all(comms.map((k) => k.barrier()));
    } finally {
      await Promise.all(comms.map((k) => k.close()));
    }
  });

  it("one rank: 'shm' is accepted and needs no memory", async () => {
    const [c] = await initLocalWorld(1, { transport: 'tcp' });
    try {
      const buf = Int32Array.of(4, 5);
      expect([...(await c.broadcast(buf, { algorithm: 'shm' }))]).toEqual([4, 5]);
      expect([...(await c.allgather(Int32Array.of(7), new Int32Array(1), { algorithm: 'shm' }))]).toEqual([7]);
      expect([...(await c.reduceScatter(Int32Array.of(8, 9), new Int32Array(2), { algorithm: 'shm' }))]).toEqual([8, 9]);
    } finally {
      await c.close();
    }
  });

  it('a dup of a thread world has none (threads cannot share a new buffer without messages): defaults go by messages, shm is refused', async () => {
    const w = await openSharedWorld('threads', 3, SLOT);
    try {
      const dups = await Promise.all(w.comms.map((c) => c.dup()));
      try {
        const bufs = w.comms.map((_, r) => (r === 2 ? Int32Array.of(5, 6, 7) : new Int32Array(3)));
        w.resetSteps();
        await Promise.all(dups.map((d, r) => d.broadcast(bufs[r], { root: 2 })));
        await Promise.all(dups.map((d) => d.barrier()));
        for (const b of bufs) expect([...b]).toEqual([5, 6, 7]);
        expect(w.steps()).toEqual([0, 0, 0]);
        expect(() => dups[0].iallgather(new Int32Array(1), new Int32Array(3), { algorithm: 'shm' })).toThrow(/allgather algorithm 'shm' needs shared memory/);
      } finally {
        await Promise.all(dups.map((d) => d.close()));
      }
    } finally {
      vi.restoreAllMocks();
      await Promise.all(w.comms.map((c) => c.close()));
    }
  });
});
