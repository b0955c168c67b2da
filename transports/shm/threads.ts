import { isMainThread, workerData } from 'node:worker_threads';
import { TcclError } from '../../src/errors.js';
import type { TransportSink } from '../../src/transport.js';
import { Ring, ringBytes } from './ring.js';
import { RingTransport } from './ring-transport.js';
import type { SharedTeam } from '../../src/transport.js';
import { atomicsFutex, ShmTeam, teamRegionBytes, teamSlotBytes } from './team.js';

/**
 * Ranks as worker_threads of one process (`tcclrun --threads`): the same rings as process
 * ranks, in one SharedArrayBuffer the launcher allocates, with Atomics.waitAsync on a
 * per-rank doorbell word instead of a socket. No native code.
 *
 * Layout: per rank a 64-byte slot [state, doorbell], then one ring per ordered pair, then
 * per rank a team region (shared-memory collectives, team.ts).
 */
export interface ThreadWorld {
  sab: SharedArrayBuffer;
  size: number;
  ringCapacity: number;
  /** Bytes per team slot half. */
  slotBytes: number;
}

/** ES2024's Atomics.waitAsync (in Node since 16), not yet in this TypeScript lib. */
type WaitAsync = (a: Int32Array, index: number, value: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

const SLOT_BYTES = 64;
const STATE = 0;
const BELL = 1;
/** Values of a rank's state word (0 = not started yet). */
const RankState = { Alive: 1, Closed: 2, Dead: 3 } as const;

const ringsBase = (size: number) => size * SLOT_BYTES;
const ringOffset = (w: ThreadWorld, from: number, to: number) => ringsBase(w.size) + (from * w.size + to) * ringBytes(w.ringCapacity);

/** Default ring size for `size` thread ranks: all rings live in one buffer, so they shrink as ranks grow. */
export function threadRingBytes(size: number): number {
  const configured = Number(process.env.TCCL_SHM_RING_BYTES);
  if (configured > 0) return configured;
  return size <= 4 ? 4 << 20 : size <= 8 ? 1 << 20 : 256 << 10;
}

const teamOffset = (w: ThreadWorld, rank: number) => ringsBase(w.size) + w.size * w.size * ringBytes(w.ringCapacity) + rank * teamRegionBytes(w.slotBytes);

export function createThreadWorld(size: number, ringCapacity = threadRingBytes(size), slotBytes = teamSlotBytes()): ThreadWorld {
  const bytes = ringsBase(size) + size * size * ringBytes(ringCapacity) + size * teamRegionBytes(slotBytes);
  return { sab: new SharedArrayBuffer(bytes), size, ringCapacity, slotBytes };
}

const words = (w: ThreadWorld) => new Int32Array(w.sab, 0, (w.size * SLOT_BYTES) / 4);
const word = (rank: number, field: number) => (rank * SLOT_BYTES) / 4 + field;

/**
 * Launcher side: a rank's thread ended without closing (uncaught error, process.exit, terminate).
 * Its peers' doorbells ring so they notice now rather than at their timeout.
 */
export function markRankDead(w: ThreadWorld, rank: number): void {
  const i32 = words(w);
  if (Atomics.load(i32, word(rank, STATE)) === RankState.Closed) return;
  Atomics.store(i32, word(rank, STATE), RankState.Dead);
  for (let r = 0; r < w.size; r++) {
    Atomics.add(i32, word(r, BELL), 1);
    Atomics.notify(i32, word(r, BELL));
  }
}

/** The thread world this worker was started in by `tcclrun --threads`, if any. */
export function joinedThreadWorld(): ThreadWorld | null {
  if (isMainThread) return null;
  const w = (workerData as { tcclThreadWorld?: ThreadWorld } | null)?.tcclThreadWorld;
  return w && w.sab instanceof SharedArrayBuffer ? w : null;
}

export interface ThreadTransportOptions {
  rank: number;
  size: number;
  world: ThreadWorld;
  spinMicros: number;
  /** False when every rank runs on this one thread (test worlds): waits must not block it. Default true. */
  blocking?: boolean;
}

export class ThreadTransport extends RingTransport {
  readonly name = 'shm-threads';
  private readonly world: ThreadWorld;
  private readonly i32: Int32Array;
  private stopped = false;
  private readonly team: ShmTeam;

  constructor(opts: ThreadTransportOptions) {
    super({ rank: opts.rank, size: opts.size, spinMicros: opts.spinMicros });
    if (opts.world.size !== opts.size) {
      throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', `thread world has ${opts.world.size} ranks, the job ${opts.size}`, { rank: opts.rank });
    }
    this.world = opts.world;
    this.i32 = words(opts.world);
    const w = opts.world;
    this.team = new ShmTeam({
      rank: opts.rank, size: opts.size, slotBytes: w.slotBytes, futex: atomicsFutex, blocking: opts.blocking ?? true,
      regions: Array.from({ length: w.size }, (_, r) => ({ buffer: w.sab, offset: teamOffset(w, r) })),
      spinMicros: opts.spinMicros,
    });
  }

  /** Every rank is a thread of this process: the whole world shares the buffer. */
  sharedTeam(): SharedTeam | null {
    return this.team;
  }

  /**
   * No team for split/dup communicators: a worker cannot hand a new SharedArrayBuffer to the
   * others without messages (postMessage goes through the launcher's thread), so
   * sub-communicators of thread ranks keep using message algorithms.
   */
  createSharedTeam(): Promise<SharedTeam | null> {
    return Promise.resolve(null);
  }

  async start(sink: TransportSink): Promise<void> {
    this.sink = sink;
    const w = this.world;
    for (let p = 0; p < this.size; p++) {
      if (p === this.rank) continue;
      this.attach(p, new Ring(w.sab, ringOffset(w, p, this.rank), w.ringCapacity), new Ring(w.sab, ringOffset(w, this.rank, p), w.ringCapacity));
    }
    Atomics.store(this.i32, word(this.rank, STATE), RankState.Alive);
    this.listen();
  }

  /** Sleep on our doorbell word without blocking the thread; every poke re-runs progress. */
  private listen(): void {
    if (this.stopped) return;
    const seen = Atomics.load(this.i32, word(this.rank, BELL));
    this.checkPeers();
    this.wake(false);
    const waited = waitAsync(this.i32, word(this.rank, BELL), seen);
    if (waited.async) void (waited.value as Promise<string>).then(() => this.listen());
    else setImmediate(() => this.listen());
  }

  private checkPeers(): void {
    for (let p = 0; p < this.size; p++) {
      if (p !== this.rank && Atomics.load(this.i32, word(p, STATE)) === RankState.Dead) this.peerDied(p, 'thread exited');
    }
  }

  protected ring(peer: number): void {
    Atomics.add(this.i32, word(peer, BELL), 1);
    Atomics.notify(this.i32, word(peer, BELL));
  }

  private stop(): void {
    this.stopped = true;
    Atomics.store(this.i32, word(this.rank, STATE), RankState.Closed);
    this.ring(this.rank); // ends our own pending waitAsync
  }

  async close(): Promise<void> {
    if (this.shuttingDown) return;
    await this.flushAndGoodbye();
    this.stop();
  }

  abort(reason: TcclError): void {
    if (this.shuttingDown) return;
    this.abortLinks(reason);
    this.stop();
  }
}
