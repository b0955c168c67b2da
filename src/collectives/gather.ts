/**
 * Linear gather(v): every non-root sends its block to the root, which posts all receives at
 * once, straight into dst. The root takes in the same bytes as with a binomial tree, without
 * the tree's staging copies; only the per-message latency is O(n) at the root.
 */
import type { TypedArray } from '../dtype.js';
import type { CollectiveP2P } from './p2p.js';
import { bytesAt, check, copyElems, prefixSums, quiet, xrecv, xsend } from './util.js';

export function gatherLinear(p2p: CollectiveP2P, src: TypedArray, dst: TypedArray | undefined, root: number): Promise<void> {
  return gathervLinear(p2p, src, dst, new Array<number>(p2p.size).fill(src.length), root);
}

/** Rank k's src (recvCounts[k] elements) lands at dst[displs[k]…] on the root; counts matter only there. */
export async function gathervLinear(
  p2p: CollectiveP2P, src: TypedArray, dst: TypedArray | undefined, recvCounts: readonly number[], root: number,
  displs: readonly number[] = prefixSums(recvCounts),
): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  check(Number.isInteger(root) && root >= 0 && root < n, 'gather: root out of range');
  if (r !== root) {
    await xsend(p2p, root, bytesAt(src, 0, src.length));
    return;
  }
  check(dst !== undefined && recvCounts.length === n && src.length === recvCounts[r], 'gather: root needs dst and one count per rank');
  for (let k = 0; k < n; k++) check(displs[k] + recvCounts[k] <= dst.length, 'gather: a block lies outside dst');
  copyElems(dst, displs[r], src, 0, src.length);
  const recvs: Promise<void>[] = [];
  for (let k = 0; k < n; k++) if (k !== r) recvs.push(quiet(xrecv(p2p, k, bytesAt(dst, displs[k], recvCounts[k]))));
  await Promise.all(recvs);
}
