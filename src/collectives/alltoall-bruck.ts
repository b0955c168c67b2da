/**
 * Bruck all-to-all for small blocks: ceil(log2 n) rounds instead of n-1, at the price of
 * moving ~half the data every round and packing/unpacking.
 *   1. tmp[i] = src block for rank (r + i) % n (local rotation).
 *   2. For k = 1, 2, 4, … < n: send every tmp block whose index has bit k to (r + k) % n,
 *      receive the same indices from (r - k) % n into tmp. A block at index i moves i ranks in total.
 *   3. tmp[i] now came from rank (r - i) % n: dst block (r - i) % n = tmp[i].
 */
import type { TypedArray } from '../dtype.js';
import type { CollectiveP2P } from './p2p.js';
import { allocLike, bytesAt, check, copyElems, sendrecv } from './util.js';

export async function alltoallBruck(p2p: CollectiveP2P, src: TypedArray, dst: TypedArray): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  check(src.length % n === 0 && dst.length === src.length, 'alltoall: src and dst need n equal blocks');
  const b = src.length / n;
  if (n === 1 || b === 0) { copyElems(dst, 0, src, 0, src.length); return; }

  const tmp = allocLike(src, src.length);
  for (let i = 0; i < n; i++) copyElems(tmp, i * b, src, ((r + i) % n) * b, b);
  // Largest packed message: the indices in [1, n) with a given bit set (at most n/2 of them).
  const pack = allocLike(src, Math.ceil(n / 2) * b);
  const unpack = allocLike(src, Math.ceil(n / 2) * b);
  for (let k = 1; k < n; k <<= 1) {
    let m = 0;
    for (let i = k; i < n; i++) if (i & k) copyElems(pack, m++ * b, tmp, i * b, b);
    await sendrecv(p2p, (r + k) % n, bytesAt(pack, 0, m * b), (r - k + n) % n, bytesAt(unpack, 0, m * b));
    m = 0;
    for (let i = k; i < n; i++) if (i & k) copyElems(tmp, i * b, unpack, m++ * b, b);
  }
  for (let i = 0; i < n; i++) copyElems(dst, ((r - i + n) % n) * b, tmp, i * b, b);
}
