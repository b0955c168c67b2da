/**
 * Ring reduce-scatter (per-rank block sizes `recvCounts`; equal sizes are the common case).
 * Block c of src is destined for rank c. At step s (0…n-2) rank r receives the partial sum of
 * block (r - s - 2) from r-1, adds its own src block, and forwards it at step s+1; step 0 sends
 * the raw src block r-1, and the last step (block r) lands straight in dst. src is not modified.
 *
 * Segmented like allreduce-ring: the receive of segment k+1 is posted before segment k is
 * reduced and forwarded. Partials live in two block-sized work buffers used by alternate steps;
 * before a step reuses one, the sends that were still reading it are awaited.
 */
import type { DType, TypedArray } from '../dtype.js';
import { getReducer, type ReduceOp } from '../kernels/reduce.js';
import type { CollectiveP2P } from './p2p.js';
import { SEGMENT_BYTES, allocLike, bytesAt, check, copyElems, mod, prefixSums, quiet, segmentElems, sub } from './util.js';

export async function reduceScatterRing(
  p2p: CollectiveP2P, src: TypedArray, dst: TypedArray, recvCounts: readonly number[], dtype: DType, op: ReduceOp,
  segmentBytes = SEGMENT_BYTES,
): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  const displs = prefixSums(recvCounts);
  check(recvCounts.length === n, 'reduceScatter: one count per rank');
  check(src.length === displs[n] && dst.length === recvCounts[r], 'reduceScatter: buffer lengths do not match the counts');
  if (n === 1) { copyElems(dst, 0, src, 0, dst.length); return; }
  if (displs[n] === 0) return;
  const reduce = getReducer(dtype, op);
  const maxBlock = Math.max(...recvCounts);
  const seg = Math.min(segmentElems(src, segmentBytes), maxBlock);
  const right = (r + 1) % n;
  const left = (r - 1 + n) % n;

  const sends: Promise<void>[] = [];
  const first = mod(r - 1, n);
  for (let o = 0; o < recvCounts[first]; o += seg) {
    sends.push(quiet(p2p.send(right, bytesAt(src, displs[first] + o, Math.min(seg, recvCounts[first] - o)))));
  }
  // (step, block, offset within block, length) of each incoming segment, in left's send order.
  const msgs: number[] = [];
  for (let s = 0; s < n - 1; s++) {
    const c = mod(r - s - 2, n);
    for (let o = 0; o < recvCounts[c]; o += seg) msgs.push(s, c, o, Math.min(seg, recvCounts[c] - o));
  }
  const work = n > 2 ? [allocLike(src, maxBlock), allocLike(src, maxBlock)] : [];
  const target = (s: number) => (s === n - 2 ? dst : work[s & 1]);
  // Forwarding sends still reading work[0] / work[1]: a new step's receive into a work buffer waits for them.
  const readers: Promise<void>[][] = [[], []];
  const drain = async (b: number) => { await Promise.all(readers[b]); readers[b] = []; };

  const recvAt = (m: number) => quiet(p2p.recv(left, bytesAt(target(msgs[4 * m]), msgs[4 * m + 2], msgs[4 * m + 3])));
  const total = msgs.length / 4;
  let pending = total > 0 ? recvAt(0) : undefined;
  for (let m = 0; m < total; m++) {
    const [s, c, o, len] = [msgs[4 * m], msgs[4 * m + 1], msgs[4 * m + 2], msgs[4 * m + 3]];
    const s1 = m + 1 < total ? msgs[4 * (m + 1)] : -1;
    // The next receive starts a new step in a work buffer. If that is the buffer of the segment in
    // hand (possible only when an empty block skipped a step), post it after forwarding this one.
    const newStep = s1 >= 0 && s1 !== s && s1 < n - 2;
    const sameBuffer = newStep && ((s1 - s) & 1) === 0;
    let next: Promise<void> | undefined;
    if (s1 >= 0 && !sameBuffer) {
      if (newStep) await drain(s1 & 1);
      next = recvAt(m + 1);
    }
    await pending;
    const t = target(s);
    reduce(sub(t, o, len), sub(src, displs[c] + o, len));
    if (s < n - 2) {
      const fwd = quiet(p2p.send(right, bytesAt(t, o, len)));
      readers[s & 1].push(fwd);
      sends.push(fwd);
    }
    if (sameBuffer) {
      await drain(s1 & 1);
      next = recvAt(m + 1);
    }
    pending = next;
  }
  await Promise.all(sends);
}
