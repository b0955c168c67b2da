// readLaunchEnv: rank, size and rendezvous details from each launcher's environment.
import { describe, expect, it } from 'vitest';
import { readLaunchEnv } from '../../src/comm/env.js';
import { TcclError } from '../../src/errors.js';

type Env = Record<string, string | undefined>;

function invalid(env: Env, mentions: RegExp): TcclError {
  let error: unknown;
  try {
    readLaunchEnv(env);
  } catch (e) {
    error = e;
  }
  expect(error, `readLaunchEnv(${JSON.stringify(env)}) should throw`).toBeInstanceOf(TcclError);
  const e = error as TcclError;
  expect(e.code).toBe('TCCL_ERR_INVALID_ARGUMENT');
  expect(e.message).toMatch(mentions);
  return e;
}

describe('readLaunchEnv', () => {
  it('returns null when no launcher is recognisable', () => {
    expect(readLaunchEnv({})).toBeNull();
    expect(readLaunchEnv({ PATH: '/usr/bin', HOME: '/root', MASTER_ADDR: 'x', MASTER_PORT: '1' })).toBeNull();
    // Half a pair is not a launcher.
    expect(readLaunchEnv({ RANK: '0' })).toBeNull();
    expect(readLaunchEnv({ WORLD_SIZE: '2' })).toBeNull();
    expect(readLaunchEnv({ SLURM_PROCID: '0' })).toBeNull();
    expect(readLaunchEnv({ OMPI_COMM_WORLD_SIZE: '4' })).toBeNull();
    // Empty values count as unset.
    expect(readLaunchEnv({ RANK: '', WORLD_SIZE: '' })).toBeNull();
  });

  it('tcclrun: the full environment tcclrun exports', () => {
    const env: Env = {
      RANK: '2', WORLD_SIZE: '4', LOCAL_RANK: '2', LOCAL_WORLD_SIZE: '4',
      MASTER_ADDR: '127.0.0.1', MASTER_PORT: '40001',
      TCCL_STORE_URL: 'ws://127.0.0.1:40001', TCCL_TRANSPORT: 'tcp', TCCL_JOB_ID: 'job-abc',
      TCCL_TIMEOUT_MS: '15000', TCCL_JOB_SECRET: 's3cret', TCCL_LAUNCHER_PID: '1234',
    };
    expect(readLaunchEnv(env)).toEqual({
      launcher: 'tcclrun', rank: 2, size: 4, localRank: 2, localSize: 4,
      storeUrl: 'ws://127.0.0.1:40001', storeDir: undefined, masterAddr: '127.0.0.1',
      storePort: undefined, // the launcher hosts the store: nobody else may
      jobId: 'job-abc', transport: 'tcp', timeoutMs: 15000,
    });
  });

  it('torchrun: RANK / WORLD_SIZE / LOCAL_*; rank 0 hosts the store at MASTER_PORT + 1', () => {
    const env: Env = {
      RANK: '5', WORLD_SIZE: '8', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '4', GROUP_RANK: '1',
      MASTER_ADDR: 'node0', MASTER_PORT: '29500', TORCHELASTIC_RUN_ID: 'run-7',
    };
    const info = readLaunchEnv(env)!;
    expect(info).toMatchObject({ launcher: 'torchrun', rank: 5, size: 8, localRank: 1, localSize: 4, masterAddr: 'node0', storePort: 29501, jobId: 'run-7' });
    expect(info.storeUrl).toBeUndefined();
    expect(info.timeoutMs).toBeUndefined();
    expect(info.transport).toBeUndefined();
    // TCCL_STORE_PORT overrides the MASTER_PORT + 1 convention; TCCL_JOB_ID wins over the run id.
    expect(readLaunchEnv({ ...env, TCCL_STORE_PORT: '31000', TCCL_JOB_ID: 'mine' })).toMatchObject({ storePort: 31000, jobId: 'mine' });
    // Without local variables: a single-node job, local = global.
    expect(readLaunchEnv({ RANK: '1', WORLD_SIZE: '3' })).toMatchObject({ launcher: 'torchrun', localRank: 1, localSize: 3, jobId: 'tccl' });
  });

  it('SLURM: SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID / SLURM_NTASKS_PER_NODE', () => {
    const env: Env = {
      SLURM_PROCID: '6', SLURM_NTASKS: '8', SLURM_LOCALID: '2', SLURM_NTASKS_PER_NODE: '4(x2)',
      SLURM_JOB_ID: '987654', SLURM_NODEID: '1', SLURM_JOB_NUM_NODES: '2',
      MASTER_ADDR: 'nid001', MASTER_PORT: '29400', TCCL_STORE_FILE: '/scratch/tccl-store',
    };
    expect(readLaunchEnv(env)).toMatchObject({
      launcher: 'slurm', rank: 6, size: 8, localRank: 2, localSize: 4, jobId: '987654',
      masterAddr: 'nid001', storePort: 29401, storeDir: '/scratch/tccl-store',
    });
    expect(readLaunchEnv({ ...env, SLURM_NTASKS_PER_NODE: '4,2' })!.localSize).toBe(4);
    expect(readLaunchEnv({ ...env, SLURM_NTASKS_PER_NODE: '3' })!.localSize).toBe(3);
    // Unparseable per-node counts fall back to the world size rather than failing.
    expect(readLaunchEnv({ ...env, SLURM_NTASKS_PER_NODE: 'n/a' })!.localSize).toBe(8);
  });

  it('Open MPI: OMPI_COMM_WORLD_*', () => {
    const env: Env = {
      OMPI_COMM_WORLD_RANK: '3', OMPI_COMM_WORLD_SIZE: '6', OMPI_COMM_WORLD_LOCAL_RANK: '0', OMPI_COMM_WORLD_LOCAL_SIZE: '3',
      OMPI_MCA_ess_base_jobid: '2837446657',
    };
    expect(readLaunchEnv(env)).toMatchObject({ launcher: 'openmpi', rank: 3, size: 6, localRank: 0, localSize: 3, jobId: '2837446657' });
  });

  it('PMI (MPICH / Intel MPI): PMI_RANK / PMI_SIZE', () => {
    expect(readLaunchEnv({ PMI_RANK: '1', PMI_SIZE: '2' })).toMatchObject({ launcher: 'pmi', rank: 1, size: 2, jobId: 'tccl' });
    expect(readLaunchEnv({ PMI_RANK: '0', PMI_SIZE: '1', TCCL_TRANSPORT: 'auto', TCCL_TIMEOUT_MS: '0' })).toMatchObject({ transport: 'auto', timeoutMs: 0 });
  });

  it('precedence: tcclrun/torchrun variables win over a SLURM allocation they run inside', () => {
    const env: Env = { RANK: '3', WORLD_SIZE: '4', SLURM_PROCID: '0', SLURM_NTASKS: '1', SLURM_JOB_ID: '55' };
    expect(readLaunchEnv(env)).toMatchObject({ launcher: 'torchrun', rank: 3, size: 4, jobId: '55' });
  });

  it('precedence: mpirun inside an sbatch allocation reports the MPI rank, not the inherited SLURM_PROCID', () => {
    // Every process mpirun forks inherits the batch step's SLURM_PROCID=0 and SLURM_NTASKS;
    // only OMPI_COMM_WORLD_RANK tells them apart. Same for MPICH/Intel MPI's PMI_RANK.
    const batch: Env = { SLURM_PROCID: '0', SLURM_NTASKS: '4', SLURM_LOCALID: '0', SLURM_JOB_ID: '77' };
    const ranks = [0, 1, 2, 3].map((r) => readLaunchEnv({ ...batch, OMPI_COMM_WORLD_RANK: String(r), OMPI_COMM_WORLD_SIZE: '4' })!.rank);
    expect(ranks, 'four Open MPI processes must get four different ranks').toEqual([0, 1, 2, 3]);
    const pmi = [0, 1, 2, 3].map((r) => readLaunchEnv({ ...batch, PMI_RANK: String(r), PMI_SIZE: '4' })!.rank);
    expect(pmi, 'four PMI processes must get four different ranks').toEqual([0, 1, 2, 3]);
  });

  describe('bad values throw TCCL_ERR_INVALID_ARGUMENT naming the variable', () => {
    it('ranks and sizes that are not non-negative integers', () => {
      for (const v of ['abc', '-1', '1.5', 'NaN', 'Infinity', '2x']) {
        invalid({ RANK: v, WORLD_SIZE: '4' }, /RANK/);
        invalid({ RANK: '0', WORLD_SIZE: v }, /WORLD_SIZE/);
        invalid({ SLURM_PROCID: v, SLURM_NTASKS: '4' }, /SLURM_PROCID/);
        invalid({ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: v }, /OMPI_COMM_WORLD_SIZE/);
        invalid({ PMI_RANK: v, PMI_SIZE: '4' }, /PMI_RANK/);
      }
    });

    it('rank out of range for the size, and size 0', () => {
      expect(invalid({ RANK: '4', WORLD_SIZE: '4' }, /RANK=4/).message).toMatch(/WORLD_SIZE=4/);
      invalid({ RANK: '0', WORLD_SIZE: '0' }, /WORLD_SIZE=0/);
      invalid({ SLURM_PROCID: '9', SLURM_NTASKS: '8' }, /SLURM_PROCID=9/);
      invalid({ OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '2' }, /OMPI_COMM_WORLD_RANK/);
      invalid({ PMI_RANK: '1', PMI_SIZE: '1' }, /PMI_RANK/);
    });

    it('bad local ranks, ports and timeouts', () => {
      invalid({ RANK: '0', WORLD_SIZE: '2', LOCAL_RANK: 'x' }, /LOCAL_RANK/);
      invalid({ SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_LOCALID: '-3' }, /SLURM_LOCALID/);
      invalid({ RANK: '0', WORLD_SIZE: '2', MASTER_PORT: 'http' }, /MASTER_PORT/);
      invalid({ RANK: '0', WORLD_SIZE: '2', TCCL_STORE_PORT: '-1' }, /TCCL_STORE_PORT/);
      invalid({ RANK: '0', WORLD_SIZE: '2', TCCL_TIMEOUT_MS: 'soon' }, /TCCL_TIMEOUT_MS/);
      invalid({ RANK: '0', WORLD_SIZE: '2', TCCL_TIMEOUT_MS: '1.5' }, /TCCL_TIMEOUT_MS/);
    });
  });
});
