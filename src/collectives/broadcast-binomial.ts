/**
 * Binomial-tree broadcast from any root: ceil(log2 n) rounds. With v = (rank - root) mod n,
 * a rank receives the whole buffer from v minus its lowest set bit, then sends it to
 * v + 2^j for every 2^j below that bit (largest subtree first). Good for small and medium
 * messages; large ones pipeline better along a chain.
 */
import type { TypedArray } from '../dtype.js';
import type { CollectiveP2P } from './p2p.js';
import { bytesAt, check, quiet, xrecv, xsend } from './util.js';

export async function broadcastBinomial(p2p: CollectiveP2P, buf: TypedArray, root: number): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  check(Number.isInteger(root) && root >= 0 && root < n, 'broadcast: root out of range');
  if (n === 1 || buf.length === 0) return;
  const all = bytesAt(buf, 0, buf.length);
  const v = (r - root + n) % n;
  let mask = 1;
  while (mask < n) {
    if (v & mask) {
      await xrecv(p2p, (r - mask + n) % n, all);
      break;
    }
    mask <<= 1;
  }
  const sends: Promise<void>[] = [];
  for (mask >>= 1; mask > 0; mask >>= 1) {
    if (v + mask < n) sends.push(quiet(xsend(p2p, (r + mask) % n, all)));
  }
  await Promise.all(sends);
}
