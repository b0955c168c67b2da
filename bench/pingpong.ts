// Ping-pong between two processes: tccl over TCP next to raw node:net, in the same run,
// alternating the two so machine noise hits both alike. Reports medians and ratios.
//   npm run bench:pingpong [-- --rounds 5 --max 64M]
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Row { bytes: number; oneWayUs: number; gbps: number }
const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const rounds = Number(flag('--rounds', '5'));
const max = flag('--max', '64M');
const transport = flag('--transport', 'tcp');

const runJson = (cmd: string, argv: string[]): Row[] => {
  const out = execFileSync(cmd, argv, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no JSON from ${argv.join(' ')}:\n${out}`);
  return (JSON.parse(line) as { results: Row[] }).results;
};

const series: Record<'raw' | 'tccl', Row[][]> = { raw: [], tccl: [] };
for (let r = 0; r < rounds; r++) {
  series.raw.push(runJson(process.execPath, ['bench/raw-tcp-pingpong.mjs', '--max', max, '--json']));
  series.tccl.push(runJson(process.execPath, ['bin/tcclrun.js', '-n', '2', '--no-prefix', '--transport', transport, 'examples/ping-pong.ts', '--max', max, '--json']));
  process.stderr.write(`round ${r + 1}/${rounds}\n`);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sizes = series.raw[0].map((row) => row.bytes);
const table = sizes.map((bytes, i) => {
  const raw = median(series.raw.map((run) => run[i].oneWayUs));
  const tccl = median(series.tccl.map((run) => run[i].oneWayUs));
  return { bytes, rawUs: raw, tcclUs: tccl, rawGBps: bytes / raw / 1e3, tcclGBps: bytes / tccl / 1e3, bwRatio: raw / tccl };
});

console.log(`ping-pong, 2 processes, median of ${rounds} alternating runs; tccl transport: ${transport}`);
console.log(`${'bytes'.padStart(10)} ${'raw us'.padStart(9)} ${'tccl us'.padStart(9)} ${'raw GB/s'.padStart(9)} ${'tccl GB/s'.padStart(9)} ${'tccl/raw bw'.padStart(11)}`);
for (const t of table) {
  console.log(`${String(t.bytes).padStart(10)} ${t.rawUs.toFixed(2).padStart(9)} ${t.tcclUs.toFixed(2).padStart(9)} ${t.rawGBps.toFixed(3).padStart(9)} ${t.tcclGBps.toFixed(3).padStart(9)} ${t.bwRatio.toFixed(2).padStart(11)}`);
}
const large = table.filter((t) => t.bytes >= 1 << 20);
const worstLarge = Math.min(...large.map((t) => t.bwRatio));
const small = table.find((t) => t.bytes === 8);
console.log(`bandwidth >= 1 MiB: worst tccl/raw = ${worstLarge.toFixed(2)} (target >= 0.80)`);
if (small) console.log(`8 B one-way latency: tccl ${small.tcclUs.toFixed(2)} us, raw ${small.rawUs.toFixed(2)} us (target <= 25 us)`);
mkdirSync(`${root}/bench/out`, { recursive: true });
writeFileSync(`${root}/bench/out/pingpong.json`, JSON.stringify({ rounds, transport, table, series }, null, 1));
