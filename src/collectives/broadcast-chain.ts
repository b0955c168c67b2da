/**
 * Pipelined chain broadcast for large messages: ranks root, root+1, … form a chain; the
 * buffer is cut into segments (SEGMENT_BYTES) and each rank forwards segment k to the next
 * rank as soon as it arrives, while segment k+1 is already posted. Time ≈ (n - 2 + segments)
 * segment-hops, close to one buffer transfer when segments ≫ n.
 */
import type { TypedArray } from '../dtype.js';
import type { CollectiveP2P } from './p2p.js';
import { SEGMENT_BYTES, bytesAt, check, quiet, segmentElems } from './util.js';

export async function broadcastChain(p2p: CollectiveP2P, buf: TypedArray, root: number, segmentBytes = SEGMENT_BYTES): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  check(Number.isInteger(root) && root >= 0 && root < n, 'broadcast: root out of range');
  const count = buf.length;
  if (n === 1 || count === 0) return;
  const v = (r - root + n) % n;
  const prev = (r - 1 + n) % n;
  const next = v < n - 1 ? (r + 1) % n : -1;
  const seg = segmentElems(buf, segmentBytes);
  const segs = Math.ceil(count / seg);
  const at = (k: number) => bytesAt(buf, k * seg, Math.min(seg, count - k * seg));
  const sends: Promise<void>[] = [];
  if (v === 0) {
    for (let k = 0; k < segs; k++) sends.push(quiet(p2p.send(next, at(k))));
  } else {
    let pending = quiet(p2p.recv(prev, at(0)));
    for (let k = 0; k < segs; k++) {
      const following = k + 1 < segs ? quiet(p2p.recv(prev, at(k + 1))) : undefined;
      await pending;
      if (next >= 0) sends.push(quiet(p2p.send(next, at(k))));
      if (following) pending = following;
    }
  }
  await Promise.all(sends);
}
