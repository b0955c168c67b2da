/**
 * Barrier through shared memory (all ranks on one host; see SharedGroup in p2p.ts): one
 * sync(), i.e. publish this rank's step word and wait until every rank has published it.
 * No data, so no slot half is used. Undefined when every rank was already there (the call
 * finishes within itself, no promise).
 */
import type { SharedGroup } from './p2p.js';

export function barrierShared(g: SharedGroup): Promise<void> | undefined {
  return g.sync();
}
