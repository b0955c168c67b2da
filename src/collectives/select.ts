/**
 * Algorithm selection by message size × world size, with overrides.
 * Precedence: the call's `algorithm` option, then TCCL_ALGO_<COLLECTIVE>, then the size rules.
 * 'auto' (or an empty env var) means "use the size rules". Unknown names -> invalidArgument.
 *
 * The allreduce thresholds were measured on this machine kind (2 cores, TCP loopback, n = 2,
 * 3, 4; `bench/tune-allreduce.ts`, table in docs/COLLECTIVES.md). The others keep the usual
 * MPICH / Open MPI shapes until measured the same way.
 */
import { invalidArgument } from '../errors.js';
import { isPow2 } from './util.js';

export type AllreduceAlgorithm = 'ring' | 'rd' | 'rabenseifner' | 'shm';
export type ReduceScatterAlgorithm = 'ring' | 'rh' | 'shm';
export type AllgatherAlgorithm = 'ring' | 'rd' | 'shm';
export type AlltoallAlgorithm = 'pairwise' | 'bruck' | 'shm';
export type AlltoallvAlgorithm = 'pairwise' | 'shm';
export type BroadcastAlgorithm = 'binomial' | 'chain' | 'shm';
export type BarrierAlgorithm = 'dissemination' | 'shm';
/** Anything an `algorithm` option may hold: a name (or alias) for that collective, or 'auto'. */
export type AlgorithmOption = string;

/** Allreduce ≤ this many bytes: recursive doubling (latency-bound, log2 n whole-buffer rounds). Measured: best to 32-128 KiB. */
export const ALLREDUCE_RD_MAX_BYTES = 64 * 1024;
/** Allreduce ≥ this on 3+ ranks: ring (pipelined, neighbour-only); otherwise Rabenseifner. Measured: ring wins from 2 MiB at n=4, 8 MiB at n=3. */
export const ALLREDUCE_RING_MIN_BYTES = 2 * 1024 * 1024;
/** …and ring only once each rank's chunk (bytes / n) is at least this, since ring pays 2(n-1) latencies. */
export const RING_MIN_CHUNK_BYTES = 512 * 1024;
/** Reduce-scatter with at most this many input bytes per rank: recursive halving; else ring. */
export const REDUCE_SCATTER_RH_MAX_BYTES = 512 * 1024;
/** Allgather with at most this many output bytes: recursive doubling (n a power of two)… */
export const ALLGATHER_RD_MAX_BYTES = 64 * 1024;
/** …or this many when n is not (the fold adds one full-size message). Else ring. */
export const ALLGATHER_RD_NONPOW2_MAX_BYTES = 8 * 1024;
/** All-to-all with blocks of at most this many bytes on at least ALLTOALL_BRUCK_MIN_RANKS ranks: Bruck. */
export const ALLTOALL_BRUCK_MAX_BLOCK_BYTES = 256;
export const ALLTOALL_BRUCK_MIN_RANKS = 8;
/** Broadcast of at least this many bytes on 3+ ranks: pipelined chain; else binomial tree. */
export const BROADCAST_CHAIN_MIN_BYTES = 512 * 1024;
/**
 * With shared memory, broadcasts below this on 3+ ranks still go by messages. The shared one
 * is a barrier per chunk (the root waits for every reader), where the binomial root returns
 * once its messages are queued, so back-to-back small broadcasts pipeline. Measured (2 cores,
 * process ranks, medians of back-to-back calls): n=4 8 B binomial 9.7 us vs shm 23 us, 256 KiB
 * 33 vs 60 us, 512 KiB 76 vs 70 us, 16 MiB chain 15.3 ms vs shm 2.3 ms; n=3 256 KiB 34 vs 28 us;
 * n=2 shm is as fast or faster at every size (8 B 3.8 vs 4.6 us, 16 MiB 0.83 vs 7.6 ms).
 */
export const SHARED_BROADCAST_MIN_BYTES = 256 * 1024;

type Env = Readonly<Record<string, string | undefined>>;

function override<A extends string>(
  kind: string, envVar: string, names: Readonly<Record<string, A>>, algorithm: AlgorithmOption | undefined, env: Env,
): A | undefined {
  // (Not a closure per call: this runs on every collective, and the text only on an error.)
  if (algorithm !== undefined && algorithm !== 'auto') {
    const key = typeof algorithm === 'string' ? algorithm.toLowerCase() : '';
    const a = Object.hasOwn(names, key) ? names[key] : undefined;
    if (a === undefined) throw invalidArgument(`unknown ${kind} algorithm '${String(algorithm)}' (${expectedNames(names)})`);
    return a;
  }
  const v = env[envVar]?.trim().toLowerCase();
  if (v === undefined || v === '' || v === 'auto') return undefined;
  const a = Object.hasOwn(names, v) ? names[v] : undefined;
  if (a === undefined) throw invalidArgument(`${envVar}='${env[envVar]}' is not a ${kind} algorithm (${expectedNames(names)})`);
  return a;
}

const expectedNames = (names: Readonly<Record<string, string>>): string => `expected ${[...new Set(Object.keys(names))].join(', ')} or auto`;

const ALLREDUCE: Record<string, AllreduceAlgorithm> = {
  ring: 'ring', rd: 'rd', recursive_doubling: 'rd', rabenseifner: 'rabenseifner', shm: 'shm', shared_memory: 'shm',
};
const REDUCE_SCATTER: Record<string, ReduceScatterAlgorithm> = {
  ring: 'ring', rh: 'rh', recursive_halving: 'rh', shm: 'shm', shared_memory: 'shm',
};
const ALLGATHER: Record<string, AllgatherAlgorithm> = { ring: 'ring', rd: 'rd', recursive_doubling: 'rd', shm: 'shm', shared_memory: 'shm' };
const ALLTOALL: Record<string, AlltoallAlgorithm> = { pairwise: 'pairwise', bruck: 'bruck', shm: 'shm', shared_memory: 'shm' };
const ALLTOALLV: Record<string, AlltoallvAlgorithm> = { pairwise: 'pairwise', shm: 'shm', shared_memory: 'shm' };
const BROADCAST: Record<string, BroadcastAlgorithm> = { binomial: 'binomial', chain: 'chain', shm: 'shm', shared_memory: 'shm' };
const BARRIER: Record<string, BarrierAlgorithm> = { dissemination: 'dissemination', shm: 'shm', shared_memory: 'shm' };

/** 'shm' forced where there is no shared memory with every rank (one rank needs none). */
function checkShared(kind: string, algorithm: string | undefined, shared: boolean, size: number): void {
  if (algorithm === 'shm' && !shared && size > 1) {
    throw invalidArgument(`${kind} algorithm 'shm' needs shared memory with every rank of the communicator: process ranks on one host over the shm transport (or auto; --threads: the world communicator only)`);
  }
}

/**
 * `bytes`: the buffer being reduced (per rank). `shared`: every rank maps shared memory
 * (the shm transport, all ranks on one host): then 'shm' at every size, which moves no
 * messages at all (measured against the message algorithms in docs/COLLECTIVES.md).
 */
export function selectAllreduce(bytes: number, size: number, algorithm?: AlgorithmOption, env: Env = process.env, shared = false): AllreduceAlgorithm {
  const o = override('allreduce', 'TCCL_ALGO_ALLREDUCE', ALLREDUCE, algorithm, env);
  checkShared('allreduce', o, shared, size);
  if (o) return o;
  if (shared) return 'shm';
  if (bytes <= ALLREDUCE_RD_MAX_BYTES) return 'rd';
  // Two ranks: Rabenseifner is one exchange of halves each way, the ring's work in fewer messages.
  if (size >= 3 && bytes >= ALLREDUCE_RING_MIN_BYTES && bytes / size >= RING_MIN_CHUNK_BYTES) return 'ring';
  return 'rabenseifner';
}

/**
 * The selectors below take `shared` as selectAllreduce does: with shared memory with every
 * rank, 'shm' (no messages; each byte copied into shared memory once) at every size, except
 * small broadcasts on 3+ ranks (SHARED_BROADCAST_MIN_BYTES).
 */

/** `bytes`: each rank's whole input (the sum of all blocks). */
export function selectReduceScatter(bytes: number, size: number, algorithm?: AlgorithmOption, env: Env = process.env, shared = false): ReduceScatterAlgorithm {
  const o = override('reduce-scatter', 'TCCL_ALGO_REDUCE_SCATTER', REDUCE_SCATTER, algorithm, env);
  checkShared('reduce-scatter', o, shared, size);
  if (o) return o;
  if (shared) return 'shm';
  return bytes <= REDUCE_SCATTER_RH_MAX_BYTES ? 'rh' : 'ring';
}

/** `bytes`: the gathered output. Also used by allgatherv. */
export function selectAllgather(bytes: number, size: number, algorithm?: AlgorithmOption, env: Env = process.env, shared = false): AllgatherAlgorithm {
  const o = override('allgather', 'TCCL_ALGO_ALLGATHER', ALLGATHER, algorithm, env);
  checkShared('allgather', o, shared, size);
  if (o) return o;
  if (shared) return 'shm';
  return bytes <= (isPow2(size) ? ALLGATHER_RD_MAX_BYTES : ALLGATHER_RD_NONPOW2_MAX_BYTES) ? 'rd' : 'ring';
}

/** `blockBytes`: what one rank sends to one peer. */
export function selectAlltoall(blockBytes: number, size: number, algorithm?: AlgorithmOption, env: Env = process.env, shared = false): AlltoallAlgorithm {
  const o = override('alltoall', 'TCCL_ALGO_ALLTOALL', ALLTOALL, algorithm, env);
  checkShared('alltoall', o, shared, size);
  if (o) return o;
  if (shared) return 'shm';
  return blockBytes <= ALLTOALL_BRUCK_MAX_BLOCK_BYTES && size >= ALLTOALL_BRUCK_MIN_RANKS ? 'bruck' : 'pairwise';
}

/** alltoallv: shared memory when there is some, else pairwise exchange. */
export function selectAlltoallv(size: number, algorithm?: AlgorithmOption, env: Env = process.env, shared = false): AlltoallvAlgorithm {
  const o = override('alltoallv', 'TCCL_ALGO_ALLTOALLV', ALLTOALLV, algorithm, env);
  checkShared('alltoallv', o, shared, size);
  if (o) return o;
  return shared ? 'shm' : 'pairwise';
}

/** `bytes`: the broadcast buffer. */
export function selectBroadcast(bytes: number, size: number, algorithm?: AlgorithmOption, env: Env = process.env, shared = false): BroadcastAlgorithm {
  const o = override('broadcast', 'TCCL_ALGO_BROADCAST', BROADCAST, algorithm, env);
  checkShared('broadcast', o, shared, size);
  if (o) return o;
  if (shared && (size <= 2 || bytes >= SHARED_BROADCAST_MIN_BYTES)) return 'shm';
  return bytes >= BROADCAST_CHAIN_MIN_BYTES && size > 2 ? 'chain' : 'binomial';
}

/** Barrier: 'shm' (one step-word sync) with shared memory, else dissemination (env TCCL_ALGO_BARRIER). */
export function selectBarrier(size: number, algorithm?: AlgorithmOption, env: Env = process.env, shared = false): BarrierAlgorithm {
  const o = override('barrier', 'TCCL_ALGO_BARRIER', BARRIER, algorithm, env);
  checkShared('barrier', o, shared, size);
  if (o) return o;
  return shared ? 'shm' : 'dissemination';
}
