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
import { allocLike, bytesAt, foldToPow2, pow2Floor, sendrecv, unfoldedRank, unfoldFromPow2 } from './util.js';

export async function allreduceRecursiveDoubling(p2p: CollectiveP2P, buf: TypedArray, dtype: DType, op: ReduceOp): Promise<void> {
  const n = p2p.size;
  const count = buf.length;
  if (n === 1 || count === 0) return;
  const reduce = getReducer(dtype, op);
  const p = pow2Floor(n);
  const rem = n - p;
  const tmp = allocLike(buf, count);
  const all = bytesAt(buf, 0, count);
  const tmpBytes = bytesAt(tmp, 0, count);

  const vr = await foldToPow2(p2p, buf, reduce, () => tmp);
  if (vr < 0) return;
  for (let mask = 1; mask < p; mask <<= 1) {
    const peer = unfoldedRank(vr ^ mask, rem);
    await sendrecv(p2p, peer, all, peer, tmpBytes);
    reduce(buf, tmp);
  }
  await unfoldFromPow2(p2p, buf);
}
