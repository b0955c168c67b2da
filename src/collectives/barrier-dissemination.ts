/**
 * Dissemination barrier: ceil(log2 n) rounds; in round k (distance 2^k) each rank sends a
 * zero-byte message to rank + 2^k and waits for one from rank - 2^k. After the last round
 * every rank has transitively heard from all others. Works for any n.
 */
import type { CollectiveP2P } from './p2p.js';

const EMPTY = new Uint8Array(0);

export async function barrierDissemination(p2p: CollectiveP2P): Promise<void> {
  const n = p2p.size;
  const r = p2p.rank;
  for (let d = 1; d < n; d <<= 1) {
    await Promise.all([p2p.send((r + d) % n, EMPTY), p2p.recv((r - d + n) % n, new Uint8Array(0))]);
  }
}
