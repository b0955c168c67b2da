import { readdirSync, unlinkSync } from 'node:fs';
import { segmentPrefix } from '../../transports/shm/native.js';

const SHM_DIR = '/dev/shm';

/**
 * Remove whatever shared-memory segments of `jobId` are left in /dev/shm. Ranks unlink
 * their segments as soon as every peer has mapped them, so this finds something only when
 * a rank died during setup; it runs after every job, crashed or not. Returns the names removed.
 */
export function removeJobSegments(jobId: string, dir = SHM_DIR): string[] {
  const prefix = segmentPrefix(jobId);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return []; // no /dev/shm (not Linux): shm was never used
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    try {
      unlinkSync(`${dir}/${name}`);
      removed.push(name);
    } catch { /* a rank removed it meanwhile */ }
  }
  return removed;
}
