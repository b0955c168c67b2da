// Reference: the same ping-pong over a bare node:net socket between two processes, no
// framing, no matching. `node bench/raw-tcp-pingpong.mjs [--min 8] [--max 64M] [--json]`
// forks the echo side itself.
import net from 'node:net';
import { fork } from 'node:child_process';

const args = process.argv.slice(2);
const flag = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const parseSize = (s) => {
  const m = /^(\d+)([KMG]?)$/i.exec(s);
  return Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase());
};

/** Resolve once `bytes` bytes have arrived on the socket. */
function reader(socket) {
  let want = 0, got = 0, wake = null;
  socket.on('data', (chunk) => {
    got += chunk.length;
    if (wake && got >= want) { got -= want; const w = wake; wake = null; w(); }
  });
  return (bytes) => new Promise((resolve) => {
    if (got >= bytes) { got -= bytes; resolve(); } else { want = bytes; wake = resolve; }
  });
}

if (args[0] === '--echo') {
  const server = net.createServer({ noDelay: true }, (socket) => {
    const read = reader(socket);
    let size = 0;
    (async () => {
      for (const [bytes, rounds] of JSON.parse(process.env.RAW_SWEEP)) {
        size = bytes;
        const buf = Buffer.alloc(size);
        for (let i = 0; i < rounds; i++) {
          await read(size);
          await new Promise((r) => socket.write(buf, r));
        }
      }
      socket.end();
      server.close();
    })();
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  const minBytes = parseSize(flag('--min', '8'));
  const maxBytes = parseSize(flag('--max', '64M'));
  const sweep = [];
  sweep.push([8, 2000, 2000]); // untimed warm-up round, as tccl's ping-pong does
  for (let bytes = minBytes; bytes <= maxBytes; bytes *= 4) {
    // Same schedule as examples/ping-pong.ts: large sizes need many warm-up round trips
    // before socket buffers and the allocator settle (16 iterations at 8 MiB measured 2-4x low).
    const iters = Math.max(20, Math.min(2000, Math.floor((1 << 30) / Math.max(bytes, 1) / 2)));
    sweep.push([bytes, iters + Math.max(5, iters >> 2), iters]);
  }
  const child = fork(new URL(import.meta.url).pathname, ['--echo'], {
    env: { ...process.env, RAW_SWEEP: JSON.stringify(sweep.map(([b, r]) => [b, r])) },
  });
  const port = await new Promise((r) => child.once('message', r));
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await new Promise((r) => socket.once('connect', r));
  const read = reader(socket);
  const results = [];
  for (const [bytes, rounds, iters] of sweep) {
    const buf = Buffer.alloc(bytes, 7);
    let start = 0n;
    for (let i = 0; i < rounds; i++) {
      if (i === rounds - iters) start = process.hrtime.bigint();
      await new Promise((r) => socket.write(buf, r));
      await read(bytes);
    }
    const oneWayUs = Number(process.hrtime.bigint() - start) / 1e3 / iters / 2;
    results.push({ bytes, iters, oneWayUs, gbps: bytes / (oneWayUs * 1e3) });
  }
  results.shift(); // the warm-up round
  socket.end();
  await new Promise((r) => child.once('exit', r));
  if (args.includes('--json')) console.log(JSON.stringify({ transport: 'raw-tcp', results }));
  else for (const r of results) console.log(r.bytes, r.oneWayUs.toFixed(2), r.gbps.toFixed(3));
}
