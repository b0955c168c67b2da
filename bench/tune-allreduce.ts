// Measures where allreduce's algorithms cross over on this machine, to set the thresholds in
// src/collectives/select.ts. Every size runs every algorithm in turn, several rounds, in the
// same processes, so machine noise hits them alike; reports medians and the winner. Over shm
// (all ranks on this host) the shared-memory algorithm runs too.
//   npx tcclrun -n 4 --transport tcp|shm bench/tune-allreduce.ts [--max 16M] [--rounds 5] [-J out.json]
import { writeFileSync } from 'node:fs';
import { init } from 'tccl';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const parseSize = (s: string) => {
  const m = /^(\d+)([KMG]?)$/i.exec(s);
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase());
};
const maxBytes = parseSize(flag('--max', '16M'));
const rounds = Number(flag('--rounds', '5'));
const jsonOut = args.includes('-J') ? flag('-J', '') : '';
const comm = await init();
/** 'shm' where the world has shared memory (the argument check says so on every rank alike). */
const sharedMemory = await comm.allreduce(new Float32Array(1), { algorithm: 'shm' }).then(() => true, () => false);
const ALGORITHMS = ['rd', 'rabenseifner', 'ring', ...(sharedMemory ? ['shm'] : [])];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const rows: { bytes: number; us: Record<string, number>; best: string }[] = [];
for (let bytes = 8; bytes <= maxBytes; bytes *= 4) {
  const count = Math.max(1, bytes / 4);
  const buf = new Float32Array(count).fill(comm.rank + 1);
  // About 20 ms of work per measurement, at least 3 calls.
  const iters = Math.max(3, Math.min(1000, Math.floor((16 << 20) / bytes)));
  const samples: Record<string, number[]> = Object.fromEntries(ALGORITHMS.map((a) => [a, []]));
  for (let round = 0; round < rounds; round++) {
    for (const algorithm of ALGORITHMS) {
      await comm.allreduce(buf, { algorithm }); // warm-up
      await comm.barrier();
      const t0 = performance.now();
      for (let i = 0; i < iters; i++) await comm.allreduce(buf, { algorithm });
      // The slowest rank's time is the collective's time (as nccl-tests).
      const mine = new Float64Array([((performance.now() - t0) * 1000) / iters]);
      await comm.allreduce(mine, { op: 'max' });
      samples[algorithm].push(mine[0]);
    }
  }
  const us = Object.fromEntries(ALGORITHMS.map((a) => [a, median(samples[a])]));
  const best = ALGORITHMS.reduce((a, b) => (us[a] <= us[b] ? a : b));
  rows.push({ bytes, us, best });
  if (comm.rank === 0) console.log(`${String(bytes).padStart(10)} ${ALGORITHMS.map((a) => `${a} ${us[a].toFixed(1).padStart(9)}us`).join('  ')}  best ${best}`);
}
if (comm.rank === 0 && jsonOut) writeFileSync(jsonOut, JSON.stringify({ size: comm.size, transport: process.env.TCCL_TRANSPORT, rounds, rows }, null, 1));
await comm.close();
