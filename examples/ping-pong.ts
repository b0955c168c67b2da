// Ping-pong between rank 0 and rank 1: one-way latency and bandwidth by message size.
//   npx tcclrun -n 2 examples/ping-pong.ts [--min 8] [--max 64M] [--json]
import { init } from 'tccl';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const parseSize = (s: string) => {
  const m = /^(\d+)([KMG]?)$/i.exec(s);
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase());
};
const minBytes = parseSize(flag('--min', '8'));
const maxBytes = parseSize(flag('--max', '64M'));
const json = args.includes('--json');

const comm = await init();
if (comm.size < 2) throw new Error('ping-pong needs at least 2 ranks: tcclrun -n 2 examples/ping-pong.ts');

/** One round trip of `buf`: rank 0 sends and waits for the echo, rank 1 echoes. */
async function roundTrip(buf: Uint8Array): Promise<void> {
  if (comm.rank === 0) {
    await comm.send(buf, 1, { tag: 1 });
    await comm.recv(buf, 1, { tag: 2 });
  } else if (comm.rank === 1) {
    await comm.recv(buf, 0, { tag: 1 });
    await comm.send(buf, 0, { tag: 2 });
  }
}

// Untimed warm-up with the timed loop's own calls: links are made lazily and the JIT needs a
// few thousand round trips (a warm-up through sendrecv left the first timed size 50% slow).
const warm = new Uint8Array(8);
for (let i = 0; i < 3000; i++) await roundTrip(warm);

const results: { bytes: number; iters: number; oneWayUs: number; gbps: number }[] = [];
for (let bytes = minBytes; bytes <= maxBytes; bytes *= 4) {
  const buf = new Uint8Array(bytes);
  // Enough round trips for a stable figure; large sizes need many warm-up round trips
  // before socket buffers and the allocator settle (16 iterations at 8 MiB measured 2-4x low).
  const iters = Math.max(20, Math.min(2000, Math.floor((1 << 30) / Math.max(bytes, 1) / 2)));
  const warmup = Math.max(5, iters >> 2);
  if (comm.rank === 0) {
    for (let i = 0; i < bytes; i++) buf[i] = i & 0xff;
  }
  let elapsedNs = 0n;
  for (let i = 0; i < warmup + iters; i++) {
    if (i === warmup) elapsedNs = process.hrtime.bigint();
    await roundTrip(buf);
  }
  elapsedNs = process.hrtime.bigint() - elapsedNs;
  if (comm.rank === 0) {
    for (let i = 0; i < bytes; i++) if (buf[i] !== (i & 0xff)) throw new Error(`ping-pong payload corrupted at byte ${i} of ${bytes}`);
    const oneWayUs = Number(elapsedNs) / 1e3 / iters / 2;
    results.push({ bytes, iters, oneWayUs, gbps: bytes / (oneWayUs * 1e3) });
  }
}

if (comm.rank === 0) {
  if (json) console.log(JSON.stringify({ transport: process.env.TCCL_TRANSPORT ?? 'tcp', results }));
  else {
    console.log(`${'bytes'.padStart(12)} ${'iters'.padStart(6)} ${'one-way(us)'.padStart(12)} ${'GB/s'.padStart(8)}`);
    for (const r of results) console.log(`${String(r.bytes).padStart(12)} ${String(r.iters).padStart(6)} ${r.oneWayUs.toFixed(2).padStart(12)} ${r.gbps.toFixed(3).padStart(8)}`);
    console.log('ping-pong verified: payload intact at every size');
  }
}
await comm.close();
