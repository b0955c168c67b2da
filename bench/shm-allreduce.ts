// Allreduce over shared memory next to our TCP transport, memcpy bandwidth and (when given)
// Open MPI's shared-memory BTL, in one run, alternating so machine noise hits all alike.
//   npx tsx bench/shm-allreduce.ts [--rounds 5] [--ranks 2,4] [--mpi /tmp/mpi_allreduce]
// Each round runs every (ranks, transport) once; a run times `reps` repetitions per size and
// keeps its median; the table shows the median over rounds and the spread (min-max).
// busbw = bytes / time * 2(n-1)/n (nccl-tests). The --mpi binary must print the same JSON
// (see docs/ARCHITECTURE.md, shared memory): sizes 8, 16 MiB, 64 MiB.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Result { bytes: number; iters: number; secs: number[]; wrong: number }
interface Run { size: number; transport: string; results: Result[] }

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const rounds = Number(flag('--rounds', '5'));
const rankCounts = flag('--ranks', '2,4').split(',').map(Number);
const mpi = flag('--mpi', '');
const reps = flag('--reps', '5');
const SIZES = [8, 16 << 20, 64 << 20];
if (mpi && !existsSync(mpi)) throw new Error(`--mpi ${mpi}: no such program`);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const jsonLine = (out: string, what: string): Run => {
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no JSON from ${what}:\n${out}`);
  return JSON.parse(line) as Run;
};

function runTccl(n: number, transport: string): Run {
  const out = execFileSync(process.execPath, ['bin/tcclrun.js', '-n', String(n), '--no-prefix', '--transport', transport, '--timeout', '600',
    'bench/shm-allreduce-rank.ts', '--sizes', SIZES.join(','), '--reps', reps], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return jsonLine(out, `tccl ${transport} -n ${n}`);
}

function runMpi(n: number): Run {
  const out = execFileSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-n', String(n), '--mca', 'btl', 'self,vader', mpi, reps], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return jsonLine(out, `mpirun -n ${n}`);
}

/** Copy bandwidth of one core (bytes copied per second), 64 MiB buffers, median of 5. */
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

const transports = ['shm', 'tcp', ...(mpi ? ['mpi'] : [])];
/** [transport][n][bytes] -> per-round median seconds */
const samples = new Map<string, number[]>();
const wrongs: string[] = [];
const memcpy: number[] = [];
const key = (t: string, n: number, bytes: number) => `${t}/${n}/${bytes}`;
for (let round = 0; round < rounds; round++) {
  memcpy.push(memcpyGBps());
  for (const n of rankCounts) {
    for (const t of transports) {
      const run = t === 'mpi' ? runMpi(n) : runTccl(n, t);
      for (const r of run.results) {
        if (r.wrong) wrongs.push(`${t} n=${n} ${r.bytes} B: ${r.wrong} wrong elements`);
        const k = key(t, n, r.bytes);
        samples.set(k, [...(samples.get(k) ?? []), median(r.secs)]);
      }
    }
  }
  process.stderr.write(`round ${round + 1}/${rounds} done\n`);
}

const memcpyMedian = median(memcpy);
const lines: string[] = [];
const say = (s: string) => { lines.push(s); console.log(s); };
say(`allreduce float32 sum, median over ${rounds} alternating rounds (each round: median of ${reps} timed repetitions); spread = min-max over rounds`);
say(`memcpy (one core, 64 MiB): ${memcpyMedian.toFixed(2)} GB/s (spread ${Math.min(...memcpy).toFixed(2)}-${Math.max(...memcpy).toFixed(2)})`);
const table: Record<string, unknown>[] = [];
for (const n of rankCounts) {
  const factor = (2 * (n - 1)) / n;
  say(`\n-n ${n}`);
  say(`${'bytes'.padStart(10)} ${'transport'.padStart(9)} ${'time'.padStart(12)} ${'busbw GB/s'.padStart(11)} ${'spread'.padStart(13)} ${'vs tcp'.padStart(7)} ${'vs mpi'.padStart(7)} ${'of memcpy'.padStart(9)}`);
  for (const bytes of SIZES) {
    const med = (t: string) => median(samples.get(key(t, n, bytes)) ?? [NaN]);
    for (const t of transports) {
      const s = samples.get(key(t, n, bytes)) ?? [];
      const time = med(t);
      const bw = (bytes / time) * factor / 1e9;
      const spread = `${((bytes / Math.max(...s)) * factor / 1e9).toFixed(2)}-${((bytes / Math.min(...s)) * factor / 1e9).toFixed(2)}`;
      const vsTcp = med('tcp') / time;
      const vsMpi = mpi ? med('mpi') / time : NaN;
      const shownTime = bytes <= 4096 ? `${(time * 1e6).toFixed(2)} us` : `${(time * 1e3).toFixed(2)} ms`;
      say(`${String(bytes).padStart(10)} ${t.padStart(9)} ${shownTime.padStart(12)} ${bytes <= 4096 ? '-'.padStart(11) : bw.toFixed(3).padStart(11)} ${(bytes <= 4096 ? '-' : spread).padStart(13)} ${vsTcp.toFixed(2).padStart(7)} ${(mpi ? vsMpi.toFixed(2) : '-').padStart(7)} ${(bytes <= 4096 ? '-' : (bw / memcpyMedian).toFixed(2)).padStart(9)}`);
      table.push({ n, bytes, transport: t, seconds: time, busbwGBps: bw, rounds: s, speedupVsTcp: vsTcp, speedupVsMpi: vsMpi, fractionOfMemcpy: bw / memcpyMedian });
    }
  }
}
if (wrongs.length) say(`\nWRONG RESULTS:\n${wrongs.join('\n')}`);
say('("vs tcp" / "vs mpi": time of that transport / time of this row; > 1 means this row is faster)');
mkdirSync(`${root}/bench/out`, { recursive: true });
writeFileSync(`${root}/bench/out/shm-allreduce.json`, JSON.stringify({ rounds, reps, memcpyGBps: memcpy, table }, null, 1));
if (wrongs.length) process.exitCode = 1;
