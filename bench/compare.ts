// tccl against Open MPI, side by side in one run: the same tcclbench sweep on every tccl
// transport that works here, and bench/mpi/mpibench.c under mpirun with --mca btl self,vader
// (shared memory) and self,tcp, alternating, at each rank count. Prints busbw and the ratio
// per size, checks #wrong = 0 everywhere, writes JSON, a markdown table and an SVG plot.
//   npm run bench:compare [-- --ranks 2,4 -b 8 -e 64M --transports tcp,shm,webrtc --mpi vader,tcp
//                            --collectives allreduce -n 200 -w 100 --jit-warmup 20000 --iter-bytes 64M --max-for webrtc=4M
//                            --rounds 1 --out bench/out/compare]
// --iter-bytes trims iterations of large messages alike for every series (at least 3 timed);
// --max-for caps the sweep of a slow transport ("none": no cap; webrtc was ~0.02 GB/s here and its 64 MiB sweep
// alone would take minutes), so the whole comparison stays under 10 minutes.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRANSPORTS } from '../src/launcher/args.js';
import { COLLECTIVES, parseSize } from './tcclbench/args.js';
import { renderSvg, sizeLabel, type PlotGroup } from './plot.js';
import type { BenchDocument } from './tcclbench/report.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const started = performance.now();
const loadAtStart = loadavg()[0];
const elapsed = () => (performance.now() - started) / 1000;

// ---- options ------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const flag = (names: string[], fallback: string) => {
  const i = argv.findIndex((a) => names.includes(a));
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const ranks = list(flag(['--ranks'], '2,4')).map(Number);
const minBytes = parseSize(flag(['-b', '--min'], '8'), '-b');
const maxBytes = parseSize(flag(['-e', '--max'], '64M'), '-e');
// Small sizes get 200 timed calls after 100 warm-ups (a JIT needs warm calls: with -n 10 -w 3
// an 8 B shm allreduce measured ~100 us against ~2 us warm); --iter-bytes trims large sizes.
const iters = flag(['-n', '--iters'], '200');
const warmup = flag(['-w', '--warmup'], '100');
// Before each sweep, 20000 untimed calls at the smallest size, in every series (mpibench makes
// them too): V8 optimizes tccl's collective path only after ~10000 calls, so -w 100 alone left
// the first sizes partly cold (8 B shm allreduce ~2.6 us against ~0.9 us warm). 0 turns it off.
const jitWarmup = flag(['--jit-warmup'], '20000');
const iterBytes = flag(['--iter-bytes'], '64M');
const rounds = Number(flag(['--rounds'], '1'));
/** transport -> largest size swept for it. */
const maxFor = new Map(list(flag(['--max-for'], 'webrtc=4M')).filter((kv) => kv !== 'none').map((kv) => {
  const [t, size] = kv.split('=');
  return [t, Math.min(maxBytes, parseSize(size ?? '', `--max-for ${t}`))] as const;
}));
const stat = flag(['--stat'], 'median') as 'median' | 'mean';
const outDir = flag(['--out'], join(root, 'bench/out/compare'));
const collectives = list(flag(['--collectives', '-c'], 'allreduce'));
const mpiBtls = list(flag(['--mpi'], 'vader,tcp')).filter((b) => b !== 'none');
// Every transport tcclrun accepts, except 'auto' (an alias) and 'memory' (one process only).
const transportsWanted = list(flag(['--transports', '-t'], TRANSPORTS.filter((t) => t !== 'auto' && t !== 'memory').join(',')));
const runTimeoutS = Number(flag(['--run-timeout'], '300'));
// A run that failed before writing its results is tried again this many times; every failure is reported.
const retries = Number(flag(['--retries'], '1'));
for (const c of collectives) if (!(COLLECTIVES as readonly string[]).includes(c)) throw new Error(`unknown collective ${c} (expected ${COLLECTIVES.join(', ')})`);
if (!/^\d+$/.test(jitWarmup)) throw new Error(`--jit-warmup takes a number of calls >= 0, got ${jitWarmup}`);
if (ranks.some((n) => !(n >= 1))) throw new Error('--ranks takes a list of rank counts, e.g. 2,4');
mkdirSync(outDir, { recursive: true });
const log = (msg: string) => process.stderr.write(`[compare ${elapsed().toFixed(0).padStart(4)} s] ${msg}\n`);

// ---- running one benchmark ------------------------------------------------------------------
interface RunOutcome { ok: boolean; doc?: BenchDocument; error?: string; seconds: number }

function runBench(cmd: string, args: string[], jsonPath: string, logPath: string): Promise<RunOutcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    // The whole process group: tcclrun's ranks / mpirun's children go with it.
    const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, runTimeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      writeFileSync(logPath, `$ ${cmd} ${args.join(' ')}\n${stdout}${stderr ? `\n--- stderr ---\n${stderr}` : ''}`);
      const seconds = (performance.now() - t0) / 1000;
      let doc: BenchDocument | undefined;
      try { doc = JSON.parse(readFileSync(jsonPath, 'utf8')) as BenchDocument; } catch { /* no JSON: failed before the end */ }
      const errLines = stderr.trim().split('\n').filter((l) => l.trim() && !l.includes('corrupting'));
      // tcclrun names the first failing rank and its last error: the most useful line.
      const lastLine = errLines.find((l) => l.includes("last error")) ?? errLines.find((l) => l.includes('failed first')) ?? errLines.pop() ?? '';
      const ok = code === 0 && doc !== undefined;
      resolve({ ok, doc, seconds, error: ok ? undefined : `${signal ? `killed by ${signal} after ${seconds.toFixed(0)} s` : `exit ${code}`}: ${lastLine.slice(0, 300)}` });
    });
  });
}

const benchFlags = (coll: string, max = maxBytes) => [coll, '-b', String(minBytes), '-e', String(max), '-f', '2', '-n', iters, '-w', warmup, '-c', '1', '-d', 'float32', '-o', 'sum', '--iter-bytes', iterBytes, '--jit-warmup', jitWarmup];

/** A series: how to run the benchmark on n ranks with these tcclbench / mpibench flags. */
interface Series { name: string; kind: 'tccl' | 'mpi'; transport: string; args: (n: number, flags: string[]) => [string, string[]] }

const tcclSeries = (t: string): Series => ({
  name: `tccl-${t}`, kind: 'tccl', transport: t,
  args: (n, flags) => [process.execPath, ['bin/tcclrun.js', '-n', String(n), '--no-prefix', '--transport', t, '--timeout', String(runTimeoutS), 'bench/tcclbench.ts', ...flags]],
});

const mpiSeries = (binary: string, btl: string): Series => ({
  name: `ompi-${btl}`, kind: 'mpi', transport: btl,
  args: (n, flags) => ['mpirun', [
    '-n', String(n), '--oversubscribe', '--bind-to', 'none', ...(process.getuid?.() === 0 ? ['--allow-run-as-root'] : []),
    '--mca', 'pml', 'ob1', '--mca', 'btl', `self,${btl}`, '--mca', 'oob_tcp_if_include', 'lo',
    ...(btl === 'tcp' ? ['--mca', 'btl_tcp_if_include', 'lo'] : []),
    binary, ...flags, '--transport', btl,
  ]],
});

// ---- setup: tccl built, Open MPI built (installed if missing), transports probed ---------------
if (!existsSync(join(root, 'dist/src/launcher/cli.js'))) {
  log('dist/ missing: npm run build');
  if (spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' }).status !== 0) throw new Error('npm run build failed');
}

const unavailable: Record<string, string> = {};
const series: Series[] = [];
if (mpiBtls.length > 0) {
  const built = spawnSync('bash', [join(root, 'bench/mpi/build.sh')], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (built.status === 0) {
    const binary = built.stdout.trim().split('\n').pop()!;
    for (const btl of mpiBtls) series.push(mpiSeries(binary, btl));
  } else {
    for (const btl of mpiBtls) unavailable[`ompi-${btl}`] = built.stderr.trim().split('\n').slice(-2).join(' ');
  }
}
for (const t of transportsWanted) {
  const probeJson = join(outDir, `probe-${t}.json`);
  const s = tcclSeries(t);
  const [cmd, args] = s.args(2, ['allreduce', '-b', '8', '-e', '64K', '-f', '8192', '-n', '2', '-w', '1', '-c', '1', '-J', probeJson]);
  const probe = await runBench(cmd, args, probeJson, join(outDir, `probe-${t}.log`));
  if (probe.ok && probe.doc?.wrong === 0) series.push(s);
  else unavailable[s.name] = probe.error ?? `wrong results in the probe (${probe.doc?.wrong})`;
  log(`probe ${s.name}: ${series.includes(s) ? 'works' : `unavailable (${unavailable[s.name]})`}`);
}
// Alternate tccl and MPI so slow phases of the shared machine hit both alike.
const tcclList = series.filter((s) => s.kind === 'tccl');
const mpiList = series.filter((s) => s.kind === 'mpi');
const order: Series[] = [];
for (let i = 0; i < Math.max(tcclList.length, mpiList.length); i++) {
  if (tcclList[i]) order.push(tcclList[i]);
  if (mpiList[i]) order.push(mpiList[i]);
}

// ---- the runs ---------------------------------------------------------------------------------
interface Cell { series: string; n: number; coll: string; round: number; outcome: RunOutcome; earlierFailures: string[] }
const cells: Cell[] = [];
const total = rounds * ranks.length * collectives.length * order.length;
for (let round = 0; round < rounds; round++) {
  for (const n of ranks) {
    for (const coll of collectives) {
      for (const s of order) {
        const base = `${coll}-${s.name}-n${n}-r${round}`;
        const json = join(outDir, `${base}.json`);
        const [cmd, args] = s.args(n, [...benchFlags(coll, s.kind === 'tccl' ? maxFor.get(s.transport) : undefined), '-J', json]);
        log(`${cells.length + 1}/${total} ${s.name} ${coll} n=${n} round ${round + 1}/${rounds}`);
        const earlierFailures: string[] = [];
        let outcome: RunOutcome;
        for (let attempt = 0; ; attempt++) {
          outcome = await runBench(cmd, args, json, join(outDir, attempt ? `${base}.retry${attempt}.log` : `${base}.log`));
          log(`   ${outcome.ok ? 'ok' : `FAILED ${outcome.error}`} in ${outcome.seconds.toFixed(1)} s${outcome.doc ? `, #wrong ${outcome.doc.wrong}` : ''}`);
          // A run that wrote its whole JSON and then failed (at close) keeps its results; its
          // failure is reported below. Only a run without results is tried again.
          if (outcome.ok || outcome.doc || attempt >= retries) break;
          earlierFailures.push(outcome.error ?? 'failed');
          try { rmSync(json); } catch { /* none written */ }
          log('   trying once more');
        }
        cells.push({ series: s.name, n, coll, round, outcome, earlierFailures });
      }
    }
  }
}

// ---- aggregate: median over rounds, per size, out-of-place ------------------------------------
const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** busbw of one row by the chosen statistic (the reported mean, or the per-iteration median). */
const busbwOf = (p: { busbw: number; timeUs: number; medianUs: number }) => (stat === 'median' && p.medianUs > 0 ? (p.busbw * p.timeUs) / p.medianUs : p.busbw);

interface Agg { size: number; busbw: Record<string, number>; timeUs: Record<string, number>; spread: Record<string, [number, number]> }
function aggregate(n: number, coll: string): Agg[] {
  const docs = cells.filter((c) => c.n === n && c.coll === coll && c.outcome.doc);
  const sizes = [...new Set(docs.flatMap((c) => c.outcome.doc!.results.map((r) => r.size)))].sort((a, b) => a - b);
  return sizes.map((size) => {
    const a: Agg = { size, busbw: {}, timeUs: {}, spread: {} };
    for (const s of order) {
      const rows = docs.filter((c) => c.series === s.name).map((c) => c.outcome.doc!.results.find((r) => r.size === size)?.outOfPlace).filter((p) => p !== undefined);
      if (rows.length === 0) continue;
      const bws = rows.map(busbwOf);
      a.busbw[s.name] = med(bws);
      a.timeUs[s.name] = med(rows.map((p) => (stat === 'median' ? p.medianUs : p.timeUs)));
      a.spread[s.name] = [Math.min(...bws), Math.max(...bws)];
    }
    return a;
  });
}

const pairs: [string, string][] = [];
for (const t of tcclList) for (const m of mpiList) pairs.push([t.name, m.name]);
/** busbw ratio; a barrier moves no bytes, so its ratio is Open MPI's time over tccl's (also > 1: tccl faster). */
const ratioOf = (a: Agg, [t, m]: [string, string], coll: string) => {
  if (coll === 'barrier') return a.timeUs[t] > 0 && a.timeUs[m] > 0 ? a.timeUs[m] / a.timeUs[t] : NaN;
  return a.busbw[t] > 0 && a.busbw[m] > 0 ? a.busbw[t] / a.busbw[m] : NaN;
};
const geomean = (xs: number[]) => { const v = xs.filter((x) => x > 0 && Number.isFinite(x)); return v.length ? Math.exp(v.reduce((s, x) => s + Math.log(x), 0) / v.length) : NaN; };
const fmt = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const fmtBw = (x: number | undefined) => (x === undefined ? '-' : x >= 0.01 ? x.toFixed(3) : x.toExponential(1));

const md: string[] = [];
const summary: Record<string, unknown>[] = [];
const lines: string[] = [];
const out = (l = '') => { lines.push(l); console.log(l); };
out(`# bench:compare: ${collectives.join(', ')}, float32 sum, ${sizeLabel(minBytes)}..${sizeLabel(maxBytes)} B, -n ${iters} -w ${warmup} -c 1 --iter-bytes ${iterBytes} --jit-warmup ${jitWarmup}, ${rounds} round(s), busbw from the per-iteration ${stat}, out-of-place`);
for (const [t, max] of maxFor) if (tcclList.some((s) => s.transport === t) && max < maxBytes) out(`# tccl-${t}: swept to ${sizeLabel(max)} only (--max-for ${t}=${sizeLabel(max)})`);
for (const [name, why] of Object.entries(unavailable)) out(`# ${name}: unavailable: ${why}`);
const groups: PlotGroup[] = [];
for (const coll of collectives) {
  for (const n of ranks) {
    const agg = aggregate(n, coll);
    if (agg.length === 0) continue;
    out();
    const timed = coll === 'barrier'; // no bytes: time per call instead of busbw
    out(`## ${coll}, ${n} ranks: ${timed ? 'time per call (us)' : 'busbw GB/s'} and tccl/Open MPI ratio (>1: tccl faster)`);
    const head = ['size', ...order.map((s) => s.name), ...pairs.map(([t, m]) => `${t}/${m}`)];
    out(head.map((h, i) => (i === 0 ? h.padStart(8) : h.padStart(Math.max(10, h.length)))).join(' '));
    md.push('', `### ${coll}, ${n} ranks`, '', `| size | ${head.slice(1).join(' | ')} |`, `|---:|${head.slice(1).map(() => '---:').join('|')}|`);
    for (const a of agg) {
      const cellsOut = [...order.map((s) => (timed ? fmt(a.timeUs[s.name], 2) : fmtBw(a.busbw[s.name]))), ...pairs.map((p) => fmt(ratioOf(a, p, coll)))];
      out([sizeLabel(a.size).padStart(8), ...cellsOut.map((c, i) => c.padStart(Math.max(10, head[i + 1].length)))].join(' '));
      md.push(`| ${sizeLabel(a.size)} | ${cellsOut.join(' | ')} |`);
    }
    for (const p of pairs) {
      const band = (lo: number, hi: number) => geomean(agg.filter((a) => a.size >= lo && a.size <= hi).map((a) => ratioOf(a, p, coll)));
      const s = { coll, n, pair: `${p[0]}/${p[1]}`, small: band(0, 4096), mid: band(4097, (1 << 20) - 1), large: band(1 << 20, Infinity), all: band(0, Infinity) };
      summary.push(s);
      out(`   ${s.pair}: geometric mean ratio ${fmt(s.all)} (<= 4K: ${fmt(s.small)}, 4K-1M: ${fmt(s.mid)}, >= 1M: ${fmt(s.large)})`);
    }
    groups.push({ title: `${coll}, ${n} ranks`, series: order.filter((s) => a0(agg, s.name)).map((s) => ({ name: `${s.name} n=${n}`, dashed: s.kind === 'mpi', points: agg.filter((a) => a.busbw[s.name] !== undefined).map((a) => ({ size: a.size, busbw: a.busbw[s.name], timeUs: a.timeUs[s.name] })) })) });
  }
}
function a0(agg: Agg[], name: string) { return agg.some((a) => a.busbw[name] !== undefined); }

// ---- verdict ------------------------------------------------------------------------------------
const wrongRuns = cells.filter((c) => (c.outcome.doc?.wrong ?? 0) > 0);
const failed = cells.filter((c) => !c.outcome.doc);
const failedAfterResults = cells.filter((c) => c.outcome.doc && !c.outcome.ok);
const rowsChecked = cells.reduce((s, c) => s + (c.outcome.doc?.results.length ?? 0) * 2, 0);
out();
out(wrongRuns.length === 0 ? `#wrong = 0 everywhere (${rowsChecked} verified size x placement results over ${cells.length} runs)` : `#wrong > 0 in: ${wrongRuns.map((c) => `${c.series} ${c.coll} n=${c.n} (${c.outcome.doc!.wrong})`).join(', ')}`);
for (const c of failed) out(`FAILED (no results): ${c.series} ${c.coll} n=${c.n} round ${c.round + 1}: ${c.outcome.error}`);
for (const c of failedAfterResults) out(`exited non-zero after writing complete results (kept): ${c.series} ${c.coll} n=${c.n} round ${c.round + 1}: ${c.outcome.error}`);
for (const c of cells) for (const e of c.earlierFailures) out(`failed, then passed when run again: ${c.series} ${c.coll} n=${c.n} round ${c.round + 1}: ${e}`);
const seconds = elapsed();
// Other jobs share this machine: the load says how much the absolute numbers mean.
const load = `load average ${loadAtStart.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end`;
out(`compare finished in ${seconds.toFixed(0)} s (${cells.length} runs); ${load}`);

const date = new Date().toISOString();
const footnote = `${date.slice(0, 16)}Z, ${rounds} round(s), -n ${iters} -w ${warmup} --iter-bytes ${iterBytes} --jit-warmup ${jitWarmup}, busbw from per-iteration ${stat}, ${load}; dashed: Open MPI. ${wrongRuns.length === 0 ? '#wrong = 0 everywhere.' : 'WRONG RESULTS: see compare.txt'}`;
const svgPath = join(outDir, 'compare.svg');
writeFileSync(svgPath, renderSvg(`tccl vs Open MPI: ${collectives.join(', ')} (float32 sum)`, groups, footnote));
writeFileSync(join(outDir, 'compare.md'), md.join('\n') + '\n');
writeFileSync(join(outDir, 'compare.txt'), lines.join('\n') + '\n');
writeFileSync(join(outDir, 'compare.json'), JSON.stringify({ date, argv, load, stat, rounds, iters, warmup, jitWarmup, iterBytes, maxFor: Object.fromEntries(maxFor), minBytes, maxBytes, ranks, collectives, unavailable, summary, seconds, runs: cells.map((c) => ({ series: c.series, n: c.n, coll: c.coll, round: c.round, ok: c.outcome.ok, error: c.outcome.error, earlierFailures: c.earlierFailures, seconds: c.outcome.seconds, doc: c.outcome.doc })) }, null, 1) + '\n');
const png = spawnSync('rsvg-convert', ['-o', join(outDir, 'compare.png'), svgPath], { stdio: 'ignore' });
log(`wrote ${svgPath}${png.status === 0 ? ', compare.png' : ''}, compare.md, compare.txt, compare.json in ${outDir}`);
if (wrongRuns.length > 0 || failed.length > 0) process.exitCode = 1;
