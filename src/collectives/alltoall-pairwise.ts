/**
 * Pairwise-exchange all-to-all(v): n-1 steps; at step k rank i sends its block for (i+k) % n
 * and receives the block from (i-k+n) % n, so every rank talks to exactly one peer per step
 * and no link is oversubscribed. The own block is a local copy.
 * alltoallv: block j of src is sendCounts[j] elements at sdispls[j] (default: prefix sums),
 * likewise recvCounts / rdispls for dst.
 */
import type { TypedArray } from '../dtype.js';
import type { CollectiveP2P } from './p2p.js';
import { bytesAt, check, checkAlltoallv, copyElems, prefixSums, sendrecv } from './util.js';

export function alltoallPairwise(p2p: CollectiveP2P, src: TypedArray, dst: TypedArray): Promise<void> {
  const n = p2p.size;
  check(src.length % n === 0 && dst.length === src.length, 'alltoall: src and dst need n equal blocks');
  const counts = new Array<number>(n).fill(src.length / n);
  return alltoallvPairwise(p2p, src, counts, dst, counts);
}

export async function alltoallvPairwise(
  p2p: CollectiveP2P, src: TypedArray, sendCounts: readonly number[], dst: TypedArray, recvCounts: readonly number[],
  sdispls: readonly number[] = prefixSums(sendCounts), rdispls: readonly number[] = prefixSums(recvCounts),
): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  checkAlltoallv(n, r, src, sendCounts, sdispls, dst, recvCounts, rdispls);
  copyElems(dst, rdispls[r], src, sdispls[r], sendCounts[r]);
  for (let k = 1; k < n; k++) {
    const to = (r + k) % n;
    const from = (r - k + n) % n;
    await sendrecv(p2p, to, bytesAt(src, sdispls[to], sendCounts[to]), from, bytesAt(dst, rdispls[from], recvCounts[from]));
  }
}
