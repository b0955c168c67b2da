import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { TcclError } from '../../src/errors.js';

/** The addon built from native/shm.c by `npm install` (node-gyp, this machine's compiler). */
export interface ShmAddon {
  /** Map a POSIX shared-memory segment; `create` makes a new one (fails if the name exists). */
  map(name: string, bytes: number, create: boolean): ArrayBuffer;
  /** Remove a segment name; false if it was already gone. Mappings stay valid. */
  unlink(name: string): boolean;
  /** Where a typed array's bytes live in this process. */
  address(view: ArrayBufferView): bigint;
  /** Copy dest.byteLength bytes from `address` in process `pid` into dest (process_vm_readv). */
  pull(pid: number, address: bigint, dest: ArrayBufferView): number;
  /**
   * Sleep while i32[index] === expected (a futex on shared memory), at most timeoutMs.
   * 0: woken, 1: timed out, 2: the value already differed.
   */
  futexWait(i32: Int32Array, index: number, expected: number, timeoutMs: number): 0 | 1 | 2;
  /** Wake every process sleeping on i32[index]; how many woke. */
  futexWake(i32: Int32Array, index: number): number;
  /** Run the calling thread on that CPU only (sched_setaffinity). */
  bindCpu(cpu: number): void;
  /** The CPUs the calling thread may run on (sched_getaffinity), in increasing order. */
  allowedCpus(): number[];
  /** sched_yield(): let another runnable thread on this core run first. */
  yieldCpu(): void;
}

let addon: ShmAddon | null = null;

/** Load the addon, or explain how to build it. */
export function shmAddon(): ShmAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  // Source (tsx) runs from transports/shm/, compiled code from dist/transports/shm/.
  const candidates = ['../../build/Release/tccl_shm.node', '../../../build/Release/tccl_shm.node'];
  const found = candidates.map((c) => new URL(c, import.meta.url)).find((u) => existsSync(u));
  if (!found) {
    throw new TcclError('TCCL_ERR_INTERNAL', 'the shared-memory transport needs its native addon (build/Release/tccl_shm.node), which is not built: run `npm run build:native` (needs python3, make and a C compiler) or use --transport tcp');
  }
  try {
    addon = require(found.pathname) as ShmAddon;
  } catch (e) {
    throw new TcclError('TCCL_ERR_INTERNAL', `cannot load the shared-memory addon ${found.pathname}: ${(e as Error).message}; rebuild it with \`npm run build:native\``, { cause: e });
  }
  return addon;
}

/** Segment and socket names allow [A-Za-z0-9_.-]; job ids from other launchers may not. */
export function safeJobId(jobId: string): string {
  const clean = jobId.replace(/[^A-Za-z0-9_.-]/g, '_');
  if (clean === jobId && clean.length <= 64) return clean;
  // Keep names unique when characters were replaced or the id was long.
  return `${clean.slice(0, 40)}_${createHash('sha256').update(jobId).digest('hex').slice(0, 16)}`;
}

/** Prefix of every /dev/shm name a job creates: what the launcher removes after a crash. */
export const segmentPrefix = (jobId: string): string => `tccl-${safeJobId(jobId)}-`;
