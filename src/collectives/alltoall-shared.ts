/**
 * All-to-all(v) through shared memory (all ranks on one host; see SharedGroup in p2p.ts): no
 * messages, each byte copied in once (into the sender's slot) and out once (by its receiver).
 * The own block is copied src → dst directly. Then per chunk c, with E = slotElems / n
 * elements per destination:
 *   1. every rank copies piece c (up to E elements) of its block for each other rank j into
 *      its own slot at j × E, then sync;
 *   2. every rank copies piece c of its block from every other rank's slot (at me × E) into
 *      dst.
 * alltoall's blocks are equal, so every rank knows the number of chunks. alltoallv's ranks
 * know only their own counts, so they first agree on the largest block between any pair: each
 * publishes its largest in its slot, one sync, each reads all (one extra step).
 *
 * Reuse of the two halves (the rule in p2p.ts): one nextHalf() and one sync() per chunk (and
 * for the agreement), on every rank alike. Reads of chunk k happen between sync k and this
 * rank's arrival at sync k+1; a rank writes half h again (chunk k+2) only after sync k+1.
 */
import type { TypedArray } from '../dtype.js';
import type { SharedGroup } from './p2p.js';
import { bytesAt, check, checkAlltoallv, copyElems, prefixSums, sharedChunks } from './util.js';

/** Elements per destination in one chunk (0: the slot holds fewer than n elements). */
export const alltoallSharedPiece = (g: Pick<SharedGroup, 'slotBytes' | 'size'>, elementBytes: number): number =>
  Math.floor(g.slotBytes / elementBytes / g.size);

/** Block j of src goes to rank j; block i of dst comes from rank i (equal blocks, dst not overlapping src). */
export function alltoallShared(g: SharedGroup, src: TypedArray, dst: TypedArray): Promise<void> | undefined {
  const n = g.size;
  check(src.length % n === 0 && dst.length === src.length, 'alltoall: src and dst need n equal blocks');
  const counts = new Array<number>(n).fill(src.length / n);
  const displs = prefixSums(counts);
  return exchange(g, src, counts, displs, dst, counts, displs, src.length / n);
}

/** All-to-all with per-peer counts and displacements (as alltoallvPairwise). */
export function alltoallvShared(
  g: SharedGroup, src: TypedArray, sendCounts: readonly number[], dst: TypedArray, recvCounts: readonly number[],
  sdispls: readonly number[] = prefixSums(sendCounts), rdispls: readonly number[] = prefixSums(recvCounts),
): Promise<void> | undefined {
  const n = g.size;
  const me = g.rank;
  checkAlltoallv(n, me, src, sendCounts, sdispls, dst, recvCounts, rdispls);
  // Agree on the largest block any rank sends any other: it sets the number of chunks.
  let mine = 0;
  for (let j = 0; j < n; j++) if (j !== me) mine = Math.max(mine, sendCounts[j]);
  let largest = 0;
  const agreed = sharedChunks(g, 1,
    (_, half) => { g.slotAs(me, half, LARGEST)[0] = mine; },
    (_, half) => { for (let r = 0; r < n; r++) largest = Math.max(largest, g.slotAs(r, half, LARGEST)[0]); });
  const run = () => exchange(g, src, sendCounts, sdispls, dst, recvCounts, rdispls, largest);
  return agreed ? agreed.then(run) : run();
}

/** The typed view the agreement step publishes through (one float64: counts up to 2^53). */
const LARGEST = new Float64Array(0);

function exchange(
  g: SharedGroup, src: TypedArray, sendCounts: readonly number[], sdispls: readonly number[],
  dst: TypedArray, recvCounts: readonly number[], rdispls: readonly number[], largest: number,
): Promise<void> | undefined {
  const n = g.size;
  const me = g.rank;
  const es = src.BYTES_PER_ELEMENT;
  copyElems(dst, rdispls[me], src, sdispls[me], sendCounts[me]);
  if (n === 1 || largest === 0) return undefined;
  const piece = alltoallSharedPiece(g, es);
  check(piece > 0, `alltoall: a shared-memory slot of ${g.slotBytes} bytes holds less than one element per rank`);
  const out = bytesAt(dst, 0, dst.length);
  return sharedChunks(g, Math.ceil(largest / piece),
    (k, half) => {
      const off = k * piece;
      const slot = g.slot(me, half);
      for (let j = 0; j < n; j++) {
        const len = Math.min(piece, sendCounts[j] - off);
        if (j !== me && len > 0) slot.set(bytesAt(src, sdispls[j] + off, len), j * piece * es);
      }
    },
    (k, half) => {
      const off = k * piece;
      // Start at the next rank, so the ranks do not all read one slot at once.
      for (let i = 1; i < n; i++) {
        const r = (me + i) % n;
        const len = Math.min(piece, recvCounts[r] - off);
        if (len > 0) out.set(g.slot(r, half).subarray(me * piece * es, (me * piece + len) * es), (rdispls[r] + off) * es);
      }
    });
}
