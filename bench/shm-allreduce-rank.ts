// One measurement run inside tcclrun (see bench/shm-allreduce.ts): float32 sum allreduce
// at the given sizes, `reps` timed repetitions each after warm-up, results verified.
// Rank 0 prints one JSON line: per size the mean time per allreduce of each repetition.
import { init } from 'tccl';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const sizes = flag('--sizes', '8,16777216,67108864').split(',').map(Number);
const reps = Number(flag('--reps', '5'));

const comm = await init();
const { rank, size } = comm;
const results: { bytes: number; iters: number; secs: number[]; wrong: number }[] = [];
for (const bytes of sizes) {
  const count = Math.max(1, bytes / 4);
  const src = new Float32Array(count).map((_, i) => ((i % 1000) + rank) * 0.5);
  const out = new Float32Array(count);
  // Enough iterations per repetition to last ~0.2 s on this machine, at least 2.
  const iters = bytes <= 4096 ? 2000 : Math.max(2, Math.round(2e8 / bytes));
  for (let w = 0; w < Math.min(iters, bytes <= 4096 ? 200 : 2); w++) await comm.allreduce(src, { out });
  const secs: number[] = [];
  for (let r = 0; r < reps; r++) {
    await comm.barrier();
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) await comm.allreduce(src, { out });
    secs.push((performance.now() - t0) / 1e3 / iters);
  }
  let wrong = 0;
  for (let i = 0; i < count; i++) {
    const expected = size * (i % 1000) * 0.5 + (size * (size - 1)) / 4;
    if (out[i] !== expected) wrong++;
  }
  results.push({ bytes, iters, secs, wrong });
}
if (rank === 0) console.log(JSON.stringify({ size, transport: process.env.TCCL_TRANSPORT, results }));
await comm.close();
