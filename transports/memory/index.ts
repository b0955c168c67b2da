import { TcclError } from '../../src/errors.js';
import type { Transport, TransportSink } from '../../src/transport.js';
import { FrameKind, type FrameHeader } from '../../src/wire/frame.js';

/**
 * In-process transport for unit tests: N ranks in one process exchange frames through
 * per-pair FIFO queues, delivered asynchronously (setImmediate) so ordering bugs surface.
 * Payloads are copied once, into the posted receive buffer or a fresh array.
 */
export function createMemoryWorld(size: number): MemoryTransport[] {
  const hub = new MemoryHub(size);
  return Array.from({ length: size }, (_, rank) => new MemoryTransport(hub, rank, size));
}

interface QueuedFrame {
  header: FrameHeader;
  payload: Uint8Array;
  done: () => void;
  failed: (e: TcclError) => void;
}

class MemoryHub {
  readonly transports: (MemoryTransport | null)[];
  constructor(size: number) { this.transports = new Array(size).fill(null); }
}

export class MemoryTransport implements Transport {
  readonly name = 'memory';
  private sink: TransportSink | null = null;
  /** Per source peer: frames waiting to be delivered to this rank, and whether delivery is paused. */
  private readonly inbox: QueuedFrame[][];
  private readonly paused: boolean[];
  private readonly scheduled: boolean[];
  private closed = false;

  constructor(private readonly hub: MemoryHub, readonly rank: number, readonly size: number) {
    this.inbox = Array.from({ length: size }, () => []);
    this.paused = new Array(size).fill(false);
    this.scheduled = new Array(size).fill(false);
  }

  async start(sink: TransportSink): Promise<void> {
    this.sink = sink;
    this.hub.transports[this.rank] = this;
  }

  async connectAll(): Promise<void> {}

  send(peer: number, header: FrameHeader, payload: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new TcclError('TCCL_ERR_CLOSED', 'memory transport is closed', { rank: this.rank, peer }));
    const target = this.hub.transports[peer];
    if (!target) return Promise.reject(new TcclError('TCCL_ERR_PEER_LOST', `rank ${peer} is not running`, { rank: this.rank, peer }));
    return new Promise((done, failed) => target.enqueue(this.rank, { header, payload, done, failed }));
  }

  private enqueue(from: number, frame: QueuedFrame): void {
    this.inbox[from].push(frame);
    this.schedule(from);
  }

  private schedule(from: number): void {
    if (this.scheduled[from] || this.paused[from]) return;
    this.scheduled[from] = true;
    setImmediate(() => this.drain(from));
  }

  private drain(from: number): void {
    this.scheduled[from] = false;
    const queue = this.inbox[from];
    while (queue.length && !this.paused[from] && this.sink) {
      const { header, payload, done } = queue.shift()!;
      const dest = this.sink.beginFrame(from, header);
      let delivered: Uint8Array | null = null;
      if (dest) {
        dest.set(payload);
        delivered = dest;
      } else if (dest === undefined) {
        delivered = payload.slice();
      }
      this.sink.endFrame(from, header, delivered);
      done();
    }
  }

  pauseReceive(peer: number): void { this.paused[peer] = true; }
  resumeReceive(peer: number): void {
    this.paused[peer] = false;
    this.schedule(peer);
  }

  queuedBytes(peer?: number): number {
    let total = 0;
    for (let p = 0; p < this.size; p++) {
      if (peer !== undefined && p !== peer) continue;
      const target = this.hub.transports[p];
      for (const f of target?.inbox[this.rank] ?? []) total += f.payload.length;
    }
    return total;
  }

  async close(): Promise<void> {
    this.shutdown(new TcclError('TCCL_ERR_PEER_LOST', `rank ${this.rank} closed its communicator`, { rank: this.rank }));
  }

  abort(reason: TcclError): void {
    for (let p = 0; p < this.size; p++) {
      const target = this.hub.transports[p];
      if (target && p !== this.rank) {
        target.enqueue(this.rank, {
          header: { kind: FrameKind.Abort, context: 0, source: this.rank, tag: 0, seq: 0, aux: 0, length: 0 },
          payload: new TextEncoder().encode(reason.detail), done: () => undefined, failed: () => undefined,
        });
      }
    }
    this.shutdown(reason);
  }

  private shutdown(reason: TcclError): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.transports[this.rank] = null;
    for (const queue of this.inbox) for (const f of queue.splice(0)) f.failed(reason);
    // Peers learn that this rank is gone once the frames it already sent are delivered.
    for (const target of this.hub.transports) {
      if (!target || target === this) continue;
      const lost = new TcclError('TCCL_ERR_PEER_LOST', `rank ${this.rank} left: ${reason.detail}`, { rank: target.rank, peer: this.rank });
      target.enqueue(this.rank, { header: GOODBYE, payload: new Uint8Array(0), done: () => target.sink?.peerLost(this.rank, lost), failed: () => undefined });
    }
  }
}

const GOODBYE: FrameHeader = { kind: FrameKind.Goodbye, context: 0, source: 0, tag: 0, seq: 0, aux: 0, length: 0 };
