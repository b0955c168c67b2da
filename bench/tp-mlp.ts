// Tensor-parallel MLP (column -> gelu -> row) forward + backward throughput for P = 1, 2, 4
// processes, and the fraction of each iteration spent waiting in collectives.
//   npm run bench:tp-mlp [-- --rounds 3 --rows 256 --hidden 512 --ffn 2048 --iters 8 --transport tcp]
// Without RANK in the environment this is the driver: it launches itself through tcclrun for
// each P, alternating P within every round, and prints medians with their spread.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { init } from '../src/comm/init.js';
import { ParallelGroup } from '../src/parallel/group.js';
import { ParallelMLP } from '../src/parallel/parallel-mlp.js';
import { zeroGrads } from '../src/parallel/param.js';
import { flag, median, reportAndClose } from './tp-common.js';

const rows = Number(flag('--rows', '256'));
const hidden = Number(flag('--hidden', '512'));
const ffn = Number(flag('--ffn', '2048'));
const iters = Number(flag('--iters', '8'));

interface RunResult { P: number; iterMs: number; commFraction: number; tokensPerS: number; gflops: number }


if (process.env.RANK !== undefined) {
  // ---- one rank
  const comm = await init();
  const group = new ParallelGroup(comm);
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * scale);
  const mlp = ParallelMLP.fromFull(group, hidden, ffn, { w1: fill(hidden * ffn, 0.04), b1: fill(ffn, 0.1), w2: fill(ffn * hidden, 0.02), b2: fill(hidden, 0.1) });
  const x = fill(rows * hidden, 1);
  const dy = fill(rows * hidden, 0.01);
  const iterMs: number[] = [];
  const commMs: number[] = [];
  for (let i = 0; i < iters + 2; i++) {
    zeroGrads(mlp.parameters());
    group.counters.reset();
    await comm.barrier();
    const t0 = performance.now();
    await mlp.forward(x, rows);
    await mlp.backward(Float32Array.from(dy));
    const ms = performance.now() - t0;
    if (i >= 2) {
      iterMs.push(ms);
      commMs.push(group.counters.total().ms);
    }
  }
  const all = await reportAndClose(comm, new Float64Array([median(iterMs), median(commMs)]));
  if (all) {
    const slowest = Math.max(...all.map((r) => r[0]));
    const commFraction = all.reduce((s, r) => s + r[1] / r[0], 0) / all.length;
    const flops = 3 * 2 * 2 * rows * hidden * ffn; // forward: 2 matmuls; backward: 4
    const result: RunResult = { P: comm.size, iterMs: slowest, commFraction, tokensPerS: rows / (slowest / 1e3), gflops: flops / (slowest / 1e3) / 1e9 };
    console.log(JSON.stringify(result));
  }
} else {
  // ---- driver
  const root = fileURLToPath(new URL('..', import.meta.url));
  const rounds = Number(flag('--rounds', '3'));
  const transport = flag('--transport', 'tcp');
  const worlds = flag('--sizes', '1,2,4').split(',').map(Number);
  const runs: Record<number, RunResult[]> = {};
  for (let r = 0; r < rounds; r++) {
    for (const P of worlds) {
      const out = execFileSync(process.execPath, ['bin/tcclrun.js', '-n', String(P), '--no-prefix', '--transport', transport, '--timeout', '600', 'bench/tp-mlp.ts',
        '--rows', String(rows), '--hidden', String(hidden), '--ffn', String(ffn), '--iters', String(iters)], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) throw new Error(`no result from P=${P}:\n${out}`);
      (runs[P] ??= []).push(JSON.parse(line) as RunResult);
    }
    process.stderr.write(`round ${r + 1}/${rounds}\n`);
  }
  const base = median(runs[worlds[0]].map((x) => x.iterMs));
  console.log(`TP MLP forward+backward: rows ${rows}, hidden ${hidden}, ffn ${ffn}; transport ${transport}; ${cpus().length} cores; ${rounds} rounds × ${iters} iterations (median [min–max])`);
  console.log('   P   iteration ms          tokens/s    GFLOP/s   speedup   time in communication');
  const table = worlds.map((P) => {
    const xs = runs[P];
    const it = xs.map((x) => x.iterMs);
    const row = { P, iterMs: median(it), iterMin: Math.min(...it), iterMax: Math.max(...it), tokensPerS: median(xs.map((x) => x.tokensPerS)), gflops: median(xs.map((x) => x.gflops)), speedup: base / median(it), commFraction: median(xs.map((x) => x.commFraction)), commMin: Math.min(...xs.map((x) => x.commFraction)), commMax: Math.max(...xs.map((x) => x.commFraction)) };
    console.log(`${String(P).padStart(4)}   ${row.iterMs.toFixed(1).padStart(7)} [${row.iterMin.toFixed(0)}–${row.iterMax.toFixed(0)}]`.padEnd(30) +
      `${row.tokensPerS.toFixed(0).padStart(7)}   ${row.gflops.toFixed(2).padStart(7)}   ${row.speedup.toFixed(2).padStart(6)}×   ${(100 * row.commFraction).toFixed(1)}% [${(100 * row.commMin).toFixed(0)}–${(100 * row.commMax).toFixed(0)}%]`);
    return row;
  });
  mkdirSync(`${root}/bench/out`, { recursive: true });
  writeFileSync(`${root}/bench/out/tp-mlp.json`, JSON.stringify({ rows, hidden, ffn, iters, rounds, transport, cores: cpus().length, table }, null, 2));
}
