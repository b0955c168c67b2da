/**
 * Ring allgather / allgatherv. n-1 steps: at step s rank r forwards block (r - s) to r+1 and
 * receives block (r - s - 1) from r-1 straight into dst. Blocks are cut into segments
 * (SEGMENT_BYTES) and each segment is forwarded as soon as it lands, so the ring is pipelined
 * and no message is larger than a segment. Bandwidth-optimal: (n-1)/n of the output per rank.
 */
import type { TypedArray } from '../dtype.js';
import type { CollectiveP2P } from './p2p.js';
import { SEGMENT_BYTES, bytesAt, check, copyElems, mod, prefixSums, quiet, segmentElems } from './util.js';

/** dst = concat of every rank's src (all the same length). */
export function allgatherRing(p2p: CollectiveP2P, src: TypedArray, dst: TypedArray, segmentBytes = SEGMENT_BYTES): Promise<void> {
  return allgathervRing(p2p, src, dst, new Array<number>(p2p.size).fill(src.length), segmentBytes);
}

/** dst = concat of every rank's src; rank k contributes recvCounts[k] elements. */
export async function allgathervRing(
  p2p: CollectiveP2P, src: TypedArray, dst: TypedArray, recvCounts: readonly number[], segmentBytes = SEGMENT_BYTES,
): Promise<void> {
  const displs = prefixSums(recvCounts);
  check(recvCounts.length === p2p.size, 'allgatherv: one count per rank');
  check(src.length === recvCounts[p2p.rank] && dst.length === displs[p2p.size], 'allgatherv: buffer lengths do not match the counts');
  copyElems(dst, displs[p2p.rank], src, 0, src.length);
  await ringAllgatherBlocks(p2p, dst, recvCounts, displs, segmentElems(dst, segmentBytes));
}

/**
 * The ring allgather phase on `buf`, where rank r already holds block r
 * ([displs[r], displs[r] + counts[r])). Also the second half of ring allreduce.
 */
export async function ringAllgatherBlocks(
  p2p: CollectiveP2P, buf: TypedArray, counts: readonly number[], displs: readonly number[], seg: number,
): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  if (n === 1) return;
  const right = (r + 1) % n;
  const left = (r - 1 + n) % n;
  const sends: Promise<void>[] = [];
  for (let o = 0; o < counts[r]; o += seg) {
    sends.push(quiet(p2p.send(right, bytesAt(buf, displs[r] + o, Math.min(seg, counts[r] - o)))));
  }
  // (offset, length, forward?) for every segment we receive, in the order left sends them.
  const msgs: number[] = [];
  for (let s = 0; s < n - 1; s++) {
    const c = mod(r - s - 1, n);
    for (let o = 0; o < counts[c]; o += seg) msgs.push(displs[c] + o, Math.min(seg, counts[c] - o), s < n - 2 ? 1 : 0);
  }
  const recvAt = (m: number) => quiet(p2p.recv(left, bytesAt(buf, msgs[3 * m], msgs[3 * m + 1])));
  const total = msgs.length / 3;
  // Keep the next receive posted while we wait on (and forward) the current one.
  let pending = total > 0 ? recvAt(0) : undefined;
  for (let m = 0; m < total; m++) {
    const next = m + 1 < total ? recvAt(m + 1) : undefined;
    await pending;
    if (msgs[3 * m + 2]) sends.push(quiet(p2p.send(right, bytesAt(buf, msgs[3 * m], msgs[3 * m + 1]))));
    pending = next;
  }
  await Promise.all(sends);
}
