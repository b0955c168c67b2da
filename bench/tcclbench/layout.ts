/**
 * What each collective moves, as nccl-tests defines it (src/*.cu getCollByteCount / getBw;
 * doc/PERFORMANCE.md): element counts from the sweep size, the bytes algbw divides by, the
 * busbw factor, and where each rank's result lives. Shared by tcclbench, the Open MPI program
 * (which mirrors it in C) and the tests.
 */
import type { CollectiveName } from './args.js';

export interface Layout {
  /** Elements each rank sends / receives (whole buffers). */
  sendCount: number;
  recvCount: number;
  /** nccl-tests' "count" column: the per-call count argument. */
  paramCount: number;
  /** The "size" column: max(send, recv) bytes. */
  sizeBytes: number;
  /** Bytes algbw divides by. */
  algBytes: number;
}

/** Collectives that reduce (have an op and need exact-arithmetic data). */
export const REDUCING: ReadonlySet<CollectiveName> = new Set(['allreduce', 'reduce_scatter', 'reduce']);
/** Collectives with a root. */
export const ROOTED: ReadonlySet<CollectiveName> = new Set(['broadcast', 'reduce']);

/** busbw = algbw × this (nccl-tests' PERFORMANCE.md). */
export function busFactor(coll: CollectiveName, nranks: number): number {
  switch (coll) {
    case 'allreduce': return (2 * (nranks - 1)) / nranks;
    case 'reduce_scatter': case 'allgather': case 'alltoall': return (nranks - 1) / nranks;
    case 'broadcast': case 'reduce': case 'sendrecv': return 1;
    case 'barrier': return 0; // moves no data: algbw and busbw are 0, the time is the figure
  }
}

/** Counts for a sweep step of `bytes` bytes of `elemBytes`-byte elements over `nranks`. */
export function layoutFor(coll: CollectiveName, bytes: number, elemBytes: number, nranks: number): Layout {
  const count = Math.floor(bytes / elemBytes);
  const per = Math.floor(count / nranks);
  let sendCount: number, recvCount: number, paramCount: number, algElems: number;
  switch (coll) {
    case 'reduce_scatter': sendCount = per * nranks; recvCount = per; paramCount = per; algElems = per * nranks; break;
    case 'allgather': sendCount = per; recvCount = per * nranks; paramCount = per; algElems = per * nranks; break;
    case 'alltoall': sendCount = per * nranks; recvCount = per * nranks; paramCount = per; algElems = per * nranks; break;
    default: sendCount = count; recvCount = count; paramCount = count; algElems = count;
  }
  return { sendCount, recvCount, paramCount, sizeBytes: Math.max(sendCount, recvCount) * elemBytes, algBytes: algElems * elemBytes };
}

/** algbw and busbw in GB/s (10^9 bytes per second) for one call taking `seconds`. */
export function bandwidth(coll: CollectiveName, layout: Layout, nranks: number, seconds: number): { algbw: number; busbw: number } {
  const algbw = seconds > 0 ? layout.algBytes / 1e9 / seconds : 0;
  return { algbw, busbw: algbw * busFactor(coll, nranks) };
}
