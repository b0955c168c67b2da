// The shared-memory numbers issue #4 asks for, in one run: allreduce (float32 sum) over tccl's
// shm transport, Open MPI's shared-memory BTL (mpirun --mca btl self,vader) and tccl's tcp
// transport, at 2 and 4 ranks, alternating run by run so machine noise hits all alike, plus
// memcpy bandwidth measured between the runs.
//   npm run bench:shm [-- --rounds 5 --ranks 2,4 --out bench/out/shm]
// Every run is the same nccl-tests-style sweep (bench/tcclbench.ts for tccl,
// bench/mpi/mpibench.c for Open MPI: same flags, same data, results verified): 8 B with 5000
// timed iterations, then 16 MiB and 64 MiB. Reported: per-iteration median time (latency)
// and busbw = bytes / median time x 2(n-1)/n, each the median over rounds with its spread.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchDocument } from './tcclbench/report.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const flag = (name: string, fallback: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback);
const rounds = Number(flag('--rounds', '5'));
const rankCounts = flag('--ranks', '2,4').split(',').map(Number);
const outDir = flag('--out', join(root, 'bench/out/shm'));
const started = performance.now();
const loadAtStart = loadavg()[0];
mkdirSync(outDir, { recursive: true });
const log = (msg: string) => process.stderr.write(`[bench:shm ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);

/** The two sweeps of every run: latency, then bandwidth. */
const SWEEPS = [
  // 20000 warm-up calls (~40 ms; Open MPI gets the same): V8 compiles the allreduce path
  // with its optimizing tier only after ~10000 calls (fake-peer 8 B allreduce, per 500 calls:
  // 5-13 us for the first ~10000, then ~0.7 us). With 2000 the out-of-place run, which goes
  // first, measured partly cold code: 2.6 us against 0.93 us with 20000 in the same minute.
  { name: 'small', flags: ['-b', '8', '-e', '8', '-n', '5000', '-w', '20000'] },
  { name: 'large', flags: ['-b', '16M', '-e', '64M', '-f', '4', '-n', '10', '-w', '3', '--iter-bytes', '256M'] },
];
const common = ['allreduce', '-c', '1', '-d', 'float32', '-o', 'sum'];

if (!existsSync(join(root, 'dist/src/launcher/cli.js'))) {
  log('dist/ missing: npm run build');
  if (spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' }).status !== 0) throw new Error('npm run build failed');
}
const built = spawnSync('bash', [join(root, 'bench/mpi/build.sh'), '--quiet'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (built.status !== 0) throw new Error('bench/mpi/build.sh failed: Open MPI is needed for the reference (see its message above)');
const mpibench = built.stdout.trim().split('\n').pop()!;

type Series = 'shm' | 'vader' | 'tcp';
const SERIES: Series[] = ['shm', 'vader', 'tcp'];
function command(s: Series, n: number, flags: string[]): [string, string[]] {
  if (s === 'vader') {
    return ['mpirun', ['-n', String(n), '--oversubscribe', '--bind-to', 'none', ...(process.getuid?.() === 0 ? ['--allow-run-as-root'] : []),
      '--mca', 'pml', 'ob1', '--mca', 'btl', 'self,vader', mpibench, ...flags, '--transport', 'vader']];
  }
  return [process.execPath, ['bin/tcclrun.js', '-n', String(n), '--no-prefix', '--transport', s, '--timeout', '600', 'bench/tcclbench.ts', ...flags]];
}

function run(cmd: string, args: string[], json: string): Promise<BenchDocument> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.on('close', (code) => {
      try {
        if (code !== 0) throw new Error(`exit ${code}`);
        resolve(JSON.parse(readFileSync(json, 'utf8')) as BenchDocument);
      } catch (e) {
        reject(new Error(`${cmd} ${args.join(' ')}: ${(e as Error).message}\n${output.slice(-2000)}`));
      }
    });
  });
}

/** Bytes copied per second by one core, 64 MiB buffers, median of 5. */
function memcpyGBps(): number {
  const a = new Uint8Array(64 << 20).fill(1);
  const b = new Uint8Array(64 << 20);
  b.set(a);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    b.set(a);
    times.push((performance.now() - t0) / 1e3);
  }
  return a.length / median(times) / 1e9;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** [series/n/bytes] -> per-round per-iteration median time (us) */
const samples = new Map<string, number[]>();
const key = (s: Series, n: number, bytes: number) => `${s}/${n}/${bytes}`;
const wrong: string[] = [];
const memcpy: number[] = [];
for (let round = 0; round < rounds; round++) {
  memcpy.push(memcpyGBps());
  for (const n of rankCounts) {
    for (const sweep of SWEEPS) {
      for (const s of SERIES) {
        const json = join(outDir, `${s}-n${n}-${sweep.name}-r${round}.json`);
        const [cmd, args] = command(s, n, [...common, ...sweep.flags, '-J', json]);
        const doc = await run(cmd, args, json);
        for (const r of doc.results) {
          const p = r.outOfPlace;
          if (p.wrong) wrong.push(`${s} n=${n} ${r.size} B round ${round + 1}: ${p.wrong} wrong`);
          samples.set(key(s, n, r.size), [...(samples.get(key(s, n, r.size)) ?? []), p.medianUs]);
        }
      }
    }
  }
  log(`round ${round + 1}/${rounds} done`);
}

const lines: string[] = [];
const say = (l: string) => { lines.push(l); console.log(l); };
const memcpyMedian = median(memcpy);
const fmtRatio = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
say(`# bench:shm: allreduce float32 sum, out of place; median over ${rounds} alternating rounds of each run's per-iteration median; spread = min-max over rounds`);
say(`# load average ${loadAtStart.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end; ${((performance.now() - started) / 1000).toFixed(0)} s`);
say(`# memcpy (one core, 64 MiB): ${memcpyMedian.toFixed(2)} GB/s (spread ${Math.min(...memcpy).toFixed(2)}-${Math.max(...memcpy).toFixed(2)})`);
const table: Record<string, unknown>[] = [];
for (const n of rankCounts) {
  const factor = (2 * (n - 1)) / n;
  say('');
  say(`## ${n} ranks`);
  say(`| size | series | median time | busbw GB/s (spread) | shm/this | of memcpy |`);
  say(`|---:|---|---:|---:|---:|---:|`);
  for (const bytes of [8, 16 << 20, 64 << 20]) {
    for (const s of SERIES) {
      const us = samples.get(key(s, n, bytes)) ?? [];
      const t = median(us);
      const bw = (bytes / (t / 1e6)) * factor / 1e9;
      const spread = `${((bytes / (Math.max(...us) / 1e6)) * factor / 1e9).toFixed(2)}-${((bytes / (Math.min(...us) / 1e6)) * factor / 1e9).toFixed(2)}`;
      // For the latency row the ratio is of times (Open MPI / shm: < 1 means shm is slower); for bandwidth, of busbw.
      const shm = median(samples.get(key('shm', n, bytes)) ?? []);
      const ratio = t / shm;
      const small = bytes <= 4096;
      const time = small ? `${t.toFixed(2)} us` : `${(t / 1e3).toFixed(2)} ms`;
      say(`| ${small ? `${bytes} B` : `${bytes >> 20} MiB`} | ${s} | ${time} | ${small ? '-' : `${bw.toFixed(3)} (${spread})`} | ${s === 'shm' ? '' : fmtRatio(ratio)} | ${small ? '-' : (bw / memcpyMedian).toFixed(2)} |`);
      table.push({ n, bytes, series: s, medianUs: t, roundsUs: us, busbwGBps: small ? null : bw, shmSpeedup: ratio, fractionOfMemcpy: small ? null : bw / memcpyMedian });
    }
  }
}
say('');
say('(shm/this: time of this series / time of shm, i.e. > 1 means shm is faster; for 8 B, 1/x is how many times slower shm is)');
if (wrong.length) say(`\nWRONG RESULTS:\n${wrong.join('\n')}`);
writeFileSync(join(outDir, 'shm.md'), lines.join('\n') + '\n');
writeFileSync(join(outDir, 'shm.json'), JSON.stringify({ date: new Date().toISOString(), rounds, memcpyGBps: memcpy, table }, null, 1) + '\n');
log(`wrote ${join(outDir, 'shm.md')} and shm.json`);
if (wrong.length) process.exitCode = 1;
