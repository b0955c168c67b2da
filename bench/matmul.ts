// float32 matmul GFLOP/s: tccl's wasm SIMD kernel (one thread) next to numpy single-threaded
// (Debian's python3-numpy on /usr/bin/python3, OMP/OPENBLAS threads = 1) measured in the same
// run, alternating rounds so machine noise hits both alike. Reports medians, spread and ratio.
//   npm run bench:matmul [-- --rounds 5 --sizes 128,256,512,1024]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { matmul } from '../src/kernels/matmul.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const rounds = Number(flag('--rounds', '5'));
const sizes = flag('--sizes', '128,256,512,1024').split(',').map(Number);
const PYTHON = '/usr/bin/python3';

// Each sample: the best of `reps` back-to-back products (after one warm-up), as GFLOP/s.
const repsFor = (n: number) => Math.max(3, Math.round(2e8 / (2 * n ** 3)));

const numpyScript = `
import json, sys, time
import numpy as np
out = {}
for n in ${JSON.stringify(sizes)}:
    reps = max(3, round(2e8 / (2 * n**3)))
    a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32)
    a @ b
    best = 1e9
    for _ in range(reps):
        t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
    out[n] = 2 * n**3 / best / 1e9
print(json.dumps(out))
`;

function runNumpy(): Record<string, number> {
  const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  return JSON.parse(execFileSync(PYTHON, ['-c', numpyScript], { env, encoding: 'utf8' })) as Record<string, number>;
}

function runTccl(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of sizes) {
    const a = new Float32Array(n * n).map(() => Math.random());
    const b = new Float32Array(n * n).map(() => Math.random());
    const c = new Float32Array(n * n);
    matmul(a, b, n, n, n, c);
    let best = Infinity;
    for (let r = 0; r < repsFor(n); r++) {
      const t0 = performance.now();
      matmul(a, b, n, n, n, c);
      best = Math.min(best, performance.now() - t0);
    }
    out[n] = (2 * n ** 3) / (best / 1e3) / 1e9;
  }
  return out;
}

const samples: { tccl: Record<string, number>; numpy: Record<string, number> }[] = [];
for (let r = 0; r < rounds; r++) {
  samples.push({ numpy: runNumpy(), tccl: runTccl() });
  process.stderr.write(`round ${r + 1}/${rounds}\n`);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
let blas = 'unknown';
try {
  blas = realpathSync(readlinkSync('/etc/alternatives/libblas.so.3-x86_64-linux-gnu'));
} catch {
  /* not Debian's alternatives layout */
}
const rows = sizes.map((n) => {
  const t = samples.map((s) => s.tccl[n]);
  const p = samples.map((s) => s.numpy[n]);
  const ratios = samples.map((s) => s.tccl[n] / s.numpy[n]);
  return { n, tcclGflops: median(t), tcclMin: Math.min(...t), tcclMax: Math.max(...t), numpyGflops: median(p), numpyMin: Math.min(...p), numpyMax: Math.max(...p), ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios) };
});

console.log(`float32 matmul n×n×n, one thread, ${rounds} alternating rounds (median [min–max]); numpy BLAS: ${blas}`);
console.log('     n   tccl wasm-simd GFLOP/s     numpy GFLOP/s          tccl/numpy');
for (const r of rows) {
  console.log(`${String(r.n).padStart(6)}   ${r.tcclGflops.toFixed(2).padStart(6)} [${r.tcclMin.toFixed(1)}–${r.tcclMax.toFixed(1)}]`.padEnd(36) +
    `${r.numpyGflops.toFixed(2).padStart(6)} [${r.numpyMin.toFixed(1)}–${r.numpyMax.toFixed(1)}]`.padEnd(23) +
    `${r.ratio.toFixed(2)}× [${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)}]`);
}
mkdirSync(`${root}/bench/out`, { recursive: true });
writeFileSync(`${root}/bench/out/matmul.json`, JSON.stringify({ rounds, blas, node: process.version, rows }, null, 2));
