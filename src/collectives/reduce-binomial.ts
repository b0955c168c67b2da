/**
 * Binomial-tree reduce to any root: ceil(log2 n) rounds. With v = (rank - root) mod n, a rank
 * first combines its children v + 1, v + 2, v + 4, … (below its lowest set bit, in that order),
 * then sends to its parent v - lowbit(v). The combination order depends only on (n, root):
 * acc = op(acc, child) with children covering ever higher v, so results are reproducible.
 * The next child's receive is posted before the current one is reduced. Leaves send src
 * directly; inner ranks reduce into a scratch copy (the root into `out`); src is not modified.
 */
import type { DType, TypedArray } from '../dtype.js';
import { getReducer, type ReduceOp } from '../kernels/reduce.js';
import type { CollectiveP2P } from './p2p.js';
import { allocLike, bytesAt, check, copyElems, quiet, xrecv, xsend } from './util.js';

export async function reduceBinomial(
  p2p: CollectiveP2P, src: TypedArray, out: TypedArray | undefined, root: number, dtype: DType, op: ReduceOp,
): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  const count = src.length;
  check(Number.isInteger(root) && root >= 0 && root < n, 'reduce: root out of range');
  check(r !== root || (out !== undefined && out.length === count), 'reduce: the root needs an output as long as src');
  const v = (r - root + n) % n;
  const children: number[] = [];
  let parent = -1;
  for (let mask = 1; mask < n; mask <<= 1) {
    if (v & mask) { parent = (r - mask + n) % n; break; }
    if (v + mask < n) children.push((r + mask) % n);
  }
  let acc = src;
  if (children.length > 0 || r === root) {
    acc = r === root ? out! : allocLike(src, count);
    copyElems(acc, 0, src, 0, count);
  }
  if (count === 0) return;
  if (children.length > 0) {
    const reduce = getReducer(dtype, op);
    // Two receive buffers so the next child's message can land while we reduce this one.
    const tmp = children.length > 1 ? [allocLike(src, count), allocLike(src, count)] : [allocLike(src, count)];
    const recvAt = (i: number) => quiet(xrecv(p2p, children[i], bytesAt(tmp[i & 1], 0, count)));
    let pending = recvAt(0);
    for (let i = 0; i < children.length; i++) {
      const next = i + 1 < children.length ? recvAt(i + 1) : undefined;
      await pending;
      reduce(acc, tmp[i & 1]);
      if (next) pending = next;
    }
  }
  if (parent >= 0) await xsend(p2p, parent, bytesAt(acc, 0, count));
}
