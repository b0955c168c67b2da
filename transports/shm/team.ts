import type { SharedTeam } from '../../src/transport.js';
import { TcclError } from '../../src/errors.js';
import { performance } from 'node:perf_hooks';

/**
 * The shared-memory team (src/transport.ts, SharedTeam) over one region per rank, in that
 * rank's /dev/shm segment (process ranks) or in the thread world's SharedArrayBuffer.
 *
 * Region layout: a 128-byte control block — the owner's step word (written only by the
 * owner) and, on its own cache line, the count of peers sleeping on it (so the owner makes
 * the wake-up system call only when someone sleeps) — then two halves of `slotBytes`.
 */
export const TEAM_CONTROL_BYTES = 128;
/** The poll budget never drops below this (ranks no more than cores): a peer on the other core is caught at once. */
const MIN_SPIN_MS = 0.02;
/** A peer found within this many yields after polling ran out was queued on this core. */
const COLOCATED_YIELDS = 2;
/** While polling is off (the peer shares this core), every this-many waits poll briefly again. */
const PROBE_EVERY = 64;
const STEP = 0;
const SLEEPERS = 16;

/** Default bytes per slot half; env TCCL_SHM_SLOT_BYTES. */
export const DEFAULT_SLOT_BYTES = 1 << 20;

/** Slot halves are at least this big (and a multiple of 64: whole cache lines). */
export const MIN_SLOT_BYTES = 4096;

export function teamSlotBytes(): number {
  const text = process.env.TCCL_SHM_SLOT_BYTES;
  if (text === undefined || text.trim() === '') return DEFAULT_SLOT_BYTES;
  const configured = Number(text);
  if (!Number.isFinite(configured) || configured < MIN_SLOT_BYTES || configured > 2 ** 30) {
    throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', `TCCL_SHM_SLOT_BYTES='${text}' is not a size between ${MIN_SLOT_BYTES} and 2^30 bytes`);
  }
  return Math.floor(configured / 64) * 64;
}

export function teamYieldMicros(): number {
  const configured = process.env.TCCL_SHM_YIELD_US;
  if (configured !== undefined && configured !== '') return Math.max(0, Number(configured) || 0);
  return 1000;
}

export function teamRegionBytes(slotBytes: number): number {
  return TEAM_CONTROL_BYTES + 2 * slotBytes;
}

/** Sleep on / wake a 32-bit word of shared memory (the kernel's futex, or Atomics within a process). */
export interface Futex {
  wait(i32: Int32Array, index: number, expected: number, ms: number): void;
  wake(i32: Int32Array, index: number): void;
  /** Let another runnable thread on this core run (sched_yield), if the platform can. */
  yieldCpu?(): void;
}

/** Threads of one process: Atomics.wait / notify on a SharedArrayBuffer. */
export const atomicsFutex: Futex = {
  wait: (i32, index, expected, ms) => { Atomics.wait(i32, index, expected, ms); },
  wake: (i32, index) => { Atomics.notify(i32, index); },
};

export interface TeamRegion {
  buffer: ArrayBufferLike;
  /** Byte offset of the region (64-byte aligned). */
  offset: number;
}

export interface ShmTeamOptions {
  rank: number;
  size: number;
  /** Every rank's region, indexed by rank (this rank's included). */
  regions: TeamRegion[];
  slotBytes: number;
  futex: Futex;
  blocking: boolean;
  /** Poll a peer's step word this long before sleeping on it; 0 when ranks outnumber cores. */
  spinMicros: number;
  /** Then yield the core this long before sleeping (where the futex can yield); default env TCCL_SHM_YIELD_US or 1000. */
  yieldMicros?: number;
}

export class ShmTeam implements SharedTeam {
  readonly rank: number;
  readonly size: number;
  readonly slotBytes: number;
  readonly blocking: boolean;
  private readonly ctl: Int32Array[];
  private readonly halves: Uint8Array[][];
  private readonly futex: Futex;
  private readonly spinMs: number;
  private spinBudgetMs: number;
  private sinceProbe = 0;
  private readonly yieldMs: number;

  constructor(opts: ShmTeamOptions) {
    this.rank = opts.rank;
    this.size = opts.size;
    this.slotBytes = opts.slotBytes;
    this.blocking = opts.blocking;
    this.futex = opts.futex;
    this.spinMs = opts.spinMicros / 1000;
    this.spinBudgetMs = this.spinMs;
    this.yieldMs = (opts.yieldMicros ?? teamYieldMicros()) / 1000;
    if (opts.regions.length !== opts.size) throw new RangeError(`a team of ${opts.size} needs ${opts.size} regions, got ${opts.regions.length}`);
    if (opts.slotBytes % 64 !== 0) throw new RangeError(`slot size ${opts.slotBytes} is not a multiple of 64`);
    this.ctl = opts.regions.map((r) => {
      if (r.offset % 64 !== 0) throw new RangeError(`team region offset ${r.offset} is not cache-line aligned`);
      return new Int32Array(r.buffer, r.offset, TEAM_CONTROL_BYTES / 4);
    });
    this.halves = opts.regions.map((r) => [0, 1].map((h) => new Uint8Array(r.buffer, r.offset + TEAM_CONTROL_BYTES + h * opts.slotBytes, opts.slotBytes)));
  }

  slot(rank: number, half: number): Uint8Array {
    return this.halves[rank][half];
  }

  arrive(step: number): void {
    const own = this.ctl[this.rank];
    Atomics.store(own, STEP, step);
    // Seq-cst store then load, against the sleeper's add then load: one of us sees the other.
    if (Atomics.load(own, SLEEPERS) !== 0) this.futex.wake(own, STEP);
  }

  reached(peer: number, step: number): boolean {
    return ((Atomics.load(this.ctl[peer], STEP) - step) | 0) >= 0;
  }

  waitFor(peer: number, step: number, ms: number, eager: boolean): boolean {
    if (this.reached(peer, step)) return true;
    if (!this.blocking) return false;
    const start = performance.now();
    const end = start + ms;
    let spunOut = false;
    if (eager && this.spinMs > 0) {
      // The poll budget adapts to what polling catches (as the engine's): a poll that finds
      // the peer restores it, one that runs out halves it, down to MIN_SPIN_MS. (The 1-minute
      // load average lags: after a busy-polling Open MPI run it kept tccl from polling for a
      // minute, and each yield below costs a system call per look.) Budget 0: the peer shares
      // this core (below); every PROBE_EVERY waits a short poll checks whether it still does.
      if (this.spinBudgetMs === 0 && ++this.sinceProbe >= PROBE_EVERY) {
        this.sinceProbe = 0;
        this.spinBudgetMs = MIN_SPIN_MS;
      }
      if (this.spinBudgetMs > 0) {
        const until = start + Math.min(ms, this.spinBudgetMs);
        do {
          for (let i = 0; i < 64; i++) {
            if (this.reached(peer, step)) {
              this.spinBudgetMs = this.spinMs;
              return true;
            }
          }
        } while (performance.now() < until);
        this.spinBudgetMs = Math.max(MIN_SPIN_MS, this.spinBudgetMs / 2);
        spunOut = true;
      }
    }
    // With more ranks than cores the peer we wait for is often queued behind us on this core:
    // yielding lets it run at once, where sleeping would cost it a wake-up (n=4 on 2 cores,
    // 8 B allreduce: median 46 us sleeping, 15 us yielding).
    if (eager && this.yieldMs > 0 && this.futex.yieldCpu) {
      const until = Math.min(end, performance.now() + this.yieldMs);
      let yields = 0;
      do {
        if (this.reached(peer, step)) {
          // Not there after polling, there after a yield or two: the peer was queued on this
          // core (the scheduler put two ranks on one core; they do not move while each keeps
          // yielding to the other), so polling first only delays it. Yield straight away.
          // 2 ranks put on one core: median 50 -> 5 us per 8 B allreduce.
          if (spunOut && yields <= COLOCATED_YIELDS) this.spinBudgetMs = 0;
          return true;
        }
        this.futex.yieldCpu();
        yields++;
      } while (performance.now() < until);
    }
    const c = this.ctl[peer];
    for (;;) {
      Atomics.add(c, SLEEPERS, 1);
      const seen = Atomics.load(c, STEP);
      const left = end - performance.now();
      if (((seen - step) | 0) < 0 && left > 0) this.futex.wait(c, STEP, seen, left);
      Atomics.sub(c, SLEEPERS, 1);
      if (this.reached(peer, step)) return true;
      if (performance.now() >= end) return false;
    }
  }
}
