import { invalidArgument } from '../errors.js';

/** Where this process sits in the job, read from whichever launcher started it. */
export interface LaunchInfo {
  launcher: 'tcclrun' | 'torchrun' | 'slurm' | 'openmpi' | 'pmi';
  rank: number;
  size: number;
  localRank: number;
  localSize: number;
  /** ws:// URL of the rendezvous store, when the launcher hosts one (tcclrun). */
  storeUrl?: string;
  /** Shared-filesystem store directory (TCCL_STORE_FILE), for launchers that host none. */
  storeDir?: string;
  /** Host and port where rank 0 hosts the store when nobody else does. */
  masterAddr?: string;
  storePort?: number;
  jobId: string;
  transport?: string;
  timeoutMs?: number;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw invalidArgument(`environment variable ${name}=${v} is not a non-negative integer`);
  return n;
}

/** SLURM_NTASKS_PER_NODE may read "4(x2)" or "4,2": the first number is ours on uniform jobs. */
function firstInt(env: Env, name: string): number | undefined {
  const m = /^\d+/.exec(env[name] ?? '');
  return m ? Number(m[0]) : undefined;
}

/**
 * Read rank and size from tcclrun / torchrun (RANK, WORLD_SIZE), Open MPI (OMPI_COMM_WORLD_*),
 * PMI (PMI_RANK, PMI_SIZE) or SLURM (SLURM_PROCID, SLURM_NTASKS), in that order.
 * Returns null when none of them is set.
 */
export function readLaunchEnv(env: Env = process.env): LaunchInfo | null {
  const candidates: [LaunchInfo['launcher'], string, string, string?, string?][] = [
    [env.TCCL_STORE_URL ? 'tcclrun' : 'torchrun', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE'],
    // mpirun inside an sbatch job inherits the batch step's SLURM_PROCID: MPI's own vars win.
    ['openmpi', 'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK', 'OMPI_COMM_WORLD_LOCAL_SIZE'],
    ['pmi', 'PMI_RANK', 'PMI_SIZE', 'MPI_LOCALRANKID', 'MPI_LOCALNRANKS'],
    ['slurm', 'SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID', 'SLURM_NTASKS_PER_NODE'],
  ];
  for (const [launcher, rankVar, sizeVar, localRankVar, localSizeVar] of candidates) {
    const rank = int(env, rankVar);
    const size = int(env, sizeVar);
    if (rank === undefined || size === undefined) continue;
    if (size < 1 || rank >= size) throw invalidArgument(`${rankVar}=${rank} is out of range for ${sizeVar}=${size}`);
    const masterPort = int(env, 'MASTER_PORT');
    const storePort = int(env, 'TCCL_STORE_PORT') ?? (masterPort !== undefined ? masterPort + 1 : undefined);
    const timeoutMs = int(env, 'TCCL_TIMEOUT_MS');
    return {
      launcher,
      rank,
      size,
      localRank: (localRankVar ? int(env, localRankVar) : undefined) ?? rank,
      localSize: (localSizeVar ? firstInt(env, localSizeVar) : undefined) ?? size,
      storeUrl: env.TCCL_STORE_URL || undefined,
      storeDir: env.TCCL_STORE_FILE || undefined,
      masterAddr: env.MASTER_ADDR || undefined,
      storePort: env.TCCL_STORE_URL ? undefined : storePort,
      jobId: env.TCCL_JOB_ID || env.TORCHELASTIC_RUN_ID || env.SLURM_JOB_ID || env.OMPI_MCA_ess_base_jobid || 'tccl',
      transport: env.TCCL_TRANSPORT || undefined,
      timeoutMs,
    };
  }
  return null;
}
