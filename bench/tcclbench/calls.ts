/**
 * One benchmark step for tccl: the buffers of a collective at one size and placement, the call
 * itself as a closure (so the timed loop is only `await call()`), and where this rank's result
 * lies. Out-of-place uses separate send and receive buffers; in-place uses the receive buffer
 * alone with the input where nccl-tests (and MPI_IN_PLACE) put it.
 */
import type { Communicator } from 'tccl';
import type { DType, TypedArray } from '../../src/dtype.js';
import type { ReduceOpName } from '../../src/kernels/reduce.js';
import { allocArray } from '../../src/kernels/view.js';
import type { CollectiveName } from './args.js';
import { expectedReduction, fillInput, inputArray, poison } from './data.js';
import type { Layout } from './layout.js';

export interface StepBuffers {
  /** Send buffer (out-of-place), at least max(send, recv) elements. */
  send: TypedArray;
  /** Receive buffer; the only buffer in place. */
  recv: TypedArray;
}

export interface Step {
  call: () => Promise<unknown>;
  /** Write this rank's input for `seed` and poison the output, ready for a verified call. */
  prepare: (seed: number) => void;
  /** This rank's result after a call, or undefined where there is none (reduce off the root). */
  result: () => TypedArray | undefined;
  /** What result() must hold for `seed`. */
  expected: (seed: number) => TypedArray | undefined;
}

export interface StepSpec {
  coll: CollectiveName;
  dtype: DType;
  op: ReduceOpName;
  root: number;
  layout: Layout;
  inPlace: boolean;
  timeoutMs?: number;
}

const sub = (a: TypedArray, from: number, count: number) => a.subarray(from, from + count) as TypedArray;

/** Concatenate each rank's block: block j = f(j). */
function blocks(dtype: DType, n: number, per: number, f: (j: number) => TypedArray): TypedArray {
  const whole = allocArray(dtype, n * per);
  for (let j = 0; j < n; j++) (whole as Float64Array).set(f(j) as Float64Array, j * per);
  return whole;
}

export function makeStep(comm: Communicator, bufs: StepBuffers, s: StepSpec): Step {
  const { rank, size: n } = comm;
  const { coll, dtype, op, root, layout, inPlace } = s;
  const { sendCount, recvCount, paramCount: per } = layout;
  const half = dtype === 'float16' || dtype === 'bfloat16' ? { dtype } : {};
  const base = { timeoutMs: s.timeoutMs, ...half };
  const red = { ...base, op };
  // Options objects are built once, not per call: a spread per call cost ~1 us (8 B allreduce
  // out of place 2.7 vs 1.6 us with a fake peer), which is the benchmark's cost, not tccl's.
  const rooted = { ...base, root };
  const redRooted = { ...red, root };
  const reducing = coll === 'allreduce' || coll === 'reduce_scatter' || coll === 'reduce';
  const dataOp = reducing ? op : undefined;
  const send = sub(bufs.send, 0, sendCount);
  const recv = sub(bufs.recv, 0, recvCount);
  const redOut = { ...red, out: recv };
  const input = (seed: number, r: number, start: number, count: number) => inputArray(dtype, dataOp, n, seed, r, start, count);
  const fill = (into: TypedArray, seed: number, start = 0) => fillInput(into, dtype, dataOp, n, seed, rank, start, into.length);
  const next = (rank + 1) % n;
  const prev = (rank - 1 + n) % n;

  // In place: the single buffer and where the input goes in it (nccl-tests' in-place offsets).
  const whole = sub(bufs.recv, 0, Math.max(sendCount, recvCount));
  switch (coll) {
    case 'allreduce': {
      const buf = inPlace ? whole : recv;
      return {
        call: () => (inPlace ? comm.allreduce(buf, red) : comm.allreduce(send, redOut)),
        prepare: (seed) => { if (inPlace) fill(buf, seed); else { fill(send, seed); poison(recv); } },
        result: () => buf,
        expected: (seed) => expectedReduction(dtype, op, n, seed, 0, recvCount),
      };
    }
    case 'reduce_scatter': {
      const mine = inPlace ? sub(whole, rank * per, per) : recv;
      const src = inPlace ? whole : send;
      return {
        call: () => comm.reduceScatter(src, mine, red),
        prepare: (seed) => { fill(src, seed); if (!inPlace) poison(recv); },
        result: () => mine,
        expected: (seed) => expectedReduction(dtype, op, n, seed, rank * per, per),
      };
    }
    case 'reduce': {
      const out = rank === root ? (inPlace ? whole : recv) : undefined;
      const src = inPlace ? whole : send;
      const redRootedOut = { ...redRooted, out };
      return {
        call: () => (inPlace ? comm.reduce(src, redRooted) : comm.reduce(src, redRootedOut)),
        prepare: (seed) => { fill(src, seed); if (!inPlace && out) poison(out); },
        result: () => out,
        expected: (seed) => (rank === root ? expectedReduction(dtype, op, n, seed, 0, sendCount) : undefined),
      };
    }
    case 'allgather': {
      const mine = inPlace ? sub(whole, rank * per, per) : send;
      return {
        call: () => comm.allgather(mine, inPlace ? whole : recv, base),
        prepare: (seed) => { poison(inPlace ? whole : recv); fill(mine, seed); },
        result: () => (inPlace ? whole : recv),
        expected: (seed) => blocks(dtype, n, per, (j) => input(seed, j, 0, per)),
      };
    }
    case 'alltoall': {
      const src = inPlace ? whole : send;
      const dst = inPlace ? whole : recv;
      return {
        call: () => comm.alltoall(src, dst, base),
        prepare: (seed) => { fill(src, seed); if (!inPlace) poison(dst); },
        result: () => dst,
        expected: (seed) => blocks(dtype, n, per, (j) => input(seed, j, rank * per, per)),
      };
    }
    case 'broadcast': {
      // Out of place the root copies its send buffer into its receive buffer first (the
      // receive buffer is what every rank ends with), as MPI's in-place-only broadcast needs too.
      const buf = inPlace ? whole : recv;
      return {
        call: () => {
          if (!inPlace && rank === root) (buf as Float64Array).set(send as Float64Array);
          return comm.broadcast(buf, rooted);
        },
        prepare: (seed) => {
          if (inPlace) { if (rank === root) fill(buf, seed); else poison(buf); } else { fill(send, seed); poison(buf); }
        },
        result: () => buf,
        expected: (seed) => input(seed, root, 0, recvCount),
      };
    }
    case 'barrier': {
      // No data, nothing to check: a barrier is right when it returns on every rank (the
      // timed loop and the combine after it need every rank's calls to complete).
      const opts = { timeoutMs: s.timeoutMs };
      return {
        call: () => comm.barrier(opts),
        prepare: () => {},
        result: () => undefined,
        expected: () => undefined,
      };
    }
    case 'sendrecv': {
      const src = inPlace ? whole : send;
      const dst = inPlace ? whole : recv;
      return {
        call: () => comm.sendrecv(src, next, dst, prev, { tag: 7, timeoutMs: s.timeoutMs }),
        prepare: (seed) => { fill(src, seed); if (!inPlace) poison(dst); },
        result: () => dst,
        expected: (seed) => input(seed, prev, 0, recvCount),
      };
    }
  }
}
