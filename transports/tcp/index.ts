import net from 'node:net';
import { JobAuth } from '../../src/auth.js';
import * as log from '../../src/diag/log.js';
import { TcclError } from '../../src/errors.js';
import type { Transport, TransportInit, TransportSink } from '../../src/transport.js';
import { FrameKind, type FrameHeader } from '../../src/wire/frame.js';
import { HELLO_MAX_BYTES, TcpHandshake } from './handshake.js';
import { heartbeatIntervalFromEnv, LinkLiveness } from '../../src/link-liveness.js';
import { LivenessProber, LivenessResponder } from '../../src/liveness.js';
import { Link, readThrough, SocketReader } from './link.js';

export interface TcpOptions extends TransportInit {
  /** Address to listen on and publish (loopback for single-host jobs). */
  host: string;
  /** Job identity sent in Hello: links from another job are refused. */
  jobId: string;
  /** Per-job secret for link authentication; default TCCL_JOB_SECRET (see src/auth.ts). */
  auth?: JobAuth;
  /** Idle-link heartbeat interval; a peer silent for 1.25 intervals is lost. Default TCCL_HEARTBEAT_MS or 15 s; 0 disables. */
  heartbeatMs?: number;
  /** Largest frame payload accepted from the network. */
  maxPayloadBytes?: number;
  /** Socket-buffered bytes per link before sends wait for 'drain'. */
  highWaterBytes?: number;
}

/** Unauthenticated connections are dropped after this long (or the job timeout if shorter). */
const HANDSHAKE_MAX_MS = 10_000;
const CLOSE_GRACE_MS = 2000;
/** How long close/abort tries to reach a peer it never linked to. */
const FAREWELL_DIAL_MS = 1000;
const DEFAULT_MAX_PAYLOAD = 2 ** 36;
const DEFAULT_HIGH_WATER = 8 << 20;

/**
 * TCP mesh over node:net. Every rank listens on `host`:0 and publishes its address in the
 * store; a link is made by whichever side sends first (or by connectAll, lower rank accepts).
 * Each rank sends to a peer on one link only, so frames to a peer stay in order; it reads
 * from every link the peer opened.
 */
export class TcpTransport implements Transport {
  readonly name = 'tcp';
  readonly rank: number;
  readonly size: number;
  private sink: TransportSink | null = null;
  private server: net.Server | null = null;
  private readonly sendLinks: (Link | null)[];
  private readonly connecting: (Promise<Link> | null)[];
  private readonly peerLinks: Set<Link>[];
  private readonly helloWaiters: ((link: Link) => void)[][];
  private readonly allLinks = new Set<Link>();
  private shuttingDown = false;
  private readonly maxPayload: number;
  private readonly highWater: number;
  private readonly handshake: TcpHandshake;
  private readonly heartbeat: LinkLiveness;

  constructor(private readonly opts: TcpOptions) {
    this.rank = opts.rank;
    this.size = opts.size;
    this.sendLinks = new Array(opts.size).fill(null);
    this.connecting = new Array(opts.size).fill(null);
    this.peerLinks = Array.from({ length: opts.size }, () => new Set<Link>());
    this.helloWaiters = Array.from({ length: opts.size }, () => []);
    this.maxPayload = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD;
    this.highWater = opts.highWaterBytes ?? DEFAULT_HIGH_WATER;
    this.handshake = new TcpHandshake(opts.rank, opts.size, opts.auth ?? JobAuth.fromEnv(opts.jobId), Math.min(opts.timeoutMs, HANDSHAKE_MAX_MS));
    this.heartbeat = new LinkLiveness(opts.rank, opts.heartbeatMs ?? heartbeatIntervalFromEnv(), () => this.allLinks, (peer, ms) => this.isAlive(peer, ms));
  }

  private addressKey(rank: number): string { return `${this.opts.prefix}/tcp/addr/${rank}`; }

  async start(sink: TransportSink): Promise<void> {
    this.sink = sink;
    const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (accepted) => {
      const reader = new SocketReader();
      const socket = readThrough(accepted, reader);
      this.handshake.accept(socket ? this.adopt(socket, reader) : this.adopt(accepted.resume(), null));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.host, port: 0 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { address, port } = server.address() as net.AddressInfo;
    if (address === '0.0.0.0' || address === '::') log.warn(this.rank, `tcp listens on every interface (${address}:${port}) because TCCL_SOCKET_ADDR/host asked for ${this.opts.host}; any host that reaches it can try to connect (connections still must authenticate)`);
    log.info(this.rank, `tcp listening on ${address}:${port}${this.handshake.auth.hasSecret ? '' : ' (no TCCL_JOB_SECRET: links are checked against the job id only)'}; heartbeat ${this.heartbeat.intervalMs} ms`);
    // Busy is not dead: a worker thread answers liveness probes while our main thread computes.
    if (this.heartbeat.intervalMs > 0) this.responder = await LivenessResponder.start(address);
    this.heartbeat.start();
    await this.opts.store.set(this.addressKey(this.rank), JSON.stringify({ host: address, port, probePort: this.responder?.port }));
  }

  private responder: LivenessResponder | null = null;
  private readonly prober = new LivenessProber();

  /** Does `peer`'s process answer a liveness probe? (Its address record names the probe port.) */
  private async isAlive(peer: number, timeoutMs: number): Promise<boolean> {
    try {
      const raw = await this.opts.store.get(this.addressKey(peer), timeoutMs);
      const { host, probePort } = JSON.parse(new TextDecoder().decode(raw)) as { host: string; probePort?: number };
      return probePort !== undefined && !this.shuttingDown && await this.prober.probe(host, probePort, timeoutMs);
    } catch {
      return false;
    }
  }

  private stopLiveness(): void {
    this.heartbeat.stop();
    this.prober.close();
    this.responder?.close();
    this.responder = null;
  }

  async connectAll(timeoutMs: number): Promise<void> {
    const links: Promise<Link>[] = [];
    for (let p = 0; p < this.size; p++) {
      if (p < this.rank) links.push(this.linkTo(p));
      else if (p > this.rank) links.push(this.accepted(p, timeoutMs));
    }
    await Promise.all(links);
  }

  /** Resolves when `peer` has connected to us (its Hello arrived). */
  private accepted(peer: number, timeoutMs: number): Promise<Link> {
    const existing = this.peerLinks[peer].values().next().value;
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new TcclError('TCCL_ERR_TIMEOUT', `rank ${peer} did not connect within ${timeoutMs} ms`, { rank: this.rank, peer, op: 'connect' })), timeoutMs);
      this.helloWaiters[peer].push((link) => {
        clearTimeout(timer);
        resolve(link);
      });
    });
  }

  send(peer: number, header: FrameHeader, payload: Uint8Array): Promise<void> {
    const link = this.sendLinks[peer];
    if (link) return link.send(header, payload);
    return this.linkTo(peer).then((l) => l.send(header, payload));
  }

  private linkTo(peer: number, timeoutMs = this.opts.timeoutMs, farewell = false): Promise<Link> {
    const link = this.sendLinks[peer];
    if (link) return Promise.resolve(link);
    if (this.shuttingDown && !farewell) return Promise.reject(new TcclError('TCCL_ERR_CLOSED', 'transport is closed', { rank: this.rank, peer }));
    let pending = this.connecting[peer];
    if (!pending) {
      pending = this.dial(peer, timeoutMs);
      this.connecting[peer] = pending;
      pending.catch(() => { this.connecting[peer] = null; });
    }
    return pending;
  }

  private async dial(peer: number, timeoutMs: number): Promise<Link> {
    const raw = await this.opts.store.get(this.addressKey(peer), timeoutMs);
    const { host, port } = JSON.parse(new TextDecoder().decode(raw)) as { host: string; port: number };
    const reader = new SocketReader();
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host, port, noDelay: true, onread: reader.onread });
      const timer = setTimeout(() => s.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.off('error', onError);
        resolve(s);
      });
      const onError = (e: Error) => {
        clearTimeout(timer);
        reject(new TcclError('TCCL_ERR_PEER_LOST', `cannot connect to rank ${peer} at ${host}:${port}: ${e.message}`, { rank: this.rank, peer, op: 'connect' }));
      };
      s.once('error', onError);
    });
    const link = this.adopt(socket, reader);
    await this.handshake.dial(link, peer);
    this.register(link, peer, true);
    return link;
  }

  /** Wrap a socket; its peer is set once the handshake authenticated it (handshake.ts). */
  private adopt(socket: net.Socket, reader: SocketReader | null): Link {
    const transport = this;
    const link: Link = new Link(socket, reader, {
      beginFrame(header) {
        if (link.peer < 0) {
          if (header.kind !== FrameKind.Hello || header.length > HELLO_MAX_BYTES) {
            throw new TcclError('TCCL_ERR_PROTOCOL', `first frame on a new connection must be a Hello of at most ${HELLO_MAX_BYTES} bytes (kind ${header.kind}, ${header.length} bytes)`, { rank: transport.rank });
          }
          return undefined;
        }
        return header.kind === FrameKind.Data || header.kind === FrameKind.Abort ? transport.sink!.beginFrame(link.peer, header) : undefined;
      },
      endFrame(header, payload) {
        if (link.peer < 0) {
          const peer = transport.handshake.onHello(link, header, payload);
          if (peer >= 0) transport.register(link, peer, false);
          return;
        }
        if (header.kind === FrameKind.Goodbye) return transport.onGoodbye(link);
        if (header.kind === FrameKind.Data || header.kind === FrameKind.Abort) transport.sink!.endFrame(link.peer, header, payload);
      },
      closed(closedLink, error) {
        transport.onClosed(closedLink, error);
      },
    }, this.maxPayload, this.highWater);
    this.allLinks.add(link);
    return link;
  }

  /** A link we dialled carries our sends; an accepted one does too unless we are dialling. */
  private register(link: Link, peer: number, dialled: boolean): void {
    this.peerLinks[peer].add(link);
    if (!this.sendLinks[peer] && (dialled || !this.connecting[peer])) this.sendLinks[peer] = link;
    for (const wake of this.helloWaiters[peer].splice(0)) wake(link);
  }

  private onGoodbye(link: Link): void {
    const peer = link.peer;
    link.destroy(new TcclError('TCCL_ERR_PEER_LOST', `rank ${peer} closed its communicator`));
  }

  private onClosed(link: Link, error: Error | null): void {
    this.allLinks.delete(link);
    const peer = link.peer;
    if (peer < 0) return this.handshake.onClosed(link, error, this.shuttingDown); // never authenticated: nothing depended on it
    log.info(this.rank, `link to rank ${peer} closed${error ? `: ${error.message}` : ''}`);
    this.peerLinks[peer].delete(link);
    if (this.sendLinks[peer] === link) this.sendLinks[peer] = null;
    // When both sides dialled, the peer may still be sending on its other link: only the
    // last link's end means the peer is gone (a Goodbye covers just the link it came on).
    if (this.shuttingDown || !this.sink || this.peerLinks[peer].size > 0) return;
    const reason = error instanceof TcclError ? error : new TcclError('TCCL_ERR_PEER_LOST', `connection to rank ${peer} lost${error ? `: ${error.message}` : ''}`);
    this.sink.peerLost(peer, new TcclError(reason.code, reason.detail, { rank: this.rank, peer }));
  }

  pauseReceive(peer: number): void { for (const l of this.peerLinks[peer]) l.pause(); }
  resumeReceive(peer: number): void { for (const l of this.peerLinks[peer]) l.resume(); }

  queuedBytes(peer?: number): number {
    let total = 0;
    for (const l of this.allLinks) if (peer === undefined || l.peer === peer) total += l.queuedBytes;
    return total;
  }

  /**
   * Links are lazy, so a peer we never talked to may be waiting on us: open a link to each
   * such peer (best effort, briefly) so it hears our Goodbye or Abort instead of timing out.
   */
  private async reachSilentPeers(): Promise<void> {
    const silent: Promise<unknown>[] = [];
    for (let p = 0; p < this.size; p++) {
      if (p !== this.rank && this.peerLinks[p].size === 0 && !this.sendLinks[p]) silent.push(this.linkTo(p, FAREWELL_DIAL_MS, true));
    }
    await Promise.allSettled(silent);
  }

  async close(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.stopLiveness();
    await this.reachSilentPeers();
    const goodbye: FrameHeader = { kind: FrameKind.Goodbye, context: 0, source: this.rank, tag: 0, seq: 0, aux: 0, length: 0 };
    await Promise.all([...this.allLinks].map((l) => {
      if (l.peer >= 0) void l.send(goodbye, EMPTY).catch(() => undefined);
      return l.end(CLOSE_GRACE_MS);
    }));
    await this.closeServer();
  }

  abort(reason: TcclError): Promise<void> {
    if (this.shuttingDown) return Promise.resolve();
    this.shuttingDown = true;
    this.stopLiveness();
    return this.sendAborts(reason);
  }

  private async sendAborts(reason: TcclError): Promise<void> {
    await this.reachSilentPeers();
    const message = new TextEncoder().encode(reason.detail);
    const abortFrame: FrameHeader = { kind: FrameKind.Abort, context: 0, source: this.rank, tag: 0, seq: 0, aux: 0, length: message.length };
    for (const l of this.allLinks) {
      if (l.peer >= 0) void l.send(abortFrame, message).catch(() => undefined);
      void l.end(CLOSE_GRACE_MS);
    }
    void this.closeServer();
  }

  private closeServer(): Promise<void> {
    const server = this.server;
    this.server = null;
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}

const EMPTY = new Uint8Array(0);
