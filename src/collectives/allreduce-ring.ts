/**
 * Ring allreduce = ring reduce-scatter + ring allgather, segmented and pipelined.
 *
 * buf is cut into n chunks (first count % n chunks one element longer); chunk c ends up owned
 * by rank c. Reduce-scatter: at step s (0…n-2) rank r receives chunk (r - s - 2) from r-1,
 * adds its own copy, and forwards it at step s+1; rank r starts by sending its raw chunk r-1.
 * Chunks are cut into segments of SEGMENT_BYTES: the receive of segment k+1 is posted before
 * segment k is reduced, and a reduced segment is forwarded at once, so transfer, reduction and
 * the next hop overlap. Each rank sends 2(n-1)/n of the buffer; every chunk is reduced along
 * one chain then copied, so all ranks end with identical bits.
 */
import type { DType, TypedArray } from '../dtype.js';
import { getReducer, type ReduceOp } from '../kernels/reduce.js';
import type { CollectiveP2P } from './p2p.js';
import { ringAllgatherBlocks } from './allgather-ring.js';
import { SEGMENT_BYTES, allocLike, bytesAt, evenBlocks, mod, quiet, segmentElems, sub } from './util.js';

export async function allreduceRing(
  p2p: CollectiveP2P, buf: TypedArray, dtype: DType, op: ReduceOp, segmentBytes = SEGMENT_BYTES,
): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  if (n === 1 || buf.length === 0) return;
  const reduce = getReducer(dtype, op);
  const { counts, displs } = evenBlocks(buf.length, n);
  const seg = Math.min(segmentElems(buf, segmentBytes), counts[0]);
  const right = (r + 1) % n;
  const left = (r - 1 + n) % n;

  // ---- reduce-scatter
  const sends: Promise<void>[] = [];
  const first = mod(r - 1, n);
  for (let o = 0; o < counts[first]; o += seg) {
    sends.push(quiet(p2p.send(right, bytesAt(buf, displs[first] + o, Math.min(seg, counts[first] - o)))));
  }
  // (offset, length, forward?) of each incoming segment, in the order left sends them.
  const msgs: number[] = [];
  for (let s = 0; s < n - 1; s++) {
    const c = mod(r - s - 2, n);
    for (let o = 0; o < counts[c]; o += seg) msgs.push(displs[c] + o, Math.min(seg, counts[c] - o), s < n - 2 ? 1 : 0);
  }
  const tmp = [allocLike(buf, seg), allocLike(buf, seg)];
  const recvAt = (m: number) => quiet(p2p.recv(left, bytesAt(tmp[m & 1], 0, msgs[3 * m + 1])));
  const total = msgs.length / 3;
  let pending = total > 0 ? recvAt(0) : undefined;
  for (let m = 0; m < total; m++) {
    // tmp[(m+1) & 1] was consumed by the reduction of m-1, so it is free for the next receive.
    const next = m + 1 < total ? recvAt(m + 1) : undefined;
    await pending;
    const off = msgs[3 * m];
    const len = msgs[3 * m + 1];
    reduce(sub(buf, off, len), sub(tmp[m & 1], 0, len));
    if (msgs[3 * m + 2]) sends.push(quiet(p2p.send(right, bytesAt(buf, off, len))));
    pending = next;
  }
  // The allgather overwrites the chunks sent above: they must have left first.
  await Promise.all(sends);

  // ---- allgather: rank r now owns chunk r.
  await ringAllgatherBlocks(p2p, buf, counts, displs, seg);
}
