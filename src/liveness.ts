/**
 * Is a silent peer dead, stopped, or only busy? A rank whose main thread runs a long
 * synchronous kernel sends no heartbeats, but it is alive and will answer. Each process runs a
 * tiny UDP echo responder on a worker thread: it keeps answering while the main thread is
 * busy, and stops answering when the process is stopped (SIGSTOP) or gone. Heartbeat code
 * probes a peer only when it has been silent too long, and declares it lost only when the
 * probe goes unanswered.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { Worker } from 'node:worker_threads';

const PROBE_BYTES = 16;
const PROBE_MAGIC = 0x504c4354; // 'TCLP' little-endian

// Plain JS run by the worker: echo well-formed probes to their sender, ignore anything else.
const RESPONDER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const dgram = require('node:dgram');
const socket = dgram.createSocket(workerData.type);
socket.on('message', (msg, from) => {
  if (msg.length === ${PROBE_BYTES} && msg.readUInt32LE(0) === ${PROBE_MAGIC}) socket.send(msg, from.port, from.address);
});
socket.on('error', (e) => parentPort.postMessage({ error: e.message }));
socket.bind(0, workerData.host, () => parentPort.postMessage({ port: socket.address().port }));
parentPort.on('message', (m) => { if (m === 'close') socket.close(() => process.exit(0)); });
`;

const socketType = (host: string): 'udp4' | 'udp6' => (isIPv6(host) ? 'udp6' : 'udp4');

/** The echo side, on its own thread; `port` is what peers probe. */
export class LivenessResponder {
  private constructor(private readonly worker: Worker, readonly port: number) {}

  static start(host: string): Promise<LivenessResponder> {
    const worker = new Worker(RESPONDER_SOURCE, { eval: true, workerData: { host, type: socketType(host) } });
    worker.unref(); // never what keeps a process alive
    return new Promise((resolve, reject) => {
      worker.once('message', (m: { port?: number; error?: string }) => {
        if (m.port) resolve(new LivenessResponder(worker, m.port));
        else reject(new Error(`liveness responder failed to bind ${host}: ${m.error}`));
      });
      worker.once('error', reject);
    });
  }

  close(): void {
    this.worker.postMessage('close');
    // A stuck worker must not hold up shutdown.
    setTimeout(() => void this.worker.terminate(), 200).unref();
  }
}

/** The probing side: one UDP socket, any number of outstanding probes. */
export class LivenessProber {
  private socket: dgram.Socket | null = null;
  private readonly waiting = new Map<string, () => void>();

  /**
   * True when `host:port` echoes a probe within `timeoutMs` (sent up to 3 times, since UDP
   * may drop one); false when it does not.
   */
  probe(host: string, port: number, timeoutMs: number): Promise<boolean> {
    const socket = this.open(host);
    const probe = randomBytes(PROBE_BYTES);
    probe.writeUInt32LE(PROBE_MAGIC, 0);
    const key = probe.toString('hex');
    return new Promise((resolve) => {
      const send = () => socket.send(probe, port, host, () => undefined);
      const resend = setInterval(send, Math.max(1, timeoutMs / 3));
      const done = (answered: boolean) => {
        clearInterval(resend);
        clearTimeout(deadline);
        this.waiting.delete(key);
        resolve(answered);
      };
      const deadline = setTimeout(() => done(false), timeoutMs);
      this.waiting.set(key, () => done(true));
      send();
    });
  }

  private open(host: string): dgram.Socket {
    if (this.socket) return this.socket;
    const socket = dgram.createSocket(socketType(host));
    socket.on('message', (msg) => this.waiting.get(msg.toString('hex'))?.());
    socket.on('error', () => undefined); // e.g. ICMP port unreachable: the probe simply times out
    socket.unref();
    this.socket = socket;
    return socket;
  }

  close(): void {
    for (const answer of [...this.waiting.values()]) answer();
    this.socket?.close();
    this.socket = null;
  }
}
