// Random collectives, up to 4 in flight, every result verified.
//   npx tcclrun -n 4 bench/stress.ts [count=5000] [seed=1]
// All ranks derive the same plan from the shared seed; rank 0 prints
//   STRESS collectives=N wrong=W seconds=S
import { init, type Request, type TypedArray } from 'tccl';
import { concat, dt, DTYPES, expectSameBits, movementData, opsFor, rankInput, reference } from '../test/collectives/data.js';
import { allocArray } from '../src/kernels/view.js';
import { DTYPE_BYTES } from '../src/dtype.js';
import { prng } from '../test/support/prng.js';

const total = Number(process.argv[2] ?? 5000);
const seed = Number(process.argv[3] ?? 1);
const comm = await init();
const { rank, size } = comm;
const ranks = Array.from({ length: size }, (_, r) => r);

// Same seed on every rank: all ranks derive the same plan.
const rnd = prng(seed);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];

const KINDS = ['allreduce', 'reduceScatter', 'reduce', 'allgather', 'alltoall', 'broadcast', 'gather', 'scatter', 'allgatherv', 'barrier'] as const;

/** Starts one random collective (same choice on every rank); resolves to a verify function. */
function start(i: number): { req: Request<unknown>; verify: () => void; what: string } {
  const kind = pick(KINDS);
  const dtype = pick(DTYPES);
  // Random total bytes up to 1 MiB, skewed toward small; per-rank element counts derived from it.
  const maxElems = Math.floor((1 << 20) / DTYPE_BYTES[dtype]);
  const count = Math.min(maxElems, Math.floor(rnd() ** 3 * maxElems));
  const per = Math.floor(count / size);
  const op = pick(opsFor(dtype));
  const root = Math.floor(rnd() * size);
  const o = dt(dtype);
  const what = `#${i} ${kind} ${dtype} ${op} count=${count} root=${root}`;
  switch (kind) {
    case 'allreduce': {
      const buf = rankInput(dtype, op, rank, count);
      return { what, req: comm.iallreduce(buf, { op, ...o, algorithm: pick(['auto', 'ring', 'rd', 'rabenseifner']) }), verify: () => expectSameBits(buf, reference(dtype, op, size, count), what) };
    }
    case 'reduceScatter': {
      const dst = allocArray(dtype, per);
      return { what, req: comm.ireduceScatter(rankInput(dtype, op, rank, per * size), dst, { op, ...o }), verify: () => expectSameBits(dst, reference(dtype, op, size, per * size).subarray(rank * per, (rank + 1) * per) as TypedArray, what) };
    }
    case 'reduce': {
      const out = rank === root ? allocArray(dtype, count) : undefined;
      return { what, req: comm.ireduce(rankInput(dtype, op, rank, count), { op, root, out, ...o }), verify: () => { if (out) expectSameBits(out, reference(dtype, op, size, count), what); } };
    }
    case 'allgather': {
      const dst = allocArray(dtype, per * size);
      return { what, req: comm.iallgather(movementData(dtype, rank, per, i), dst, o), verify: () => expectSameBits(dst, concat(dtype, ranks.map((r) => movementData(dtype, r, per, i))), what) };
    }
    case 'alltoall': {
      const b = Math.floor(per / size);
      const dst = allocArray(dtype, b * size);
      return { what, req: comm.ialltoall(movementData(dtype, rank, b * size, i), dst, o), verify: () => expectSameBits(dst, concat(dtype, ranks.map((k) => movementData(dtype, k, b * size, i).subarray(rank * b, (rank + 1) * b) as TypedArray)), what) };
    }
    case 'broadcast': {
      const buf = rank === root ? movementData(dtype, root, count, i) : allocArray(dtype, count);
      return { what, req: comm.ibroadcast(buf, { root, ...o }), verify: () => expectSameBits(buf, movementData(dtype, root, count, i), what) };
    }
    case 'gather': {
      const dst = rank === root ? allocArray(dtype, per * size) : undefined;
      return { what, req: comm.igather(movementData(dtype, rank, per, i), dst, { root, ...o }), verify: () => { if (dst) expectSameBits(dst, concat(dtype, ranks.map((r) => movementData(dtype, r, per, i))), what); } };
    }
    case 'scatter': {
      const src = movementData(dtype, root, per * size, i);
      const dst = allocArray(dtype, per);
      return { what, req: comm.iscatter(rank === root ? src : undefined, dst, { root, ...o }), verify: () => expectSameBits(dst, src.subarray(rank * per, (rank + 1) * per) as TypedArray, what) };
    }
    case 'allgatherv': {
      const rc = ranks.map((k) => Math.floor((per * ((k * 7 + i) % 5)) / 4));
      const dst = allocArray(dtype, rc.reduce((a, b) => a + b, 0));
      return { what, req: comm.iallgatherv(movementData(dtype, rank, rc[rank], i), dst, rc, o), verify: () => expectSameBits(dst, concat(dtype, ranks.map((k) => movementData(dtype, k, rc[k], i))), what) };
    }
    case 'barrier':
      return { what, req: comm.ibarrier(), verify: () => {} };
  }
}

const t0 = performance.now();
let done = 0;
const wrong: string[] = [];
for (let i = 0; i < total;) {
  const batch = 1 + Math.floor(rnd() * 4); // 1..4 in flight
  const started: ReturnType<typeof start>[] = [];
  for (let k = 0; k < batch && i < total; k++, i++) started.push(start(i));
  const settled = await Promise.allSettled(started.map((x) => x.req));
  settled.forEach((r, k) => {
    done++;
    try {
      if (r.status === 'rejected') throw r.reason;
      started[k].verify();
    } catch (e) {
      wrong.push(`${started[k].what}: ${(e as Error).message}`);
    }
  });
}
const seconds = (performance.now() - t0) / 1000;
const all = await comm.allgatherObject({ done, wrong: wrong.slice(0, 5), nWrong: wrong.length });
if (rank === 0) {
  for (const [r, a] of all.entries()) for (const w of a.wrong) console.error(`[${r}] WRONG ${w}`);
  console.log(`STRESS collectives=${done} wrong=${all.reduce((a, x) => a + x.nWrong, 0)} seconds=${seconds.toFixed(2)}`);
}
await comm.close();
