/**
 * Link liveness. Every `intervalMs / 8` each authenticated link is checked: a link we wrote
 * nothing to for half an interval gets a Heartbeat frame (so a live peer is never silent for
 * more than ~0.63 intervals). A link we read nothing from for 1.25 intervals gets its peer's
 * process probed (src/liveness.ts: a worker thread there answers even while its main thread
 * is busy in a long synchronous kernel); no answer within 0.4 intervals and the link is lost
 * (TCCL_ERR_PEER_LOST): a dead or stopped peer is detected within ~1.8 intervals of its last
 * byte, inside the 2-interval bound, and a busy one is never declared dead. Reads and writes
 * are seen through the socket's own byte counters: nothing is added to the data path.
 */
import { TcclError } from '../../src/errors.js';
import { FrameKind, type FrameHeader } from '../../src/wire/frame.js';
import type { Link } from './link.js';

/** Default interval: long enough that a rank busy in a synchronous kernel is not declared dead. */
export const DEFAULT_HEARTBEAT_MS = 15_000;
const SILENCE_INTERVALS = 1.25;
const TICKS_PER_INTERVAL = 8;

/** TCCL_HEARTBEAT_MS (0 disables heartbeats and silence detection). */
export function heartbeatIntervalFromEnv(env: Record<string, string | undefined> = process.env): number {
  const v = env.TCCL_HEARTBEAT_MS;
  if (v === undefined || v.trim() === '') return DEFAULT_HEARTBEAT_MS;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : DEFAULT_HEARTBEAT_MS;
}

interface Seen {
  read: number;
  written: number;
  heardAt: number;
  wroteAt: number;
  /** A liveness probe of this peer is outstanding. */
  probing?: boolean;
}

/** Asks the peer's process whether it is alive (src/liveness.ts); resolves false if it does not answer in `timeoutMs`. */
export type LivenessCheck = (peer: number, timeoutMs: number) => Promise<boolean>;

/** Probe answer window, as a share of the interval: silence (1.25) + tick (0.25) + this stays within 2 intervals. */
const PROBE_INTERVALS = 0.4;

export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;
  private readonly seen = new WeakMap<Link, Seen>();
  private lastTick = 0;
  private readonly tickMs: number;
  private readonly frame: FrameHeader;

  constructor(private readonly rank: number, readonly intervalMs: number, private readonly links: () => Iterable<Link>, private readonly isAlive?: LivenessCheck) {
    this.tickMs = Math.max(1, intervalMs / TICKS_PER_INTERVAL);
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
    // Our own loop was blocked (a long synchronous kernel): bytes may sit unread in the
    // kernel, so silence says nothing about the peers this round.
    const stalled = now - this.lastTick > 2 * this.tickMs + 20;
    this.lastTick = now;
    for (const link of this.links()) {
      if (link.peer < 0) continue;
      const socket = link.socket;
      let s = this.seen.get(link);
      if (!s) this.seen.set(link, (s = { read: socket.bytesRead, written: socket.bytesWritten, heardAt: now, wroteAt: now }));
      // A paused link (flow control) reads nothing on purpose.
      if (socket.bytesRead !== s.read || stalled || socket.isPaused()) {
        s.read = socket.bytesRead;
        s.heardAt = now;
      } else if (now - s.heardAt > SILENCE_INTERVALS * this.intervalMs) {
        // Silent: busy in a long synchronous kernel, or dead / stopped? Ask its process.
        if (!s.probing) this.probeThenDecide(link, s);
        continue;
      }
      if (socket.bytesWritten !== s.written) {
        s.written = socket.bytesWritten;
        s.wroteAt = now;
      } else if (now - s.wroteAt >= this.intervalMs / 2 && link.queuedBytes === 0) {
        s.wroteAt = now;
        void link.send(this.frame, EMPTY).catch(() => undefined);
      }
    }
  }

  /** The peer's process still answers: it is only busy, so wait on. Else the link is lost. */
  private probeThenDecide(link: Link, s: Seen): void {
    const peer = link.peer;
    const lost = (why: string) => link.destroy(new TcclError('TCCL_ERR_PEER_LOST',
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

const EMPTY = new Uint8Array(0);
