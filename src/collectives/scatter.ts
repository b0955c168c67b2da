/**
 * Linear scatter(v): the root posts all sends at once (each straight from src), every other
 * rank receives its block into dst. Same root bandwidth as a binomial tree, no staging copies.
 */
import type { TypedArray } from '../dtype.js';
import type { CollectiveP2P } from './p2p.js';
import { bytesAt, check, copyElems, prefixSums, quiet, xrecv, xsend } from './util.js';

export function scatterLinear(p2p: CollectiveP2P, src: TypedArray | undefined, dst: TypedArray, root: number): Promise<void> {
  return scattervLinear(p2p, src, new Array<number>(p2p.size).fill(dst.length), dst, root);
}

/** Block k (sendCounts[k] elements at displs[k] of the root's src) goes to rank k's dst; counts matter only at the root. */
export async function scattervLinear(
  p2p: CollectiveP2P, src: TypedArray | undefined, sendCounts: readonly number[], dst: TypedArray, root: number,
  displs: readonly number[] = prefixSums(sendCounts),
): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  check(Number.isInteger(root) && root >= 0 && root < n, 'scatter: root out of range');
  if (r !== root) {
    await xrecv(p2p, root, bytesAt(dst, 0, dst.length));
    return;
  }
  check(src !== undefined && sendCounts.length === n && dst.length === sendCounts[r], 'scatter: root needs src and one count per rank');
  for (let k = 0; k < n; k++) check(displs[k] + sendCounts[k] <= src.length, 'scatter: a block lies outside src');
  const sends: Promise<void>[] = [];
  for (let k = 0; k < n; k++) if (k !== r) sends.push(quiet(xsend(p2p, k, bytesAt(src, displs[k], sendCounts[k]))));
  copyElems(dst, 0, src, displs[r], sendCounts[r]);
  await Promise.all(sends);
}
