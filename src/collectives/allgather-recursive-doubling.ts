/**
 * Recursive-doubling allgather(v) for small messages: log2(p) rounds; in the round with
 * distance `mask` a rank swaps everything it has gathered so far (a contiguous range) with
 * rank ^ mask, receiving straight into dst.
 *
 * Non-power-of-two n: the fold, not a ring fallback. Even ranks < 2·rem first send their block
 * to the odd rank above and at the end receive the whole result from it; virtual rank v then
 * stands for real ranks [2v, 2v+2) (v < rem) or [v + rem], contiguous, so every gathered range
 * stays one contiguous piece of dst. Costs one extra full-size message for those pairs.
 */
import type { TypedArray } from '../dtype.js';
import type { CollectiveP2P } from './p2p.js';
import { bytesAt, check, copyElems, pow2Floor, prefixSums, sendrecv, xrecv, xsend } from './util.js';

export function allgatherRecursiveDoubling(p2p: CollectiveP2P, src: TypedArray, dst: TypedArray): Promise<void> {
  return allgathervRecursiveDoubling(p2p, src, dst, new Array<number>(p2p.size).fill(src.length));
}

export async function allgathervRecursiveDoubling(
  p2p: CollectiveP2P, src: TypedArray, dst: TypedArray, recvCounts: readonly number[],
): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  const displs = prefixSums(recvCounts);
  const total = displs[n];
  check(recvCounts.length === n, 'allgatherv: one count per rank');
  check(src.length === recvCounts[r] && dst.length === total, 'allgatherv: buffer lengths do not match the counts');
  copyElems(dst, displs[r], src, 0, src.length);
  if (n === 1 || total === 0) return;
  const p = pow2Floor(n);
  const rem = n - p;
  const real = (v: number) => (v < rem ? 2 * v + 1 : v + rem);
  const start = (v: number) => displs[v < rem ? 2 * v : v + rem];
  const range = (vLo: number, vHi: number) => bytesAt(dst, start(vLo), start(vHi) - start(vLo));

  let vr: number;
  if (r < 2 * rem) {
    if (r % 2 === 0) {
      await xsend(p2p, r + 1, bytesAt(dst, displs[r], recvCounts[r]));
      await xrecv(p2p, r + 1, bytesAt(dst, 0, total));
      return;
    }
    await xrecv(p2p, r - 1, bytesAt(dst, displs[r - 1], recvCounts[r - 1]));
    vr = r >> 1;
  } else {
    vr = r - rem;
  }

  for (let mask = 1; mask < p; mask <<= 1) {
    const mine = vr & ~(mask - 1);
    const theirs = mine ^ mask;
    await sendrecv(p2p, real(vr ^ mask), range(mine, mine + mask), real(vr ^ mask), range(theirs, theirs + mask));
  }

  if (r < 2 * rem) await xsend(p2p, r - 1, bytesAt(dst, 0, total));
}
