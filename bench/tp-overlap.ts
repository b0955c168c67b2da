// Does communication progress while a long kernel runs? Two ranks each time, in one job:
//   comm-only      K allreduces of S bytes, back to back
//   compute-only   M matmuls n×n×n (inline on the main thread, and on the kernel pool)
//   overlapped     both at once: matmuls on the pool, or inline with an await between kernels
//   during         how many allreduces complete while one 1024³ matmul runs (pool vs inline)
// and report wall times with the overlap efficiency (T_comm + T_compute − T_overlapped) /
// min(T_comm, T_compute): 1 = the shorter one is fully hidden, 0 = they ran one after the other.
//   npm run bench:tp-overlap [-- --rounds 5 --mib 4 --allreduces 8 --n 512 --matmuls 8 --transport tcp]
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { init } from '../src/comm/init.js';
import { matmul } from '../src/kernels/matmul.js';
import { KernelPool } from '../src/kernels/pool/kernel-pool.js';
import { flag, median, reportAndClose } from './tp-common.js';

const mib = Number(flag('--mib', '4'));
const allreduces = Number(flag('--allreduces', '8'));
const n = Number(flag('--n', '512'));
const matmuls = Number(flag('--matmuls', '8'));

type Times = { comm: number; inline: number; pool: number; overlapPool: number; overlapInline: number; duringPool: number; duringInline: number };
const efficiency = (comm: number, compute: number, both: number) => (comm + compute - both) / Math.min(comm, compute);

if (process.env.RANK !== undefined) {
  const comm = await init();
  const pool = new KernelPool({ threads: 1 });
  const buf = new Float32Array((mib << 20) / 4).fill(1);
  const a = Float32Array.from({ length: n * n }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: n * n }, (_, i) => Math.cos(i));
  const c = new Float32Array(n * n);
  const commLoop = async () => {
    for (let i = 0; i < allreduces; i++) await comm.allreduce(buf);
  };
  const poolLoop = async () => {
    for (let i = 0; i < matmuls; i++) await pool.matmul(a, b, n, n, n, c);
  };
  const inlineLoop = async () => {
    for (let i = 0; i < matmuls; i++) {
      matmul(a, b, n, n, n, c);
      await new Promise((r) => setImmediate(r)); // what real code does between kernels: yield
    }
  };
  const timed = async (f: () => Promise<unknown>) => {
    await comm.barrier();
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  await timed(() => Promise.all([commLoop(), poolLoop()])); // warm-up: links, wasm, worker
  const t: Times = {
    comm: await timed(commLoop),
    inline: await timed(inlineLoop),
    pool: await timed(poolLoop),
    overlapPool: await timed(() => Promise.all([commLoop(), poolLoop()])),
    overlapInline: await timed(() => Promise.all([commLoop(), inlineLoop()])),
    duringPool: 0,
    duringInline: 0,
  };
  // Progress during one long kernel: how many 1 MiB allreduces finish while it runs.
  const big = 1024;
  const A = Float32Array.from({ length: big * big }, (_, i) => Math.sin(i));
  const small = new Float32Array(1 << 18);
  const during = async (kernel: () => Promise<unknown>) => {
    await comm.barrier();
    let done = false;
    const k = kernel().finally(() => (done = true));
    let count = 0;
    // Both ranks must issue the same allreduces: stop once every rank's kernel is done.
    while (true) {
      small.fill(0);
      small[0] = done ? 1 : 0;
      await comm.allreduce(small);
      if (small[0] === comm.size) break;
      if (!done) count++;
    }
    await k;
    return count;
  };
  t.duringPool = await during(() => pool.matmul(A, A, big, big, big));
  t.duringInline = await during(async () => matmul(A, A, big, big, big));
  const keys = Object.keys(t) as (keyof Times)[];
  const all = await reportAndClose(comm, Float64Array.from(keys, (k) => t[k]));
  await pool.close();
  if (all) {
    const worst = Object.fromEntries(keys.map((k, i) => [k, Math.max(...all.map((x) => x[i]))]));
    console.log(JSON.stringify(worst));
  }
} else {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const rounds = Number(flag('--rounds', '5'));
  const transport = flag('--transport', 'tcp');
  const samples: Times[] = [];
  for (let r = 0; r < rounds; r++) {
    const out = execFileSync(process.execPath, ['bin/tcclrun.js', '-n', '2', '--no-prefix', '--transport', transport, '--timeout', '600', 'bench/tp-overlap.ts',
      '--mib', String(mib), '--allreduces', String(allreduces), '--n', String(n), '--matmuls', String(matmuls)], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const line = out.split('\n').find((l) => l.startsWith('{'));
    if (!line) throw new Error(`no result:\n${out}`);
    samples.push(JSON.parse(line) as Times);
    process.stderr.write(`round ${r + 1}/${rounds}\n`);
  }
  const m = (k: keyof Times) => median(samples.map((s) => s[k]));
  const range = (k: keyof Times) => `[${Math.min(...samples.map((s) => s[k])).toFixed(0)}–${Math.max(...samples.map((s) => s[k])).toFixed(0)}]`;
  const effPool = samples.map((s) => efficiency(s.comm, s.pool, s.overlapPool));
  const effInline = samples.map((s) => efficiency(s.comm, s.inline, s.overlapInline));
  console.log(`2 ranks, ${transport}; ${allreduces} allreduces of ${mib} MiB; ${matmuls} matmuls ${n}³; ${cpus().length} cores; ${rounds} runs, median [min–max] ms of the slower rank`);
  console.log(`  comm only                       ${m('comm').toFixed(0).padStart(6)} ${range('comm')}`);
  console.log(`  compute only, inline            ${m('inline').toFixed(0).padStart(6)} ${range('inline')}`);
  console.log(`  compute only, kernel pool       ${m('pool').toFixed(0).padStart(6)} ${range('pool')}`);
  console.log(`  overlapped, kernel pool         ${m('overlapPool').toFixed(0).padStart(6)} ${range('overlapPool')}   overlap efficiency ${median(effPool).toFixed(2)} [${Math.min(...effPool).toFixed(2)}–${Math.max(...effPool).toFixed(2)}]`);
  console.log(`  overlapped, inline (yielding)   ${m('overlapInline').toFixed(0).padStart(6)} ${range('overlapInline')}   overlap efficiency ${median(effInline).toFixed(2)} [${Math.min(...effInline).toFixed(2)}–${Math.max(...effInline).toFixed(2)}]`);
  console.log(`  1 MiB allreduces completed during one ${1024}³ matmul: on the pool ${m('duringPool')} ${range('duringPool')}, inline ${m('duringInline')} ${range('duringInline')}`);
  mkdirSync(`${root}/bench/out`, { recursive: true });
  writeFileSync(`${root}/bench/out/tp-overlap.json`, JSON.stringify({ mib, allreduces, n, matmuls, transport, rounds, cores: cpus().length, samples, efficiencyPool: effPool, efficiencyInline: effInline }, null, 2));
}
