/**
 * Megatron's conjugate communication operators between a replicated region and a
 * tensor-parallel one. Each is a (forward, backward) pair whose backward is the forward's
 * adjoint; activations are row-major rows×cols float32.
 *
 *   copyToParallelRegion         forward identity          backward allreduce
 *   reduceFromParallelRegion     forward allreduce         backward identity
 *   scatterToParallelRegion      forward own column block  backward allgather columns
 *   gatherFromParallelRegion     forward allgather columns backward own column block
 *   gatherFromSequenceParallel   forward allgather rows    backward reduce-scatter rows
 *   reduceScatterToSequenceParallel forward reduce-scatter rows, backward allgather rows
 */

import { invalidArgument } from '../errors.js';
import type { ParallelGroup } from './group.js';
import { divide, sliceColumns } from './shard.js';

export const copyToParallelRegion = {
  forward: (x: Float32Array): Float32Array => x,
  backward: (g: ParallelGroup, dx: Float32Array): Promise<Float32Array> => g.allreduce(dx, 'backward'),
};

export const reduceFromParallelRegion = {
  forward: (g: ParallelGroup, x: Float32Array): Promise<Float32Array> => g.allreduce(x, 'forward'),
  backward: (dy: Float32Array): Float32Array => dy,
};

/** Allgather along the last dimension: every rank's rows×localCols block -> rows×(P·localCols). */
async function allgatherColumns(g: ParallelGroup, local: Float32Array, rows: number, localCols: number, phase: 'forward' | 'backward'): Promise<Float32Array> {
  if (g.size === 1) return local;
  const stacked = await g.allgather(local, new Float32Array(local.length * g.size), phase);
  const cols = localCols * g.size;
  const out = new Float32Array(rows * cols);
  // stacked is [P][rows][localCols]; interleave into [rows][P·localCols]
  for (let p = 0; p < g.size; p++) {
    for (let r = 0; r < rows; r++) {
      out.set(stacked.subarray((p * rows + r) * localCols, (p * rows + r + 1) * localCols), r * cols + p * localCols);
    }
  }
  return out;
}

function ownColumns(g: ParallelGroup, full: Float32Array, rows: number, cols: number): Float32Array {
  if (g.size === 1) return full;
  const local = divide(cols, g.size, 'columns', g.rank);
  return sliceColumns(full, rows, cols, g.rank * local, local);
}

export const scatterToParallelRegion = {
  forward: (g: ParallelGroup, x: Float32Array, rows: number, cols: number): Float32Array => ownColumns(g, x, rows, cols),
  backward: (g: ParallelGroup, dx: Float32Array, rows: number, localCols: number): Promise<Float32Array> => allgatherColumns(g, dx, rows, localCols, 'backward'),
};

export const gatherFromParallelRegion = {
  forward: (g: ParallelGroup, x: Float32Array, rows: number, localCols: number): Promise<Float32Array> => allgatherColumns(g, x, rows, localCols, 'forward'),
  backward: (g: ParallelGroup, dy: Float32Array, rows: number, cols: number): Float32Array => ownColumns(g, dy, rows, cols),
};

function checkRows(g: ParallelGroup, rows: number): void {
  if (rows % g.size !== 0) throw invalidArgument(`sequence parallel: ${rows} rows are not divisible by the tensor-parallel size ${g.size}`, { rank: g.rank, op: 'tensor-parallel' });
}

/** Rows split across ranks (rank r holds block r) <-> every row on every rank. */
export const gatherFromSequenceParallel = {
  forward: (g: ParallelGroup, x: Float32Array): Promise<Float32Array> => g.allgather(x, new Float32Array(x.length * g.size), 'forward'),
  backward: (g: ParallelGroup, dy: Float32Array, rows: number): Promise<Float32Array> => {
    checkRows(g, rows);
    return g.reduceScatter(dy, new Float32Array(dy.length / g.size), 'backward');
  },
};

export const reduceScatterToSequenceParallel = {
  forward: (g: ParallelGroup, x: Float32Array, rows: number): Promise<Float32Array> => {
    checkRows(g, rows);
    return g.reduceScatter(x, new Float32Array(x.length / g.size), 'forward');
  },
  backward: (g: ParallelGroup, dy: Float32Array): Promise<Float32Array> => g.allgather(dy, new Float32Array(dy.length * g.size), 'backward'),
};
