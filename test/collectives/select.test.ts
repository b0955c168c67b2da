import { describe, expect, it } from 'vitest';
import {
  ALLGATHER_RD_MAX_BYTES, ALLREDUCE_RD_MAX_BYTES, ALLREDUCE_RING_MIN_BYTES, ALLTOALL_BRUCK_MAX_BLOCK_BYTES,
  BROADCAST_CHAIN_MIN_BYTES, REDUCE_SCATTER_RH_MAX_BYTES, allreduce, selectAllgather, selectAllreduce, selectAlltoall,
  selectBroadcast, selectReduceScatter,
} from '../../src/collectives/index.js';
import { isTcclError } from '../../src/errors.js';
import { runRanks } from './harness.js';

const NOENV = {};

describe('algorithm selection', () => {
  it('allreduce: rd for small, rabenseifner for medium, ring for large', () => {
    expect(selectAllreduce(8, 4, undefined, NOENV)).toBe('rd');
    expect(selectAllreduce(ALLREDUCE_RD_MAX_BYTES, 4, undefined, NOENV)).toBe('rd');
    expect(selectAllreduce(ALLREDUCE_RD_MAX_BYTES + 4, 4, undefined, NOENV)).toBe('rabenseifner');
    expect(selectAllreduce(ALLREDUCE_RING_MIN_BYTES, 4, undefined, NOENV)).toBe('ring');
    expect(selectAllreduce(ALLREDUCE_RING_MIN_BYTES, 64, undefined, NOENV)).toBe('rabenseifner'); // chunks too small for ring
    expect(selectAllreduce(64 << 20, 64, undefined, NOENV)).toBe('ring');
    expect(selectAllreduce(64 << 20, 2, undefined, NOENV)).toBe('rabenseifner'); // two ranks: halves exchanged once
  });

  it('the other collectives follow their thresholds', () => {
    expect(selectReduceScatter(REDUCE_SCATTER_RH_MAX_BYTES, 4, undefined, NOENV)).toBe('rh');
    expect(selectReduceScatter(REDUCE_SCATTER_RH_MAX_BYTES + 1, 4, undefined, NOENV)).toBe('ring');
    expect(selectAllgather(ALLGATHER_RD_MAX_BYTES, 8, undefined, NOENV)).toBe('rd');
    expect(selectAllgather(ALLGATHER_RD_MAX_BYTES, 6, undefined, NOENV)).toBe('ring');
    expect(selectAllgather(ALLGATHER_RD_MAX_BYTES + 1, 8, undefined, NOENV)).toBe('ring');
    expect(selectAlltoall(ALLTOALL_BRUCK_MAX_BLOCK_BYTES, 16, undefined, NOENV)).toBe('bruck');
    expect(selectAlltoall(ALLTOALL_BRUCK_MAX_BLOCK_BYTES, 4, undefined, NOENV)).toBe('pairwise');
    expect(selectAlltoall(ALLTOALL_BRUCK_MAX_BLOCK_BYTES + 1, 16, undefined, NOENV)).toBe('pairwise');
    expect(selectBroadcast(BROADCAST_CHAIN_MIN_BYTES, 4, undefined, NOENV)).toBe('chain');
    expect(selectBroadcast(BROADCAST_CHAIN_MIN_BYTES, 2, undefined, NOENV)).toBe('binomial');
    expect(selectBroadcast(100, 8, undefined, NOENV)).toBe('binomial');
  });

  it('the algorithm option beats the env var, which beats the size rules; auto / empty mean size rules', () => {
    const env = { TCCL_ALGO_ALLREDUCE: 'Ring', TCCL_ALGO_ALLTOALL: 'bruck', TCCL_ALGO_BROADCAST: ' chain ', TCCL_ALGO_ALLGATHER: '', TCCL_ALGO_REDUCE_SCATTER: 'recursive_halving' };
    expect(selectAllreduce(8, 4, undefined, env)).toBe('ring');
    expect(selectAllreduce(8, 4, 'rabenseifner', env)).toBe('rabenseifner');
    expect(selectAllreduce(8, 4, 'auto', env)).toBe('ring');
    expect(selectAllreduce(8, 4, 'auto', { TCCL_ALGO_ALLREDUCE: 'auto' })).toBe('rd');
    expect(selectAlltoall(1 << 20, 2, undefined, env)).toBe('bruck');
    expect(selectBroadcast(1, 2, undefined, env)).toBe('chain');
    expect(selectAllgather(1 << 30, 2, undefined, env)).toBe('ring');
    expect(selectReduceScatter(1 << 30, 2, undefined, env)).toBe('rh');
    expect(selectAllreduce(8, 4, 'recursive_doubling', NOENV)).toBe('rd');
  });

  it('unknown names are invalid arguments naming the choices (option and env var)', () => {
    const expectInvalid = (f: () => unknown, re: RegExp) => {
      let err: unknown;
      try { f(); } catch (e) { err = e; }
      expect(isTcclError(err, 'TCCL_ERR_INVALID_ARGUMENT')).toBe(true);
      expect((err as Error).message).toMatch(re);
    };
    expectInvalid(() => selectAllreduce(8, 4, 'tree', NOENV), /unknown allreduce algorithm 'tree'.*ring, rd/);
    expectInvalid(() => selectAllreduce(8, 4, 'constructor', NOENV), /constructor/);
    expectInvalid(() => selectAllreduce(8, 4, undefined, { TCCL_ALGO_ALLREDUCE: 'nccl' }), /TCCL_ALGO_ALLREDUCE='nccl'/);
    expectInvalid(() => selectAllgather(8, 4, undefined, { TCCL_ALGO_ALLGATHER: 'bruck' }), /TCCL_ALGO_ALLGATHER/);
    expectInvalid(() => selectReduceScatter(8, 4, undefined, { TCCL_ALGO_REDUCE_SCATTER: 'rd' }), /TCCL_ALGO_REDUCE_SCATTER/);
    expectInvalid(() => selectAlltoall(8, 4, undefined, { TCCL_ALGO_ALLTOALL: 'ring' }), /TCCL_ALGO_ALLTOALL/);
    expectInvalid(() => selectBroadcast(8, 4, undefined, { TCCL_ALGO_BROADCAST: 'ring' }), /TCCL_ALGO_BROADCAST/);
    expectInvalid(() => selectBroadcast(8, 4, 'pipeline', NOENV), /binomial, chain/);
  });

  it('allreduce reads TCCL_ALGO_ALLREDUCE from process.env (ring: 2(n-1) messages per rank)', async () => {
    const saved = process.env.TCCL_ALGO_ALLREDUCE;
    process.env.TCCL_ALGO_ALLREDUCE = 'ring';
    try {
      const bufs = Array.from({ length: 4 }, () => Float32Array.of(1, 2, 3, 4));
      const { stats } = await runRanks(4, (p2p, r) => allreduce(p2p, bufs[r], { dtype: 'float32', op: 'sum' }));
      expect(stats.messages).toEqual([6, 6, 6, 6]);
      expect(Array.from(bufs[0])).toEqual([4, 8, 12, 16]);
      process.env.TCCL_ALGO_ALLREDUCE = 'bogus';
      await expect(runRanks(4, (p2p, r) => allreduce(p2p, bufs[r], { dtype: 'float32', op: 'sum' }))).rejects.toThrow(/TCCL_ALGO_ALLREDUCE='bogus'/);
    } finally {
      if (saved === undefined) delete process.env.TCCL_ALGO_ALLREDUCE;
      else process.env.TCCL_ALGO_ALLREDUCE = saved;
    }
  });

  it('the rd default sends log2(n) whole-buffer messages', async () => {
    const bufs = Array.from({ length: 8 }, () => Int32Array.of(1, 2));
    const { stats } = await runRanks(8, (p2p, r) => allreduce(p2p, bufs[r], { dtype: 'int32', op: 'sum', algorithm: 'auto' }));
    expect(stats.messages).toEqual(new Array(8).fill(3));
    expect(Array.from(bufs[5])).toEqual([8, 16]);
  });
});
