// Kernel micro-benchmarks (tinybench): reduce ops per dtype, float16/bfloat16 conversion and,
// when src/kernels/matmul.ts exists, matmul, each next to memcpy bandwidth (Buffer.copy and
// TypedArray.set) measured in the same run, so the figures read as ratios to the machine.
//   npm run bench:kernels [-- --elems 1M --time 200 --matmul 128,256,512 --json bench/out/kernels.json]
// GB/s counts one operand (elements × dtype bytes per second: how fast a reduction consumes
// received data); reduce GFLOP/s counts one op per element; matmul GFLOP/s counts 2·M·N·K.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { DTYPE_BYTES, type DType, type TypedArray } from '../src/dtype.js';
import { bf16ToF32Array, f16ToF32Array, f32ToBf16Array, f32ToF16Array } from '../src/kernels/half.js';
import { getReducer, isFloatDType, type ReduceOpName } from '../src/kernels/reduce.js';
import { allocArray } from '../src/kernels/view.js';
import { parseSize } from './tcclbench/args.js';
import { fillInput } from './tcclbench/data.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback);
const elems = parseSize(flag('--elems', '1M'), '--elems');
const timeMs = Number(flag('--time', '200'));
const matmulSizes = flag('--matmul', '128,256,512').split(',').map(Number).filter((x) => x > 0);
const jsonPath = flag('--json', fileURLToPath(new URL('out/kernels.json', import.meta.url)));

interface Row { kernel: string; dtype: string; op: string; elements: number; p50Us: number; rme: number; gbps: number; gflops: number; vsMemcpy?: number }
const rows: Row[] = [];
const bench = new Bench({ time: timeMs, warmupTime: Math.max(20, timeMs / 4) });
/** name -> how to turn a median latency (ms) into a row. */
const meta = new Map<string, (ms: number) => Omit<Row, 'p50Us' | 'rme' | 'vsMemcpy'>>();
const add = (name: string, fn: () => void, describe: (ms: number) => Omit<Row, 'p50Us' | 'rme' | 'vsMemcpy'>) => {
  bench.add(name, fn);
  meta.set(name, describe);
};

// ---- memcpy references (run first and last: a drifting machine shows as two different values) --
const bytes = elems * 4;
const srcBytes = new Uint8Array(bytes).fill(7);
const dstBytes = new Uint8Array(bytes);
const srcBuf = Buffer.from(srcBytes.buffer);
const dstBuf = Buffer.from(dstBytes.buffer);
const memcpyRow = (kernel: string) => (ms: number) => ({ kernel, dtype: 'bytes', op: 'copy', elements: bytes, gbps: bytes / 1e6 / ms, gflops: 0 });
add('memcpy Buffer.copy (first)', () => { srcBuf.copy(dstBuf); }, memcpyRow('memcpy Buffer.copy'));
add('memcpy TypedArray.set (first)', () => { dstBytes.set(srcBytes); }, memcpyRow('memcpy TypedArray.set'));

// ---- reductions: acc[i] = op(acc[i], src[i]) --------------------------------------------------
const DTYPES: DType[] = ['float32', 'float64', 'int32', 'int8', 'uint8', 'int64', 'float16', 'bfloat16'];
for (const dtype of DTYPES) {
  const ops: ReduceOpName[] = isFloatDType(dtype) ? ['sum', 'prod', 'min', 'max'] : ['sum', 'prod', 'min', 'max', 'band', 'bor', 'bxor'];
  for (const op of ops) {
    const acc = allocArray(dtype, elems);
    const src = allocArray(dtype, elems);
    // Exact benchmark data (small integers / ±2^k): sums and products stay finite and normal,
    // so no denormal or NaN slow path distorts the figure.
    fillInput(src, dtype, op === 'prod' ? 'prod' : 'min', 2, 1, 0, 0, elems);
    fillInput(acc, dtype, op === 'prod' ? 'prod' : 'min', 2, 1, 1, 0, elems);
    const reduce = getReducer(dtype, op);
    const pristine = acc.slice() as TypedArray;
    let calls = 0;
    add(`reduce ${dtype} ${op}`, () => {
      // prod and sum drift with repetition: restore now and then (cost amortised, < 1%).
      if (++calls % 256 === 0) (acc as Float64Array).set(pristine as Float64Array);
      reduce(acc, src);
    }, (ms) => ({ kernel: 'reduce', dtype, op, elements: elems, gbps: (elems * DTYPE_BYTES[dtype]) / 1e6 / ms, gflops: elems / 1e6 / ms }));
  }
}

// ---- float16 / bfloat16 conversion ------------------------------------------------------------
const f32 = new Float32Array(elems).map((_, i) => ((i * 2654435761) % 65536) / 64 - 512);
const h16 = new Uint16Array(elems);
const back = new Float32Array(elems);
const conv = (kernel: string) => (ms: number) => ({ kernel, dtype: kernel.includes('bf16') ? 'bfloat16' : 'float16', op: 'convert', elements: elems, gbps: (elems * 4) / 1e6 / ms, gflops: elems / 1e6 / ms });
f32ToF16Array(f32, h16);
add('f32 -> f16', () => { f32ToF16Array(f32, h16); }, conv('f32 -> f16'));
add('f16 -> f32', () => { f16ToF32Array(h16, back); }, conv('f16 -> f32'));
const b16 = f32ToBf16Array(f32);
add('f32 -> bf16', () => { f32ToBf16Array(f32, b16); }, conv('f32 -> bf16'));
add('bf16 -> f32', () => { bf16ToF32Array(b16, back); }, conv('bf16 -> f32'));

// ---- matmul, once src/kernels/matmul.ts exists --------------------------------------------------
const matmulSource = fileURLToPath(new URL('../src/kernels/matmul.ts', import.meta.url));
let matmulNote = 'src/kernels/matmul.ts not present: matmul not measured';
if (existsSync(matmulSource)) {
  type Matmul = (a: Float32Array, b: Float32Array, m: number, k: number, n: number, out?: Float32Array) => Float32Array;
  const { matmul } = (await import('../src/kernels/matmul.js')) as { matmul: Matmul };
  matmulNote = '';
  for (const s of matmulSizes) {
    const a = new Float32Array(s * s).map((_, i) => (i % 7) - 3);
    const b = new Float32Array(s * s).map((_, i) => (i % 5) - 2);
    const out = new Float32Array(s * s);
    add(`matmul ${s}x${s}x${s}`, () => { matmul(a, b, s, s, s, out); }, (ms) => ({ kernel: `matmul ${s}³`, dtype: 'float32', op: 'gemm', elements: s * s, gbps: (3 * s * s * 4) / 1e6 / ms, gflops: (2 * s * s * s) / 1e6 / ms }));
  }
}

// Out of cache: the DRAM figure a large collective's copies meet (not used for the ratios).
const bigBytes = 64 << 20;
const bigSrc = Buffer.alloc(bigBytes, 3);
const bigDst = Buffer.alloc(bigBytes);
add('memcpy Buffer.copy 64 MiB', () => { bigSrc.copy(bigDst); }, (ms) => ({ kernel: 'memcpy Buffer.copy 64 MiB', dtype: 'bytes', op: 'copy', elements: bigBytes, gbps: bigBytes / 1e6 / ms, gflops: 0 }));
add('memcpy Buffer.copy (last)', () => { srcBuf.copy(dstBuf); }, memcpyRow('memcpy Buffer.copy'));
add('memcpy TypedArray.set (last)', () => { dstBytes.set(srcBytes); }, memcpyRow('memcpy TypedArray.set'));

const load0 = loadavg()[0];
await bench.run();
for (const task of bench.tasks) {
  const r = task.result;
  if (r.state !== 'completed') throw new Error(`${task.name}: ${r.state}${'error' in r ? `: ${String(r.error)}` : ''}`);
  const describe = meta.get(task.name)!;
  rows.push({ ...describe(r.latency.p50), kernel: task.name.startsWith('memcpy') ? task.name : describe(r.latency.p50).kernel, p50Us: r.latency.p50 * 1e3, rme: r.latency.rme });
}
const memcpyRows = rows.filter((r) => r.kernel.startsWith('memcpy') && !r.kernel.includes('64 MiB'));
const memcpyGbps = [...memcpyRows].sort((a, b) => a.gbps - b.gbps)[memcpyRows.length >> 1].gbps; // median of the four
for (const r of rows) if (r.op !== 'gemm' && !r.kernel.includes('64 MiB')) r.vsMemcpy = r.gbps / memcpyGbps;

console.log(`# kernels: ${elems} elements per call (${(bytes / 2 ** 20).toFixed(1)} MiB of float32), tinybench ${timeMs} ms per task, median latency; node ${process.version}; load average ${load0.toFixed(1)} -> ${loadavg()[0].toFixed(1)}`);
console.log(`# memcpy reference (median of Buffer.copy and TypedArray.set, first and last): ${memcpyGbps.toFixed(2)} GB/s`);
if (matmulNote) console.log(`# ${matmulNote}`);
console.log(`${'kernel'.padEnd(30)} ${'dtype'.padEnd(9)} ${'op'.padEnd(8)} ${'p50 us'.padStart(10)} ${'±%'.padStart(6)} ${'GB/s'.padStart(8)} ${'GFLOP/s'.padStart(8)} ${'x memcpy'.padStart(9)}`);
for (const r of rows) {
  console.log(`${r.kernel.padEnd(30)} ${r.dtype.padEnd(9)} ${r.op.padEnd(8)} ${r.p50Us.toFixed(1).padStart(10)} ${r.rme.toFixed(1).padStart(6)} ${r.gbps.toFixed(2).padStart(8)} ${r.gflops.toFixed(2).padStart(8)} ${(r.vsMemcpy === undefined ? '-' : r.vsMemcpy.toFixed(2)).padStart(9)}`);
}
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, JSON.stringify({ date: new Date().toISOString(), node: process.version, elems, timeMs, memcpyGbps, loadavg: [load0, loadavg()[0]], rows }, null, 1) + '\n');
console.log(`# wrote ${jsonPath}`);
