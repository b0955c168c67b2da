// Where the CPU goes while one rank streams 160 MiB to another: wall time, MB/s and CPU seconds
// per thread (from /proc/self/task), to compare transports. libdatachannel runs in its own
// threads ("RTC worker", "juice poll"), which a JS --cpu-prof does not see.
//   npx tcclrun -n 2 --transport webrtc bench/webrtc-stream-cpu.ts   (or --transport tcp)
import { init } from 'tccl';
import { readdirSync, readFileSync } from 'node:fs';
const comm = await init({ connect: 'eager' });
const buf = new Uint8Array(4 << 20);
const peer = 1 - comm.rank;
const t0 = performance.now();
for (let i = 0; i < 40; i++) {
  if (comm.rank === 0) await comm.send(buf, peer, { tag: 1 }); else await comm.recv(buf, peer, { tag: 1 });
}
await comm.barrier();
const s = (performance.now() - t0) / 1e3;
if (comm.rank === 0) console.log(`streamed ${40 * 4} MiB in ${s.toFixed(2)} s: ${(40 * 4 / 1.048576 / s).toFixed(1)} MB/s; cpu user ${(process.cpuUsage().user / 1e6).toFixed(2)} s sys ${(process.cpuUsage().system / 1e6).toFixed(2)} s`);
const threads = new Map<string, number>();
for (const tid of readdirSync('/proc/self/task')) {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  threads.set(name, (threads.get(name) ?? 0) + ticks / 100);
}
console.log(`rank ${comm.rank} thread cpu s: ` + [...threads].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v.toFixed(2)}`).join(' '));
await comm.close();
