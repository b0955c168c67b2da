// tcclbench: nccl-tests for tccl. Sweeps message sizes for one collective, out of place and
// in place, times them, verifies every result, and prints nccl-tests' table (rank 0).
//   npx tcclrun -n 4 bench/tcclbench.ts allreduce -b 8 -e 128M -f 2 -n 20 -w 5 -c 1 -d float32 -o sum -J out.json
// Flags and columns: bench/tcclbench/args.ts, docs/BENCHMARKS.md. Exit status 1 when any
// element is wrong.
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { init, type InitOptions } from 'tccl';
import { DTYPE_BYTES, type DType } from '../src/dtype.js';
import { isFloatDType, type ReduceOpName } from '../src/kernels/reduce.js';
import { allocArray } from '../src/kernels/view.js';
import { BENCH_USAGE, BenchUsageError, itersFor, parseBenchArgs, sweepSizes, type BenchOptions } from './tcclbench/args.js';
import { makeStep, type StepBuffers } from './tcclbench/calls.js';
import { countWrong } from './tcclbench/data.js';
import { corrupt, parseInjection, type Injection } from './tcclbench/inject.js';
import { REDUCING, ROOTED, bandwidth, layoutFor } from './tcclbench/layout.js';
import { Progress } from './tcclbench/progress.js';
import { averageBusbw, tableFooter, tableHeader, tableRow, totalWrong, type BenchDocument, type PlacementResult, type SizeResult } from './tcclbench/report.js';

const USAGE_EXIT = 2;
const launchRank = process.env.RANK ?? process.env.OMPI_COMM_WORLD_RANK ?? '0';

let options: BenchOptions;
let injection: Injection | undefined;
try {
  const parsed = parseBenchArgs(process.argv.slice(2));
  if (parsed.kind === 'help') {
    if (launchRank === '0') process.stdout.write(BENCH_USAGE);
    process.exit(0);
  }
  options = parsed.options;
  injection = parseInjection(options.inject ?? process.env.TCCL_BENCH_INJECT);
} catch (e) {
  if (!(e instanceof BenchUsageError)) throw e;
  // Every rank says why: the first rank to exit stops the job, so rank 0 may never get to.
  process.stderr.write(`tcclbench: ${e.detail} (--help lists the flags)\n`);
  process.exit(USAGE_EXIT);
}

const comm = await init(options.transport ? { transport: options.transport as InitOptions['transport'] } : {});
const { rank, size: nranks } = comm;
const transportName = options.transport ?? process.env.TCCL_TRANSPORT ?? 'auto';
const print = (line: string) => { if (rank === 0) { progress?.clear(); console.log(line); } };
const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const coll = options.collective;
const reducing = REDUCING.has(coll);
/** A barrier has one row (size 0), no in-place form and nothing to verify but its completion. */
const isBarrier = coll === 'barrier';
const root = ROOTED.has(coll) ? options.root : -1;
if (ROOTED.has(coll) && options.root >= nranks) {
  process.stderr.write(`tcclbench: -r ${options.root} is not a rank of this ${nranks}-rank job\n`);
  await comm.close();
  process.exit(USAGE_EXIT);
}
if (injection && rank === 0) process.stderr.write(`tcclbench: TCCL_BENCH_INJECT=${options.inject ?? process.env.TCCL_BENCH_INJECT}: corrupting verified results on purpose\n`);

/** (dtype, op) pairs to run: ops only matter for reductions; bitwise ops only on integers. */
const cases: { dtype: DType; op: ReduceOpName }[] = [];
for (const dtype of options.dtypes) {
  const ops = reducing ? options.ops.filter((op) => !(isFloatDType(dtype) && (op === 'band' || op === 'bor' || op === 'bxor'))) : ['sum' as const];
  if (ops.length === 0 && rank === 0) process.stderr.write(`tcclbench: op ${options.ops.join(',')} is not defined for ${dtype}; skipped\n`);
  for (const op of ops) cases.push({ dtype, op });
}
if (cases.length === 0) {
  process.stderr.write(`tcclbench: nothing to run: op ${options.ops.join(',')} is not defined for ${options.dtypes.join(',')}\n`);
  await comm.close();
  process.exit(USAGE_EXIT);
}

const sizes = sweepSizes(options);
const weightOf = (bytes: number) => bytes + 65536; // time per step ~ latency + bytes
const progress = rank === 0
  ? new Progress(cases.length * sizes.length, cases.length * sizes.reduce((a, s) => a + weightOf(s), 0), options.progress)
  : undefined;

const peers = await comm.allgatherObject({ pid: process.pid, host: hostname() });
print(`# tcclbench ${coll}: tccl ${version}, transport ${transportName}, nranks ${nranks}`);
print(`# minBytes ${options.minBytes} maxBytes ${options.maxBytes} step: ${options.stepFactor > 1 ? `${options.stepFactor}(factor)` : `${options.stepBytes}(bytes)`} warmup iters: ${options.warmup} iters: ${options.iters} validation: ${options.check} average: ${options.average}${options.iterBytes ? ` iter-bytes: ${options.iterBytes}` : ''}${options.jitWarmup ? ` jit-warmup: ${options.jitWarmup}` : ''}`);
print('#');
for (const [r, p] of peers.entries()) print(`#  Rank ${String(r).padStart(2)} Pid ${String(p.pid).padStart(7)} on ${p.host}`);
print('#');
for (const line of tableHeader()) print(line);

/** Combine one number per rank by -a (rank0 / avg / min / max). */
async function combine(values: number[]): Promise<number[]> {
  const buf = new Float64Array(values);
  const t = { timeoutMs: options.timeoutMs };
  switch (options.average) {
    case 'rank0': await comm.broadcast(buf, { ...t, root: 0 }); break;
    case 'avg': await comm.allreduce(buf, { ...t, op: 'sum' }); buf.forEach((v, i) => { buf[i] = v / nranks; }); break;
    case 'min': await comm.allreduce(buf, { ...t, op: 'min' }); break;
    case 'max': await comm.allreduce(buf, { ...t, op: 'max' }); break;
  }
  return Array.from(buf);
}

const median = (xs: Float64Array) => {
  const s = Float64Array.from(xs).sort();
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

let seed = 0; // check runs use seeds 1, 2, ... (same sequence on every rank); timed runs use 0

async function runPlacement(bufs: StepBuffers, dtype: DType, op: ReduceOpName, bytes: number, inPlace: boolean): Promise<PlacementResult> {
  const layout = layoutFor(coll, bytes, DTYPE_BYTES[dtype], nranks);
  const step = makeStep(comm, bufs, { coll, dtype, op, root: options.root, layout, inPlace, timeoutMs: options.timeoutMs });
  const { iters, warmup } = itersFor(bytes, options);
  step.prepare(0);
  for (let i = 0; i < warmup; i++) await step.call();
  await comm.barrier({ timeoutMs: options.timeoutMs });
  const times = new Float64Array(iters);
  const start = performance.now();
  let last = start;
  for (let i = 0; i < iters; i++) {
    await step.call();
    const now = performance.now();
    times[i] = now - last;
    last = now;
  }
  const [meanMs, medianMs] = await combine([(last - start) / iters, median(times)]);
  const { algbw, busbw } = bandwidth(coll, layout, nranks, meanMs / 1e3);

  let wrong: number | null = null;
  for (let c = 0; c < (isBarrier ? 0 : options.check); c++) {
    seed++;
    step.prepare(seed);
    await step.call();
    const result = step.result();
    let mine = 0;
    if (result) {
      if (injection && c === 0 && (injection.rank ?? Math.max(root, 0)) === rank) corrupt(injection, result);
      const want = step.expected(seed);
      mine = want ? countWrong(result, want, dtype) : 0;
    }
    const all = new Float64Array([mine]);
    await comm.allreduce(all, { op: 'sum', timeoutMs: options.timeoutMs });
    wrong = (wrong ?? 0) + all[0];
    if (all[0] > 0) break; // as nccl-tests: one failing check is enough
  }
  return { timeUs: meanMs * 1e3, medianUs: medianMs * 1e3, algbw, busbw, wrong, iters };
}

const results: SizeResult[] = [];
for (const { dtype, op } of cases) {
  // One pair of buffers per dtype at the largest size, reused by every step (as nccl-tests).
  const elems = Math.floor(options.maxBytes / DTYPE_BYTES[dtype]);
  const bufs: StepBuffers = { send: allocArray(dtype, elems), recv: allocArray(dtype, elems) };
  if (options.jitWarmup > 0) {
    // Untimed and unchecked, out of place, at the smallest size: V8 optimizes the collective's
    // path after ~10000 calls, so without this the first sizes of a short sweep time cold code.
    const step = makeStep(comm, bufs, { coll, dtype, op, root: options.root, layout: layoutFor(coll, sizes[0], DTYPE_BYTES[dtype], nranks), inPlace: false, timeoutMs: options.timeoutMs });
    step.prepare(0);
    for (let i = 0; i < options.jitWarmup; i++) await step.call();
  }
  for (const bytes of sizes) {
    progress?.step(`${bytes} B ${dtype}${reducing ? ` ${op}` : ''}`);
    const layout = layoutFor(coll, bytes, DTYPE_BYTES[dtype], nranks);
    const outOfPlace = await runPlacement(bufs, dtype, op, bytes, false);
    // Every data collective has an in-place column: tccl sends from a copy when buffers overlap
    // (alltoall(buf, buf), sendrecv(buf, …, buf, …): MPI_IN_PLACE / Sendrecv_replace). A
    // barrier's is N/A.
    const inPlace = isBarrier ? null : await runPlacement(bufs, dtype, op, bytes, true);
    const row: SizeResult = { size: layout.sizeBytes, count: layout.paramCount, type: isBarrier ? 'none' : dtype, redop: reducing ? op : 'none', root, outOfPlace, inPlace };
    results.push(row);
    print(tableRow(row));
    progress?.advance(weightOf(bytes));
  }
}
progress?.finish();

const doc: BenchDocument = {
  tool: 'tcclbench', implementation: 'tccl', version, transport: transportName, collective: coll, nranks,
  iters: options.iters, warmup: options.warmup, check: options.check, average: options.average, iterBytes: options.iterBytes,
  ...(options.jitWarmup ? { jitWarmup: options.jitWarmup } : {}),
  minBytes: options.minBytes, maxBytes: options.maxBytes, stepBytes: options.stepBytes, stepFactor: options.stepFactor,
  host: hostname(), date: new Date().toISOString(), results, avgBusbw: averageBusbw(results), wrong: totalWrong(results),
};
for (const line of tableFooter(doc)) print(line);
if (rank === 0 && options.json) writeFileSync(options.json, JSON.stringify(doc, null, 1) + '\n');
await comm.close();
if ((doc.wrong ?? 0) > 0) process.exitCode = 1;
