/**
 * Allgather / allgatherv through shared memory (all ranks on one host; see SharedGroup in
 * p2p.ts). Blocks are cut into pieces of up to slotBytes; per piece index: every rank copies
 * its piece into its own slot, sync, every rank copies every other rank's piece out (its own
 * comes straight from src). One sync per piece index, each byte copied in once and out n-1
 * times, no messages.
 *
 * Reuse of the two halves (the rule in p2p.ts): every rank takes nextHalf() and makes one
 * sync() per piece index, even when its own block is shorter (allgatherv) and it writes
 * nothing, so halves and steps stay in step. Reads of piece k happen between sync k and
 * this rank's arrival at sync k+1; a rank writes half h again for piece k+2 only after sync
 * k+1 completed.
 */
import type { TypedArray } from '../dtype.js';
import { isBlockAt, overlaps } from '../kernels/view.js';
import type { SharedGroup } from './p2p.js';
import { bytesAt, check, prefixSums, sharedChunks } from './util.js';

/** dst = concat of every rank's src (all the same length). */
export function allgatherShared(g: SharedGroup, src: TypedArray, dst: TypedArray): Promise<void> | undefined {
  return allgathervShared(g, src, dst, new Array<number>(g.size).fill(src.length));
}

/** dst = concat of every rank's src; rank k contributes recvCounts[k] elements (at the prefix sum of the counts before it). */
export function allgathervShared(g: SharedGroup, src: TypedArray, dst: TypedArray, recvCounts: readonly number[]): Promise<void> | undefined {
  const n = g.size;
  const me = g.rank;
  const es = dst.BYTES_PER_ELEMENT;
  const displs = prefixSums(recvCounts);
  check(recvCounts.length === n, 'allgatherv: one count per rank');
  check(src.length === recvCounts[me] && dst.length >= displs[n], 'allgatherv: buffer lengths do not match the counts');
  // Other ranks' pieces land in dst while later pieces of src are still to be copied in: src
  // overlapping dst is copied, unless it is exactly this rank's block (in place), which only
  // this rank's own pieces are written to.
  const inPlace = isBlockAt(src, dst, displs[me]);
  const own = bytesAt(!inPlace && overlaps(src, dst) ? (src.slice() as TypedArray) : src, 0, src.length);
  const out = bytesAt(dst, 0, displs[n]);
  if (!inPlace) out.set(own, displs[me] * es);
  let maxBytes = 0;
  for (const c of recvCounts) maxBytes = Math.max(maxBytes, c * es);
  if (n === 1 || maxBytes === 0) return undefined;
  const piece = g.slotBytes;
  return sharedChunks(g, Math.ceil(maxBytes / piece),
    (k, half) => {
      const off = k * piece;
      if (own.length > off) g.slot(me, half).set(own.subarray(off, Math.min(own.length, off + piece)));
    },
    (k, half) => {
      const off = k * piece;
      // Start at the next rank, so the ranks do not all read one slot at once.
      for (let i = 1; i < n; i++) {
        const r = (me + i) % n;
        const len = Math.min(piece, recvCounts[r] * es - off);
        if (len > 0) out.set(g.slot(r, half).subarray(0, len), displs[r] * es + off);
      }
    });
}
