/**
 * Link liveness, one rule for every transport with links (tcp, webrtc). Every 1/8 interval
 * each open link is checked: a link we sent nothing on for half an interval gets a Heartbeat
 * frame (so a live peer is never silent for more than ~0.63 intervals). A link we received
 * nothing on for 1.25 intervals gets its peer's process probed (src/liveness.ts: a worker
 * thread there answers even while its main thread is busy in a long synchronous kernel); no
 * answer within 0.4 intervals and the link is lost (TCCL_ERR_PEER_LOST): a dead or stopped
 * peer is detected within ~1.8 intervals of its last byte, inside the 2-interval bound, and a
 * busy one is never declared dead. Transports report their own byte counters, so nothing is
 * added to the data path.
 */
import { TcclError } from './errors.js';
import { FrameKind, type FrameHeader } from './wire/frame.js';

/** Default interval: long enough that probing a busy rank stays rare. */
export const DEFAULT_HEARTBEAT_MS = 15_000;
const SILENCE_INTERVALS = 1.25;
/** Probe answer window, as a share of the interval: silence + tick + this stays within 2 intervals. */
const PROBE_INTERVALS = 0.4;

/** TCCL_HEARTBEAT_MS (0 disables heartbeats and silence detection). */
export function heartbeatIntervalFromEnv(env: Record<string, string | undefined> = process.env): number {
  const v = env.TCCL_HEARTBEAT_MS;
  if (v === undefined || v.trim() === '') return DEFAULT_HEARTBEAT_MS;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : DEFAULT_HEARTBEAT_MS;
}

/** Asks the peer's process whether it is alive; resolves false if it does not answer within `timeoutMs`. */
export type LivenessCheck = (peer: number, timeoutMs: number) => Promise<boolean>;

/** What liveness needs of one open, authenticated link (the same object for the link's life). */
export interface LiveLink {
  /** World rank at the other end; negative while unknown (not judged). */
  readonly peer: number;
  bytesReceived(): number;
  bytesSent(): number;
  /** Bytes accepted for sending and not yet handed over. */
  unsentBytes(): number;
  /** True while we stopped reading on purpose (flow control): silence then means nothing. */
  paused?(): boolean;
  sendHeartbeat(frame: FrameHeader): void;
  lost(error: TcclError): void;
}

interface Seen { received: number; sent: number; heardAt: number; sentAt: number; probing?: boolean }

export class LinkLiveness {
  private timer: NodeJS.Timeout | null = null;
  private readonly seen = new WeakMap<LiveLink, Seen>();
  private lastTick = 0;
  private readonly tickMs: number;
  private readonly frame: FrameHeader;

  constructor(private readonly rank: number, readonly intervalMs: number, private readonly links: () => Iterable<LiveLink>, private readonly isAlive?: LivenessCheck) {
    this.tickMs = Math.max(1, intervalMs / 8);
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
    // Our own loop was blocked (a long synchronous kernel): bytes may sit unread, so silence
    // says nothing about the peers this round.
    const stalled = now - this.lastTick > 2 * this.tickMs + 20;
    this.lastTick = now;
    for (const link of this.links()) {
      if (link.peer < 0) continue;
      const received = link.bytesReceived();
      const sent = link.bytesSent();
      let s = this.seen.get(link);
      if (!s) this.seen.set(link, (s = { received, sent, heardAt: now, sentAt: now }));
      if (received !== s.received || stalled || link.paused?.()) {
        s.received = received;
        s.heardAt = now;
      } else if (now - s.heardAt > SILENCE_INTERVALS * this.intervalMs) {
        if (!s.probing) this.probeThenDecide(link, s);
        continue;
      }
      if (sent !== s.sent) {
        s.sent = sent;
        s.sentAt = now;
      } else if (now - s.sentAt >= this.intervalMs / 2 && link.unsentBytes() === 0) {
        s.sentAt = now;
        link.sendHeartbeat(this.frame);
      }
    }
  }

  /** Silent: busy in a long synchronous kernel, or dead / stopped? Ask its process. */
  private probeThenDecide(link: LiveLink, s: Seen): void {
    const peer = link.peer;
    const lost = (why: string) => link.lost(new TcclError('TCCL_ERR_PEER_LOST',
      `no data or heartbeat from rank ${peer} for ${Math.round(performance.now() - s.heardAt)} ms (heartbeat interval ${this.intervalMs} ms)${why}: it died, hangs or is stopped`,
      { rank: this.rank, peer }));
    if (!this.isAlive) return lost('');
    const timeoutMs = Math.max(50, PROBE_INTERVALS * this.intervalMs);
    s.probing = true;
    void this.isAlive(peer, timeoutMs).then((alive) => {
      s.probing = false;
      if (alive) s.heardAt = performance.now();
      else lost(`, and its process did not answer a liveness probe within ${Math.round(timeoutMs)} ms`);
    }, () => {
      s.probing = false;
      lost('');
    });
  }
}
