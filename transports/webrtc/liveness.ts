/**
 * Peer liveness for WebRTC links, with tcp's rule (transports/tcp/heartbeat.ts, same
 * TCCL_HEARTBEAT_MS): a link we sent nothing on for half an interval gets a Heartbeat frame;
 * a peer we received nothing from for 1.25 intervals has its process probed (src/liveness.ts:
 * a worker thread there answers while its main thread is busy in a long kernel), and no answer
 * within 0.4 intervals loses the link. A killed peer sends no UDP reset, so without this a dead
 * peer is noticed only when SCTP gives up retransmitting (about 14 s here, and only while we
 * send). "Received" is libdatachannel's count of message bytes from the peer, so nothing is
 * added to the data path. Behind NAT the probe cannot reach the peer: silence alone decides.
 */
import { TcclError } from '../../src/errors.js';
import { FrameKind, type FrameHeader } from '../../src/wire/frame.js';

export { heartbeatIntervalFromEnv } from '../tcp/heartbeat.js';

const SILENCE_INTERVALS = 1.25;
/** Probe answer window, as a share of the interval (silence + tick + this stays within 2 intervals). */
const PROBE_INTERVALS = 0.4;

/** Asks the peer's process whether it is alive; false if it does not answer within `timeoutMs`. */
export type LivenessCheck = (peer: number, timeoutMs: number) => Promise<boolean>;

/** What liveness needs of one open link. */
export interface LiveLink {
  peer: number;
  bytesReceived(): number;
  bytesSent(): number;
  queuedBytes(): number;
  sendHeartbeat(frame: FrameHeader): void;
  lost(error: TcclError): void;
}

interface Seen { received: number; sent: number; heardAt: number; sentAt: number; probing?: boolean }

export class Liveness {
  private timer: NodeJS.Timeout | null = null;
  private readonly seen = new Map<number, Seen>();
  private lastTick = 0;
  private readonly tickMs: number;
  private readonly frame: FrameHeader;

  constructor(private readonly rank: number, readonly intervalMs: number, private readonly links: () => Iterable<LiveLink>, private readonly isAlive?: LivenessCheck) {
    this.tickMs = Math.max(1, intervalMs / 4);
    this.frame = { kind: FrameKind.Heartbeat, context: 0, source: rank, tag: 0, seq: 0, aux: 0, length: 0 };
  }

  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.lastTick = performance.now();
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    const now = performance.now();
    // Our own loop was blocked (a long synchronous kernel): callbacks may be queued unread.
    const stalled = now - this.lastTick > 2 * this.tickMs + 20;
    this.lastTick = now;
    const present = new Set<number>();
    for (const link of this.links()) {
      present.add(link.peer);
      const received = link.bytesReceived();
      const sent = link.bytesSent();
      let s = this.seen.get(link.peer);
      if (!s) this.seen.set(link.peer, (s = { received, sent, heardAt: now, sentAt: now }));
      if (received !== s.received || stalled) {
        s.received = received;
        s.heardAt = now;
      } else if (now - s.heardAt > SILENCE_INTERVALS * this.intervalMs) {
        if (!s.probing) this.probeThenDecide(link, s);
        continue;
      }
      if (sent !== s.sent) {
        s.sent = sent;
        s.sentAt = now;
      } else if (now - s.sentAt >= this.intervalMs / 2 && link.queuedBytes() === 0) {
        s.sentAt = now;
        link.sendHeartbeat(this.frame);
      }
    }
    for (const peer of this.seen.keys()) if (!present.has(peer)) this.seen.delete(peer);
  }

  /** Silent: busy in a long synchronous kernel, or dead / stopped? Ask its process. */
  private probeThenDecide(link: LiveLink, s: Seen): void {
    const lost = (why: string) => link.lost(new TcclError('TCCL_ERR_PEER_LOST',
      `no data or heartbeat from rank ${link.peer} for ${Math.round(performance.now() - s.heardAt)} ms (heartbeat interval ${this.intervalMs} ms)${why}: it died, hangs or is stopped`,
      { rank: this.rank, peer: link.peer }));
    if (!this.isAlive) return lost('');
    const timeoutMs = Math.max(50, PROBE_INTERVALS * this.intervalMs);
    s.probing = true;
    void this.isAlive(link.peer, timeoutMs).then((alive) => {
      s.probing = false;
      if (alive) s.heardAt = performance.now();
      else lost(`, and its process did not answer a liveness probe within ${Math.round(timeoutMs)} ms`);
    }, () => {
      s.probing = false;
      lost('');
    });
  }
}
