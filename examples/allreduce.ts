// Allreduce across every rank, verified against the sum computed locally.
//   npx tcclrun -n 4 examples/allreduce.ts [count]
import { init } from 'tccl';

const comm = await init(); // rank and size from tcclrun (or torchrun, SLURM, Open MPI, PMI)
const count = Number(process.argv[2] ?? 1 << 20);

// Each rank's values are unique (gloo's rank * count + i), so a misplaced element shows.
const data = new Float64Array(count).map((_, i) => comm.rank * count + i);
const t0 = performance.now();
await comm.allreduce(data, { op: 'sum' }); // in place: every rank gets the sum
const ms = performance.now() - t0;

let wrong = 0;
for (let i = 0; i < count; i++) {
  // sum over r of (r * count + i) = count * size(size-1)/2 + size * i
  const expected = (count * comm.size * (comm.size - 1)) / 2 + comm.size * i;
  if (data[i] !== expected) wrong++;
}

// Point-to-point around a ring: nonblocking forms return awaitable requests.
const next = (comm.rank + 1) % comm.size;
const prev = (comm.rank + comm.size - 1) % comm.size;
const inbox = new Int32Array(1);
const req = comm.irecv(inbox, prev, { tag: 7 });
await comm.send(new Int32Array([comm.rank]), next, { tag: 7 });
const status = await req;
if (inbox[0] !== prev || status.source !== prev) wrong++;

const all = await comm.allgatherObject({ rank: comm.rank, wrong });
if (comm.rank === 0) {
  const totalWrong = all.reduce((s, r) => s + r.wrong, 0);
  console.log(`allreduce of ${count} float64 over ${comm.size} ranks: ${totalWrong === 0 ? 'verified, 0 wrong' : `${totalWrong} WRONG`} (${ms.toFixed(1)} ms on rank 0)`);
  if (totalWrong) process.exitCode = 1;
}
await comm.close();
