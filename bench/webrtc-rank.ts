// One rank of bench/webrtc-compare.ts (run by tcclrun with --transport tcp or webrtc):
//   pingpong   ranks 0 and 1: one-way latency and bandwidth by message size
//   allreduce  every rank: float32 sum allreduce busbw (nccl-tests: algbw * 2(n-1)/n), verified
// Rank 0 prints one JSON line: {"transport","size","pingpong":[...]} or {"allreduce":[...]}.
import { init } from 'tccl';

const mode = process.argv[2] ?? 'pingpong';
const comm = await init({ connect: 'eager' });
const transport = process.env.TCCL_TRANSPORT ?? 'auto';

async function pingpong(): Promise<{ bytes: number; iters: number; oneWayUs: number; gbps: number }[]> {
  // Iterations per size: enough for a stable median on a noisy host, few enough that a
  // ~60 MB/s transport finishes in seconds.
  const plan: [number, number][] = [[8, 2000], [1024, 1000], [65536, 200], [1 << 20, 40], [4 << 20, 12]];
  const rows = [];
  const peer = 1 - comm.rank;
  for (const [bytes, iters] of plan) {
    const buf = new Uint8Array(bytes);
    if (comm.rank === 0) for (let i = 0; i < bytes; i++) buf[i] = i & 0xff;
    const warmup = Math.max(3, iters >> 3);
    let t0 = 0;
    for (let i = 0; i < warmup + iters; i++) {
      if (i === warmup) t0 = performance.now();
      if (comm.rank === 0) {
        await comm.send(buf, peer, { tag: 1 });
        await comm.recv(buf, peer, { tag: 2 });
      } else {
        await comm.recv(buf, peer, { tag: 1 });
        await comm.send(buf, peer, { tag: 2 });
      }
    }
    const us = ((performance.now() - t0) * 1000) / iters / 2;
    if (comm.rank === 0) for (let i = 0; i < bytes; i++) if (buf[i] !== (i & 0xff)) throw new Error(`ping-pong payload corrupted at byte ${i} of ${bytes}`);
    rows.push({ bytes, iters, oneWayUs: us, gbps: bytes / us / 1e3 });
  }
  return rows;
}

async function allreduce(): Promise<{ bytes: number; iters: number; ms: number; busGBps: number; wrong: number }[]> {
  const n = comm.size;
  const rows = [];
  for (const [bytes, iters] of [[1 << 20, 20], [16 << 20, 5]] as const) {
    const count = bytes / 4;
    const data = new Float32Array(count);
    const times: number[] = [];
    let wrong = 0;
    for (let i = 0; i < iters + 2; i++) {
      for (let j = 0; j < count; j++) data[j] = comm.rank + (j & 7);
      await comm.barrier();
      const t0 = performance.now();
      await comm.allreduce(data, { op: 'sum' });
      if (i >= 2) times.push(performance.now() - t0);
      // sum over r of (r + (j & 7)) = n(n-1)/2 + n(j & 7)
      for (let j = 0; j < count; j++) if (data[j] !== (n * (n - 1)) / 2 + n * (j & 7)) wrong++;
    }
    times.sort((a, b) => a - b);
    const ms = times[times.length >> 1];
    // Slowest rank decides: take the max of the per-rank medians.
    const all = await comm.allgatherObject(ms);
    const slowest = Math.max(...(all as number[]));
    rows.push({ bytes, iters, ms: slowest, busGBps: (bytes / (slowest / 1e3) / 1e9) * ((2 * (n - 1)) / n), wrong });
  }
  return rows;
}

if (mode === 'pingpong') {
  const rows = comm.rank < 2 ? await pingpong() : [];
  if (comm.rank === 0) console.log(JSON.stringify({ transport, size: comm.size, pingpong: rows }));
} else if (mode === 'allreduce') {
  const rows = await allreduce();
  if (comm.rank === 0) console.log(JSON.stringify({ transport, size: comm.size, allreduce: rows }));
} else {
  throw new Error(`unknown mode '${mode}': pingpong or allreduce`);
}
await comm.close();
