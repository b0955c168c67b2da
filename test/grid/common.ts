/**
 * Shared pieces for the Communicator-level grid: per-rank data, locally computed references,
 * and bit-exact comparison. Reuses the unique-data helpers of test/collectives/data.ts.
 */
import type { Communicator } from '../../src/comm/communicator.js';
import type { DType, TypedArray } from '../../src/dtype.js';
import type { ReduceOpName } from '../../src/kernels/reduce.js';
import { allocArray } from '../../src/kernels/view.js';
import { concat, dt, expectSameBits, movementData, reference } from '../collectives/data.js';

export { DTYPES, opsFor, isInt, rankInput, reference, expectSameBits, movementData, concat, dt } from '../collectives/data.js';
export { allocArray };

/** Run fn on every rank of a local world concurrently. */
export const onAll = <R>(comms: Communicator[], fn: (c: Communicator, rank: number) => Promise<R>): Promise<R[]> =>
  Promise.all(comms.map((c) => fn(c, c.rank)));


const refs = new Map<string, TypedArray>();
export function ref(dtype: DType, op: ReduceOpName, size: number, count: number): TypedArray {
  const k = `${dtype}/${op}/${size}/${count}`;
  let v = refs.get(k);
  if (!v) refs.set(k, (v = reference(dtype, op, size, count)));
  return v;
}

/** A running tally so each test can assert how many checks it made. */
export class Tally {
  checks = 0;
  same(actual: TypedArray | undefined, expected: TypedArray, what: string): void {
    if (actual === undefined) throw new Error(`${what}: result undefined`);
    expectSameBits(actual, expected, what);
    this.checks++;
  }
}


/** alltoallv test layout: what rank r sends to rank j. */
export const vCount = (count: number, r: number, j: number): number => (r + 2 * j + count) % (count + 2);
/** allgatherv test layout: what rank k contributes (rank 1 contributes nothing). */
export const gvCount = (count: number, k: number): number => (k === 1 ? 0 : count + k);

/** Movement collectives (allgather, alltoall, broadcast, gather, scatter, allgatherv, alltoallv, barrier) at one count. */
export async function movementRound(comms: Communicator[], dtype: DType, count: number, t: Tally, label: string): Promise<void> {
  const size = comms.length;
  const o = dt(dtype);
  const mine = (r: number, n: number, salt = 0) => movementData(dtype, r, n, salt);

  // allgather
  const agExpected = concat(dtype, comms.map((_, r) => mine(r, count)));
  await onAll(comms, async (c, r) => t.same(await c.allgather(mine(r, count), allocArray(dtype, count * size), o), agExpected, `${label} allgather r${r}`));
  // in place (MPI_IN_PLACE, all_gather_into_tensor): src is this rank's block of dst
  await onAll(comms, async (c, r) => {
    const dst = allocArray(dtype, count * size);
    dst.set(mine(r, count) as never, r * count);
    const got = await c.allgather(dst.subarray(r * count, (r + 1) * count) as TypedArray, dst, o);
    if (got !== dst) throw new Error(`${label} allgather in place returned another array`);
    t.same(dst, agExpected, `${label} allgather in place r${r}`);
  });

  // alltoall: block j of rank r's src goes to rank j
  const a2aSrc = comms.map((_, r) => mine(r, count * size, 2));
  await onAll(comms, async (c, r) => {
    const exp = concat(dtype, comms.map((_, i) => a2aSrc[i].subarray(r * count, (r + 1) * count) as TypedArray));
    t.same(await c.alltoall(a2aSrc[r].slice() as TypedArray, allocArray(dtype, count * size), o), exp, `${label} alltoall r${r}`);
  });

  // broadcast from a root that varies with count
  const bRoot = count % size;
  const bExp = mine(bRoot, count, 3);
  await onAll(comms, async (c, r) => t.same(await c.broadcast(r === bRoot ? mine(r, count, 3) : allocArray(dtype, count), { root: bRoot, ...o }), bExp, `${label} broadcast root=${bRoot} r${r}`));

  // gather to the last rank
  const gRoot = size - 1;
  const gExp = concat(dtype, comms.map((_, r) => mine(r, count, 4)));
  await onAll(comms, async (c, r) => {
    const got = await c.gather(mine(r, count, 4), r === gRoot ? allocArray(dtype, count * size) : undefined, { root: gRoot, ...o });
    if (r === gRoot) t.same(got, gExp, `${label} gather r${r}`);
    else if (got !== undefined) throw new Error(`${label} gather returned data off the root`);
  });

  // scatter from rank 0 and from the last rank
  for (const sRoot of new Set([0, size - 1])) {
    const sSrc = mine(sRoot, count * size, 5);
    await onAll(comms, async (c, r) => t.same(await c.scatter(r === sRoot ? sSrc.slice() as TypedArray : undefined, allocArray(dtype, count), { root: sRoot, ...o }), sSrc.subarray(r * count, (r + 1) * count) as TypedArray, `${label} scatter root=${sRoot} r${r}`));
  }

  // allgatherv with uneven (and one empty) contribution
  const recvCounts = comms.map((_, k) => gvCount(count, k));
  const gvExp = concat(dtype, comms.map((_, k) => mine(k, recvCounts[k], 6)));
  await onAll(comms, async (c, r) => t.same(await c.allgatherv(mine(r, recvCounts[r], 6), allocArray(dtype, gvExp.length), recvCounts, o), gvExp, `${label} allgatherv r${r}`));
  await onAll(comms, async (c, r) => {
    const at = recvCounts.slice(0, r).reduce((a, b) => a + b, 0);
    const dst = allocArray(dtype, gvExp.length);
    dst.set(mine(r, recvCounts[r], 6) as never, at);
    await c.allgatherv(dst.subarray(at, at + recvCounts[r]) as TypedArray, dst, recvCounts, o);
    t.same(dst, gvExp, `${label} allgatherv in place r${r}`);
  });

  // alltoallv with per-pair counts
  const sendCounts = (r: number) => comms.map((_, j) => vCount(count, r, j));
  const offsets = (cs: number[]) => cs.map((_, j) => cs.slice(0, j).reduce((a, b) => a + b, 0));
  const vSrc = comms.map((_, r) => mine(r, sendCounts(r).reduce((a, b) => a + b, 0), 7));
  await onAll(comms, async (c, r) => {
    const rc = comms.map((_, i) => vCount(count, i, r));
    const exp = concat(dtype, comms.map((_, i) => {
      const off = offsets(sendCounts(i))[r];
      return vSrc[i].subarray(off, off + rc[i]) as TypedArray;
    }));
    t.same(await c.alltoallv(vSrc[r].slice() as TypedArray, sendCounts(r), allocArray(dtype, exp.length), rc, o), exp, `${label} alltoallv r${r}`);
  });
}

/** Barrier: nobody leaves before the last rank enters (checked over event-loop turns, not time). */
export async function barrierRound(comms: Communicator[], t: Tally, label: string): Promise<void> {
  const size = comms.length;
  const left: boolean[] = new Array(size).fill(false);
  const early = comms.slice(0, size - 1).map((c) => c.barrier().then(() => { left[c.rank] = true; }));
  for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
  if (size > 1 && left.some(Boolean)) throw new Error(`${label} barrier: a rank left before rank ${size - 1} entered`);
  await Promise.all([...early, comms[size - 1].barrier().then(() => { left[size - 1] = true; })]);
  if (!left.every(Boolean)) throw new Error(`${label} barrier: not every rank left`);
  t.checks++;
}

/** allreduce (in place and into `out`), reduceScatter and reduce (in place at root 0, into `out` at the last rank). */
export async function reductionRound(comms: Communicator[], dtype: DType, op: ReduceOpName, count: number, t: Tally, label: string, algorithm?: string): Promise<void> {
  const size = comms.length;
  const o = { op, ...dt(dtype) };
  const input = (r: number, n: number) => rankInputCached(dtype, op, r, n);
  const exp = ref(dtype, op, size, count);
  const L = `${label} ${dtype} ${op} count=${count}${algorithm ? ` ${algorithm}` : ''}`;

  // allreduce in place
  await onAll(comms, async (c, r) => {
    const buf = input(r, count).slice() as TypedArray;
    const got = await c.allreduce(buf, { ...o, algorithm });
    if (got !== buf) throw new Error(`${L} allreduce in place returned another array`);
    t.same(buf, exp, `${L} allreduce in-place r${r}`);
  });
  // allreduce out of place: input untouched
  await onAll(comms, async (c, r) => {
    const src = input(r, count).slice() as TypedArray;
    const out = allocArray(dtype, count);
    const got = await c.allreduce(src, { ...o, algorithm, out });
    if (got !== out) throw new Error(`${L} allreduce out-of-place returned another array`);
    t.same(out, exp, `${L} allreduce out r${r}`);
    t.same(src, input(r, count), `${L} allreduce out: src untouched r${r}`);
  });
  if (algorithm !== undefined) return;

  // reduceScatter: block r of op over every rank's count×size input
  const rsExp = ref(dtype, op, size, count * size);
  await onAll(comms, async (c, r) => {
    const dst = allocArray(dtype, count);
    await c.reduceScatter(input(r, count * size).slice() as TypedArray, dst, o);
    t.same(dst, rsExp.subarray(r * count, (r + 1) * count) as TypedArray, `${L} reduceScatter r${r}`);
  });
  // in place (MPI_IN_PLACE, reduce_scatter_tensor into a view): dst is this rank's block of src
  await onAll(comms, async (c, r) => {
    const src = input(r, count * size).slice() as TypedArray;
    const dst = src.subarray(r * count, (r + 1) * count) as TypedArray;
    const got = await c.reduceScatter(src, dst, o);
    if (got !== dst) throw new Error(`${L} reduceScatter in place returned another array`);
    t.same(dst, rsExp.subarray(r * count, (r + 1) * count) as TypedArray, `${L} reduceScatter in place r${r}`);
  });

  // reduce: in place at root 0, into out at root size-1
  for (const [root, useOut] of [[0, false], [size - 1, true]] as const) {
    if (useOut && root === 0 && size === 1) continue;
    await onAll(comms, async (c, r) => {
      const src = input(r, count).slice() as TypedArray;
      const out = useOut && r === root ? allocArray(dtype, count) : undefined;
      const got = await c.reduce(src, { ...o, root, out });
      if (r === root) {
        t.same(got, exp, `${L} reduce root=${root} ${useOut ? 'out' : 'in-place'} r${r}`);
        if (useOut) t.same(src, input(r, count), `${L} reduce out: src untouched r${r}`);
      } else if (got !== undefined) throw new Error(`${L} reduce returned data off the root`);
    });
  }
}

const inputs = new Map<string, TypedArray>();
function rankInputCached(dtype: DType, op: ReduceOpName, r: number, n: number): TypedArray {
  const k = `${dtype}/${op}/${r}/${n}`;
  let v = inputs.get(k);
  if (!v) inputs.set(k, (v = rankInputRaw(dtype, op, r, n)));
  return v;
}
import { rankInput as rankInputRaw } from '../collectives/data.js';
