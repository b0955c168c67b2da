/**
 * Broadcast through shared memory (all ranks on one host; see SharedGroup in p2p.ts). Per
 * chunk of up to slotBytes: the root copies the chunk into its own slot, sync, every other
 * rank copies it out. One sync per chunk, and the root's copy of chunk k+1 overlaps the
 * others' copies of chunk k.
 *
 * Reuse of the two halves: every rank (the root included) takes nextHalf() and makes exactly
 * one sync() per chunk. A reader reads chunk k (half h) only after sync k and before it
 * arrives at sync k+1; the root writes chunk k+2 (half h again) only after sync k+1 has
 * completed, i.e. after every reader arrived there, so after their last read of half h.
 */
import type { TypedArray } from '../dtype.js';
import type { SharedGroup } from './p2p.js';
import { bytesAt, check, sharedChunks } from './util.js';

/** In place: buf on every rank becomes the root's buf. */
export function broadcastShared(g: SharedGroup, buf: TypedArray, root: number): Promise<void> | undefined {
  const n = g.size;
  check(Number.isInteger(root) && root >= 0 && root < n, 'broadcast: root out of range');
  const total = buf.byteLength;
  if (n === 1 || total === 0) return undefined;
  const all = bytesAt(buf, 0, buf.length);
  const isRoot = g.rank === root;
  const piece = g.slotBytes;
  const len = (k: number) => Math.min(piece, total - k * piece);
  return sharedChunks(g, Math.ceil(total / piece),
    (k, half) => { if (isRoot) g.slot(root, half).set(all.subarray(k * piece, k * piece + len(k))); },
    (k, half) => { if (!isRoot) all.set(g.slot(root, half).subarray(0, len(k)), k * piece); });
}
