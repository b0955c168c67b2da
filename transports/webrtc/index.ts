import pLimit, { type LimitFunction } from 'p-limit';
import { TcclError, isTcclError } from '../../src/errors.js';
import type { Transport, TransportInit, TransportSink } from '../../src/transport.js';
import { FrameKind, type FrameHeader } from '../../src/wire/frame.js';
import type { FrameSink } from '../../src/wire/parser.js';
import { ChannelLink } from './channel-link.js';
import { heartbeatIntervalFromEnv, LinkLiveness, type LiveLink } from '../../src/link-liveness.js';
import { LivenessProber, LivenessResponder } from '../../src/liveness.js';
import { openPeerConnection, parseIceServers, releasePeerConnection, type DataChannel, type PeerConnection } from './native.js';
import { Signalling } from './signalling.js';

export interface WebRtcOptions extends TransportInit {
  /** Local address ICE binds to (host candidates); '0.0.0.0' or '' gathers on every interface. */
  host: string;
  /** STUN/TURN servers (libdatachannel URLs); default from TCCL_ICE_SERVERS, else none (host candidates only). */
  iceServers?: string[];
  /** Longest time from both descriptions known to an open channel; default min(timeoutMs, 30 s). */
  iceTimeoutMs?: number;
  /** Handshakes this rank initiates at once (it answers any number); default 8. */
  setupConcurrency?: number;
  /** Largest frame payload accepted from the network. */
  maxPayloadBytes?: number;
  /** Bytes buffered per channel before sends wait for the buffered-amount-low event. */
  highWaterBytes?: number;
  /**
   * Largest UDP datagram (libdatachannel's MTU). Default TCCL_WEBRTC_MTU, else 4000 when bound to
   * loopback (per-packet cost dominates: 1280 -> 4000 doubled throughput here; above 4096 the
   * ICE layer's receive buffer truncates datagrams), else libdatachannel's internet-safe 1280.
   */
  mtu?: number;
  /** SCTP message size this side offers (max-message-size in its SDP); default 256 KiB. */
  maxMessageBytes?: number;
  /**
   * Start every link in the background at start() (default true; env TCCL_WEBRTC_PRECONNECT=0
   * turns it off): a handshake costs store round trips, ICE and DTLS (often over 1 s, see
   * docs/ARCHITECTURE.md), which should overlap the first collectives rather than sit in them.
   */
  preconnect?: boolean;
  /** Idle-link heartbeat interval; a peer silent for 1.5 intervals is lost. Default TCCL_HEARTBEAT_MS or 15 s; 0 disables. */
  heartbeatMs?: number;
}

const CLOSE_GRACE_MS = 2000;
/** How long close/abort tries to reach a peer it never linked to (ICE + DTLS + SCTP handshake). */
const FAREWELL_SETUP_MS = 3000;
const DEFAULT_ICE_TIMEOUT_MS = 30_000;
const DEFAULT_SETUP_CONCURRENCY = 8;
const DEFAULT_MAX_PAYLOAD = 2 ** 36;
const DEFAULT_HIGH_WATER = 4 << 20;
const DEFAULT_MAX_MESSAGE = 256 << 10;
const LOOPBACK_MTU = 4000;
/** Both sides create the one channel with this id (negotiated: no in-band DCEP round trip). */
const CHANNEL_ID = 0;

type PeerState = 'none' | 'connecting' | 'open' | 'closed';

interface PeerLink {
  state: PeerState;
  pc: PeerConnection | null;
  link: ChannelLink | null;
  ready: Promise<ChannelLink> | null;
  /** Liveness view of the open link. */
  live: LiveLink | null;
  /** Resolves once the connection is torn down (by either side). */
  closed: Promise<void>;
  markClosed: () => void;
}

/**
 * WebRTC mesh over node-datachannel (libdatachannel): one PeerConnection with one reliable,
 * ordered data channel per pair of ranks. SDP and ICE candidates travel through the rendezvous
 * store (lower rank offers); links are made on first use or by connectAll. Each channel
 * carries the same frames as TCP (src/wire), cut to the SCTP message size.
 */
export class WebRtcTransport implements Transport {
  readonly name = 'webrtc';
  readonly rank: number;
  readonly size: number;
  private sink: TransportSink | null = null;
  private readonly peers: PeerLink[];
  private readonly signalling: Signalling;
  private readonly limit: LimitFunction;
  private readonly iceServers: string[];
  private readonly iceTimeoutMs: number;
  private readonly maxPayload: number;
  private readonly highWater: number;
  private readonly maxMessage: number;
  private readonly mtu: number | undefined;
  private shuttingDown = false;
  private watcher: Promise<void> | null = null;
  private readonly liveness: LinkLiveness;

  constructor(private readonly opts: WebRtcOptions) {
    this.rank = opts.rank;
    this.size = opts.size;
    this.peers = Array.from({ length: opts.size }, () => newPeer());
    this.signalling = new Signalling(opts.store, opts.prefix);
    this.limit = pLimit(opts.setupConcurrency ?? DEFAULT_SETUP_CONCURRENCY);
    this.iceServers = opts.iceServers ?? parseIceServers(process.env.TCCL_ICE_SERVERS);
    this.iceTimeoutMs = opts.iceTimeoutMs ?? Math.min(opts.timeoutMs, DEFAULT_ICE_TIMEOUT_MS);
    this.maxPayload = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD;
    this.highWater = opts.highWaterBytes ?? DEFAULT_HIGH_WATER;
    this.maxMessage = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE;
    const envMtu = Number(process.env.TCCL_WEBRTC_MTU);
    this.mtu = opts.mtu ?? (envMtu > 0 ? envMtu : /^(127\.|::1$|localhost$)/.test(opts.host) ? LOOPBACK_MTU : undefined);
    this.liveness = new LinkLiveness(opts.rank, opts.heartbeatMs ?? heartbeatIntervalFromEnv(), () => this.openLinks(), (peer, ms) => this.isAlive(peer, ms));
  }

  private responder: LivenessResponder | null = null;
  private readonly prober = new LivenessProber();
  private probeKey(rank: number): string { return `${this.opts.prefix}/webrtc/probe/${rank}`; }

  /** Does `peer`'s process answer a liveness probe (its probe address is in the store)? */
  private async isAlive(peer: number, timeoutMs: number): Promise<boolean> {
    try {
      const raw = await this.opts.store.get(this.probeKey(peer), timeoutMs);
      const { host, port } = JSON.parse(new TextDecoder().decode(raw)) as { host: string; port: number };
      return !this.shuttingDown && await this.prober.probe(host, port, timeoutMs);
    } catch {
      return false;
    }
  }

  private *openLinks(): Iterable<LiveLink> {
    for (const p of this.peers) if (p.state === 'open' && p.live) yield p.live;
  }

  async start(sink: TransportSink): Promise<void> {
    this.sink = sink;
    this.watcher = this.watchRequests();
    // Busy is not dead: a worker thread answers liveness probes while our main thread computes.
    const probeHost = this.opts.host && this.opts.host !== '0.0.0.0' ? this.opts.host : '127.0.0.1';
    if (this.liveness.intervalMs > 0) {
      this.responder = await LivenessResponder.start(probeHost);
      await this.opts.store.set(this.probeKey(this.rank), JSON.stringify({ host: probeHost, port: this.responder.port }));
    }
    this.liveness.start();
    const preconnect = this.opts.preconnect ?? process.env.TCCL_WEBRTC_PRECONNECT !== '0';
    if (preconnect) {
      // Failures surface on the first send to that peer (p.ready stays rejected).
      for (let p = 0; p < this.size; p++) if (p !== this.rank) void this.linkTo(p, this.opts.timeoutMs, false, true).catch(() => undefined);
    }
  }

  /** Serve link requests from peers that need us (lazy setup, farewells) until close posts 'stop'. */
  private async watchRequests(): Promise<void> {
    for (let k = 1; ; k++) {
      let from: number | 'stop';
      try {
        from = await this.signalling.nextRequest(this.rank, k, this.opts.timeoutMs);
      } catch (e) {
        if (isTcclError(e, 'TCCL_ERR_TIMEOUT') && !this.shuttingDown) { k--; continue; } // idle: keep watching
        return; // the store closed: the job is over
      }
      if (from === 'stop') return;
      if (Number.isInteger(from) && from >= 0 && from < this.size && from !== this.rank && this.peers[from].state === 'none') {
        void this.linkTo(from, this.opts.timeoutMs, true, false).catch(() => undefined); // a failure reaches whoever sends
      }
    }
  }

  async connectAll(timeoutMs: number): Promise<void> {
    const links: Promise<ChannelLink>[] = [];
    for (let p = 0; p < this.size; p++) if (p !== this.rank) links.push(this.linkTo(p, timeoutMs, true, true));
    await Promise.all(links);
  }

  send(peer: number, header: FrameHeader, payload: Uint8Array): Promise<void> {
    const p = this.peers[peer];
    if (p.link && p.state === 'open') return p.link.send(header, payload);
    return this.linkTo(peer, this.opts.timeoutMs, false, true).then((l) => l.send(header, payload));
  }

  /**
   * The open link to `peer`, setting it up if needed. `announce`: tell the peer to start its
   * half (it may not know we want the link); false when the peer asked us.
   */
  private linkTo(peer: number, timeoutMs: number, farewell: boolean, announce: boolean): Promise<ChannelLink> {
    const p = this.peers[peer];
    if (p.ready) return p.ready;
    if (p.state === 'closed') return Promise.reject(new TcclError('TCCL_ERR_PEER_LOST', `the link to rank ${peer} is closed`, { rank: this.rank, peer }));
    if (this.shuttingDown && !farewell) return Promise.reject(new TcclError('TCCL_ERR_CLOSED', 'transport is closed', { rank: this.rank, peer }));
    p.state = 'connecting';
    const offerer = this.rank < peer;
    // Only handshakes this rank initiates wait for a slot; answers never do, so no cycle of
    // ranks can wait on each other's slots.
    const setup = () => this.establish(peer, timeoutMs);
    p.ready = offerer ? this.limit(setup) : setup();
    if (announce) void this.signalling.request(peer, this.rank).catch(() => undefined);
    p.ready.catch((e: unknown) => this.lose(peer, e instanceof TcclError ? e : new TcclError('TCCL_ERR_INTERNAL', String(e)), false));
    return p.ready;
  }

  private async establish(peer: number, timeoutMs: number): Promise<ChannelLink> {
    const p = this.peers[peer];
    if (p.state !== 'connecting') throw new TcclError('TCCL_ERR_CLOSED', 'transport is closed', { rank: this.rank, peer, op: 'connect' });
    const started = Date.now();
    const offerer = this.rank < peer;
    const pc = openPeerConnection(`tccl-${this.rank}-${peer}`, {
      iceServers: this.iceServers,
      bindAddress: this.opts.host && this.opts.host !== '0.0.0.0' ? this.opts.host : undefined,
      maxMessageSize: this.maxMessage,
      mtu: this.mtu,
    });
    p.pc = pc;
    let failure: ((e: TcclError) => void) | null = null;
    const describe = () => this.connectionState(pc);
    pc.onStateChange((state) => {
      if (state !== 'failed' && state !== 'closed' && state !== 'disconnected') return;
      if (p.state === 'connecting') failure?.(new TcclError('TCCL_ERR_PEER_LOST', `webrtc link between rank ${this.rank} and rank ${peer} failed after ${Date.now() - started} ms: ${describe()}`, { rank: this.rank, peer, op: 'connect' }));
      else if (p.state === 'open') this.lose(peer, new TcclError('TCCL_ERR_PEER_LOST', `connection to rank ${peer} lost (peer connection ${state})`), true);
    });
    const publishFailed = (e: unknown) => failure?.(e instanceof TcclError ? e : new TcclError('TCCL_ERR_STORE', String(e)));
    // The offerer holds its candidates back until it has applied the answer: otherwise the
    // answerer's checks can complete ICE and start DTLS before the offerer knows the answer's
    // certificate fingerprint, and the handshake fails ('unknown CA').
    const outbox = new CandidateOutbox((index, c) => { void this.signalling.publishCandidate(this.rank, peer, index, c).catch(publishFailed); }, !offerer);
    pc.onLocalDescription((sdp, type) => { void this.signalling.publishDescription(this.rank, peer, type, sdp).catch(publishFailed); });
    pc.onLocalCandidate((candidate, mid) => outbox.add({ candidate, mid }));
    pc.onGatheringStateChange((state) => { if (state === 'complete') outbox.add(null); });

    const failed = new Promise<never>((_, reject) => { failure = reject; });
    failed.catch(() => undefined);
    const channel = (): DataChannel => pc.createDataChannel('tccl', { negotiated: true, id: CHANNEL_ID });
    let dc: DataChannel;
    if (offerer) {
      dc = channel(); // starts the offer
      const answer = await Promise.race([this.signalling.description(this.rank, peer, 'answer', timeoutMs), failed]);
      pc.setRemoteDescription(answer, 'answer');
      outbox.open();
    } else {
      const offer = await Promise.race([this.signalling.description(this.rank, peer, 'offer', timeoutMs), failed]);
      pc.setRemoteDescription(offer, 'offer'); // answers
      dc = channel();
    }
    const link = new ChannelLink(dc, this.frameSink(peer), { maxPayload: this.maxPayload, highWaterBytes: this.highWater, maxMessageBytes: this.maxMessage },
      (e) => this.lose(peer, new TcclError(e.code, e.detail, { rank: this.rank, peer }), true));
    p.link = link;
    const iceDeadline = Math.min(this.iceTimeoutMs, timeoutMs);
    void this.addRemoteCandidates(pc, peer, timeoutMs, failure!);
    await Promise.race([failed, new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new TcclError('TCCL_ERR_TIMEOUT',
        `webrtc link between rank ${this.rank} and rank ${peer} did not open within ${iceDeadline} ms of signalling: ${describe()}`, { rank: this.rank, peer, op: 'connect' })), iceDeadline);
      dc.onOpen(() => { clearTimeout(timer); resolve(); });
      failed.catch(() => clearTimeout(timer));
    })]);
    dc.onClosed(() => {
      if (p.state === 'open') this.lose(peer, new TcclError('TCCL_ERR_PEER_LOST', `connection to rank ${peer} lost (data channel closed)`), true);
    });
    // The channel's limit is the smaller of both sides' max-message-size.
    link.setMaxMessageBytes(dc.maxMessageSize());
    p.live = {
      peer,
      bytesReceived: () => pc.bytesReceived(),
      bytesSent: () => pc.bytesSent(),
      unsentBytes: () => link.queuedBytes,
      sendHeartbeat: (frame) => { void link.send(frame, EMPTY).catch(() => undefined); },
      lost: (error) => this.lose(peer, error, true),
    };
    p.state = 'open';
    return link;
  }

  /** Trickle the peer's candidates from the store into `pc` until its gathering completes. */
  private async addRemoteCandidates(pc: PeerConnection, peer: number, timeoutMs: number, fail: (e: TcclError) => void): Promise<void> {
    const p = this.peers[peer];
    try {
      for (let i = 0; ; i++) {
        const c = await this.signalling.candidate(this.rank, peer, i, timeoutMs);
        if (!c || p.pc !== pc || p.state === 'closed') return;
        pc.addRemoteCandidate(c.candidate, c.mid);
      }
    } catch (e) {
      if (p.state === 'connecting') fail(e instanceof TcclError ? e : new TcclError('TCCL_ERR_PEER_LOST', `bad ICE candidate from rank ${peer}: ${String(e)}`, { rank: this.rank, peer, op: 'connect' }));
    }
  }

  private connectionState(pc: PeerConnection): string {
    try {
      return `ICE state '${pc.iceState()}', peer connection '${pc.state()}', gathering '${pc.gatheringState()}', signalling '${pc.signalingState()}'`;
    } catch {
      return 'peer connection already released';
    }
  }

  private frameSink(peer: number): FrameSink {
    return {
      beginFrame: (header) => (header.kind === FrameKind.Data || header.kind === FrameKind.Abort ? this.sink!.beginFrame(peer, header) : undefined),
      endFrame: (header, payload) => {
        if (header.kind === FrameKind.Goodbye) this.lose(peer, new TcclError('TCCL_ERR_PEER_LOST', `rank ${peer} closed its communicator`), true);
        else if (header.kind === FrameKind.Data || header.kind === FrameKind.Abort) this.sink!.endFrame(peer, header, payload);
      },
    };
  }

  /** Tear the link to `peer` down; tell the engine if the peer was linked and we are not closing. */
  private lose(peer: number, error: TcclError, wasOpen: boolean): void {
    const p = this.peers[peer];
    if (p.state === 'closed') return;
    p.state = 'closed';
    const reason = new TcclError(error.code, error.detail, { rank: this.rank, peer });
    p.link?.fail(reason);
    const pc = p.pc;
    p.pc = null;
    // Native callbacks may be running: release on the next turn, outside them.
    if (pc) setImmediate(() => releasePeerConnection(pc));
    p.markClosed();
    if (wasOpen && !this.shuttingDown && this.sink) this.sink.peerLost(peer, reason);
  }

  pauseReceive(peer: number): void { this.peers[peer].link?.pause(); }
  resumeReceive(peer: number): void { this.peers[peer].link?.resume(); }

  queuedBytes(peer?: number): number {
    let total = 0;
    this.peers.forEach((p, r) => { if ((peer === undefined || peer === r) && p.link) total += p.link.queuedBytes; });
    return total;
  }

  /** A peer we never linked to may be waiting on us: link briefly so it hears our Goodbye or Abort. */
  private async reachSilentPeers(): Promise<void> {
    const silent: Promise<unknown>[] = [];
    for (let p = 0; p < this.size; p++) if (p !== this.rank && this.peers[p].state === 'none') silent.push(this.linkTo(p, FAREWELL_SETUP_MS, true, true));
    await Promise.allSettled(silent);
  }

  async close(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    await this.farewell({ kind: FrameKind.Goodbye, context: 0, source: this.rank, tag: 0, seq: 0, aux: 0, length: 0 }, EMPTY);
  }

  abort(reason: TcclError): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    const message = new TextEncoder().encode(reason.detail);
    void this.farewell({ kind: FrameKind.Abort, context: 0, source: this.rank, tag: 0, seq: 0, aux: 0, length: message.length }, message);
  }

  /**
   * Send `header` (Goodbye or Abort) behind everything queued on every link, wait (bounded) for
   * each peer to close its side — proof our frames arrived — then release every connection.
   */
  private async farewell(header: FrameHeader, payload: Uint8Array): Promise<void> {
    this.liveness.stop();
    this.prober.close();
    this.responder?.close();
    this.responder = null;
    await this.reachSilentPeers();
    const waits: Promise<void>[] = [];
    for (const p of this.peers) {
      if (p.state === 'open' && p.link) {
        void p.link.send(header, payload).catch(() => undefined);
        waits.push(withGrace(p.closed, CLOSE_GRACE_MS));
      } else if (p.state === 'connecting') {
        waits.push(withGrace(p.closed, CLOSE_GRACE_MS));
      }
    }
    await Promise.all(waits);
    const gone = new TcclError('TCCL_ERR_CLOSED', 'transport closed', { rank: this.rank });
    for (let peer = 0; peer < this.size; peer++) this.lose(peer, gone, false);
    await this.signalling.request(this.rank, 'stop').catch(() => undefined);
    await this.watcher;
  }
}

/** Local ICE candidates in gathering order, published once `open` (a null entry ends the list). */
class CandidateOutbox {
  private readonly held: ({ candidate: string; mid: string } | null)[] = [];
  private published = 0;
  constructor(private readonly publish: (index: number, c: { candidate: string; mid: string } | null) => void, private isOpen: boolean) {}

  add(c: { candidate: string; mid: string } | null): void {
    if (this.isOpen) this.publish(this.published++, c);
    else this.held.push(c);
  }

  open(): void {
    this.isOpen = true;
    for (const c of this.held.splice(0)) this.publish(this.published++, c);
  }
}

function newPeer(): PeerLink {
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => { markClosed = resolve; });
  return { state: 'none', pc: null, link: null, ready: null, live: null, closed, markClosed };
}

function withGrace(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void p.then(() => { clearTimeout(timer); resolve(); });
  });
}

const EMPTY = new Uint8Array(0);
