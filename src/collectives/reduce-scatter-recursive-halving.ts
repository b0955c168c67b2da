/**
 * Recursive-halving reduce-scatter (per-rank block sizes `recvCounts`): log2(p) rounds; in the
 * round with distance `mask` (p/2 … 1) a rank sends the half of its current range that its
 * partner keeps and reduces the half it keeps, so virtual rank v ends with group v reduced.
 *
 * Non-power-of-two n uses the allreduce fold: even ranks < 2·rem send all of src to the odd
 * rank above and later receive their block from it. Virtual rank v stands for the real ranks
 * [2v, 2v+2) when v < rem, else [v + rem] — contiguous, in rank order, so every range of
 * virtual ranks is one contiguous element range. src is not modified.
 */
import type { DType, TypedArray } from '../dtype.js';
import { getReducer, type ReduceOp } from '../kernels/reduce.js';
import type { CollectiveP2P } from './p2p.js';
import { allocLike, bytesAt, check, copyElems, pow2Floor, prefixSums, sendrecv, sub, xrecv, xsend } from './util.js';

export async function reduceScatterRecursiveHalving(
  p2p: CollectiveP2P, src: TypedArray, dst: TypedArray, recvCounts: readonly number[], dtype: DType, op: ReduceOp,
): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  const displs = prefixSums(recvCounts);
  const total = displs[n];
  check(recvCounts.length === n, 'reduceScatter: one count per rank');
  check(src.length === total && dst.length === recvCounts[r], 'reduceScatter: buffer lengths do not match the counts');
  if (n === 1) { copyElems(dst, 0, src, 0, dst.length); return; }
  if (total === 0) return;
  const reduce = getReducer(dtype, op);
  const p = pow2Floor(n);
  const rem = n - p;
  const real = (v: number) => (v < rem ? 2 * v + 1 : v + rem);
  // First element of virtual rank v's group (v = p gives the end).
  const start = (v: number) => displs[v < rem ? 2 * v : v + rem];

  const work = allocLike(src, total);
  let local = src; // where this rank's current partials live (src until the first reduction)
  let vr: number;
  if (r < 2 * rem) {
    if (r % 2 === 0) {
      await sendrecv(p2p, r + 1, bytesAt(src, 0, total), r + 1, bytesAt(dst, 0, dst.length));
      return;
    }
    await xrecv(p2p, r - 1, bytesAt(work, 0, total));
    reduce(work, src);
    local = work;
    vr = r >> 1;
  } else {
    vr = r - rem;
  }

  let tmp: TypedArray | undefined;
  let lo = 0;
  let hi = p;
  for (let mask = p >> 1; mask > 0; mask >>= 1) {
    const peer = real(vr ^ mask);
    const mid = lo + mask;
    const [keepLo, keepHi, sendLo, sendHi] = (vr & mask) === 0 ? [lo, mid, mid, hi] : [mid, hi, lo, mid];
    const keepOff = start(keepLo);
    const keepLen = start(keepHi) - keepOff;
    const sendBytes = bytesAt(local, start(sendLo), start(sendHi) - start(sendLo));
    if (local === src) {
      // First reduction: receive straight into work, then add our src.
      await sendrecv(p2p, peer, sendBytes, peer, bytesAt(work, keepOff, keepLen));
      reduce(sub(work, keepOff, keepLen), sub(src, keepOff, keepLen));
      local = work;
    } else {
      tmp ??= allocLike(src, keepLen); // the first round's half is the largest
      await sendrecv(p2p, peer, sendBytes, peer, bytesAt(tmp, 0, keepLen));
      reduce(sub(work, keepOff, keepLen), sub(tmp, 0, keepLen));
    }
    lo = keepLo;
    hi = keepHi;
  }

  if (r < 2 * rem) await xsend(p2p, r - 1, bytesAt(work, displs[r - 1], recvCounts[r - 1]));
  copyElems(dst, 0, work, displs[r], recvCounts[r]);
}
