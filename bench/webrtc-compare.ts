// WebRTC transport next to TCP in the same run, alternating the two so machine noise hits
// both alike: ping-pong latency / bandwidth (2 ranks) and allreduce busbw at 1 MiB and 16 MiB.
// Reports medians over rounds, the webrtc/tcp ratio and the spread (min..max over rounds).
//   npx tsx bench/webrtc-compare.ts [--rounds 3] [--n 2]      (after npm run build)
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const rounds = Number(flag('--rounds', '3'));
const n = Number(flag('--n', '2'));
const TRANSPORTS = ['tcp', 'webrtc'] as const;
type Transport = (typeof TRANSPORTS)[number];

interface PingRow { bytes: number; oneWayUs: number; gbps: number }
interface ArRow { bytes: number; ms: number; busGBps: number; wrong: number }

function job(transport: Transport, ranks: number, mode: string): Record<string, unknown> {
  const out = execFileSync(process.execPath, ['bin/tcclrun.js', '-n', String(ranks), '--no-prefix', '--transport', transport, '--timeout', '300', 'bench/webrtc-rank.ts', mode], {
    cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no JSON from ${transport} ${mode}:\n${out}`);
  return JSON.parse(line) as Record<string, unknown>;
}

const ping: Record<Transport, PingRow[][]> = { tcp: [], webrtc: [] };
const ar: Record<Transport, ArRow[][]> = { tcp: [], webrtc: [] };
for (let r = 0; r < rounds; r++) {
  for (const t of TRANSPORTS) {
    ping[t].push(job(t, 2, 'pingpong').pingpong as PingRow[]);
    ar[t].push(job(t, n, 'allreduce').allreduce as ArRow[]);
  }
  process.stderr.write(`round ${r + 1}/${rounds}\n`);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}..${Math.max(...xs).toFixed(digits)}`;
const size = (b: number) => (b >= 1 << 20 ? `${b >> 20} MiB` : b >= 1024 ? `${b >> 10} KiB` : `${b} B`);

console.log(`ping-pong, 2 processes, median of ${rounds} alternating rounds (spread = min..max over rounds)`);
console.log(`${'size'.padStart(8)} ${'tcp us'.padStart(9)} ${'webrtc us'.padStart(10)} ${'lat x'.padStart(6)} ${'tcp GB/s'.padStart(9)} ${'webrtc GB/s'.padStart(12)} ${'bw ratio'.padStart(9)}  webrtc us spread`);
const pingTable = ping.tcp[0].map((row, i) => {
  const tcpUs = median(ping.tcp.map((run) => run[i].oneWayUs));
  const rtcUs = median(ping.webrtc.map((run) => run[i].oneWayUs));
  const t = { bytes: row.bytes, tcpUs, webrtcUs: rtcUs, tcpGBps: row.bytes / tcpUs / 1e3, webrtcGBps: row.bytes / rtcUs / 1e3, bwRatio: tcpUs / rtcUs, webrtcSpread: spread(ping.webrtc.map((run) => run[i].oneWayUs), 1) };
  console.log(`${size(t.bytes).padStart(8)} ${t.tcpUs.toFixed(1).padStart(9)} ${t.webrtcUs.toFixed(1).padStart(10)} ${(t.webrtcUs / t.tcpUs).toFixed(1).padStart(6)} ${t.tcpGBps.toFixed(3).padStart(9)} ${t.webrtcGBps.toFixed(3).padStart(12)} ${t.bwRatio.toFixed(3).padStart(9)}  ${t.webrtcSpread}`);
  return t;
});

console.log(`\nallreduce float32 sum, ${n} processes, busbw = algbw * 2(n-1)/n, median of ${rounds} rounds (each the slowest rank's median)`);
console.log(`${'size'.padStart(8)} ${'tcp GB/s'.padStart(9)} ${'webrtc GB/s'.padStart(12)} ${'ratio'.padStart(7)} ${'#wrong'.padStart(7)}  spread tcp | webrtc`);
const arTable = ar.tcp[0].map((row, i) => {
  const tcp = median(ar.tcp.map((run) => run[i].busGBps));
  const rtc = median(ar.webrtc.map((run) => run[i].busGBps));
  const wrong = [...ar.tcp, ...ar.webrtc].reduce((a, run) => a + run[i].wrong, 0);
  const t = { bytes: row.bytes, tcpBusGBps: tcp, webrtcBusGBps: rtc, ratio: rtc / tcp, wrong, tcpSpread: spread(ar.tcp.map((run) => run[i].busGBps), 3), webrtcSpread: spread(ar.webrtc.map((run) => run[i].busGBps), 3) };
  console.log(`${size(t.bytes).padStart(8)} ${tcp.toFixed(3).padStart(9)} ${rtc.toFixed(3).padStart(12)} ${t.ratio.toFixed(3).padStart(7)} ${String(wrong).padStart(7)}  ${t.tcpSpread} | ${t.webrtcSpread}`);
  return t;
});

mkdirSync(`${root}/bench/out`, { recursive: true });
writeFileSync(`${root}/bench/out/webrtc-compare.json`, JSON.stringify({ rounds, n, pingTable, arTable, ping, ar }, null, 1));
