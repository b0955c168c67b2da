/**
 * Recursive-doubling allreduce for small messages: log2(p) rounds, each exchanging the whole
 * buffer with rank ^ mask and reducing. Latency-optimal, bandwidth-poor.
 *
 * Non-power-of-two n (p = largest power of two <= n, rem = n - p), the standard fold: among
 * the first 2·rem ranks each even rank sends its data to the odd rank above it and sits out;
 * the p survivors run the doubling; then each odd rank sends the result back to its even partner.
 * With a commutative op both partners compute the same bits, so all ranks agree.
 */
import type { DType, TypedArray } from '../dtype.js';
import { getReducer, type ReduceOp } from '../kernels/reduce.js';
import type { CollectiveP2P } from './p2p.js';
import { allocLike, bytesAt, pow2Floor, sendrecv, xrecv, xsend } from './util.js';

export async function allreduceRecursiveDoubling(p2p: CollectiveP2P, buf: TypedArray, dtype: DType, op: ReduceOp): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  const count = buf.length;
  if (n === 1 || count === 0) return;
  const reduce = getReducer(dtype, op);
  const p = pow2Floor(n);
  const rem = n - p;
  const all = bytesAt(buf, 0, count);
  const tmp = allocLike(buf, count);
  const tmpBytes = bytesAt(tmp, 0, count);

  // Fold the extra ranks in.
  let vr: number;
  if (r < 2 * rem) {
    if (r % 2 === 0) {
      await xsend(p2p, r + 1, all);
      await xrecv(p2p, r + 1, all);
      return;
    }
    await xrecv(p2p, r - 1, tmpBytes);
    reduce(buf, tmp);
    vr = r >> 1;
  } else {
    vr = r - rem;
  }
  const real = (v: number) => (v < rem ? 2 * v + 1 : v + rem);

  for (let mask = 1; mask < p; mask <<= 1) {
    const peer = real(vr ^ mask);
    await sendrecv(p2p, peer, all, peer, tmpBytes);
    reduce(buf, tmp);
  }

  if (r < 2 * rem) await xsend(p2p, r - 1, all);
}
