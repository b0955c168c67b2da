import { TcclError } from '../errors.js';
import type { SharedGroup } from '../collectives/p2p.js';
import type { SharedTeam } from '../transport.js';
import type { TypedArray } from '../dtype.js';

/**
 * How long one wait may block the thread before returning to the event loop, where a lost
 * peer (its doorbell socket closing), an abort or the deadline can be noticed.
 */
const BLOCK_MS = 2;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What a shared-memory collective call reports and checks while it waits on peers. */
export interface SharedCallHooks {
  /** The call, for error messages. */
  readonly op: string;
  readonly seq: number;
  /** Throw if the call must stop (deadline, abort signal, a failed engine, or `awaited` lost). */
  check(awaited?: number): void;
  /** Waiting on `peer` (communicator rank), and done waiting. */
  waiting(peer: number): void;
  arrived(peer: number): void;
}

/**
 * The world communicator's use of a SharedTeam: the step counter and half every rank
 * advances alike, and a queue so one shared-memory collective runs at a time (a second
 * call started while the first waits would otherwise write the same slot).
 */
export class SharedState {
  step = 0;
  half = 1;
  /** Shared collectives started and not yet ended, and the end of the last one. */
  private inFlight = 0;
  private last: Promise<unknown> = Promise.resolve();
  /** Set when a shared collective failed here: steps may now disagree between ranks. */
  private broken: TcclError | null = null;

  /** Typed views of every rank's halves, per element type: [rank * 2 + half]. */
  private readonly typedSlots = new Map<unknown, TypedArray[]>();
  /** The last type asked for (usually the only one): no Map lookup per call. */
  private lastType: unknown = null;
  private lastViews: TypedArray[] = [];

  constructor(readonly team: SharedTeam) {}

  slotAs<A extends TypedArray>(rank: number, half: number, like: A): A {
    if (like.constructor === this.lastType) return this.lastViews[rank * 2 + half] as A;
    let views = this.typedSlots.get(like.constructor);
    if (views === undefined) {
      const Ctor = like.constructor as new (buffer: ArrayBufferLike, byteOffset: number, length: number) => A;
      views = [];
      for (let r = 0; r < this.team.size; r++) {
        for (let h = 0; h < 2; h++) {
          const bytes = this.team.slot(r, h);
          views.push(new Ctor(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / like.BYTES_PER_ELEMENT)));
        }
      }
      this.typedSlots.set(like.constructor, views);
    }
    this.lastType = like.constructor;
    this.lastViews = views;
    return views[rank * 2 + half] as A;
  }

  /** The SharedGroup one collective call sees; `hooks` are used only if a wait outlasts one blocking wait. */
  bind(hooks: SharedCallHooks): SharedGroup {
    return new SharedCall(this, hooks);
  }

  /**
   * Run `body` once every earlier shared collective has ended. When none is running it runs
   * now, and a body that finishes without waiting returns its value directly (no promise).
   */
  exclusive<T>(body: () => T | Promise<T>, hooks: SharedCallHooks): T | Promise<T> {
    if (this.inFlight === 0) {
      if (this.broken) throw this.stopped(hooks);
      this.inFlight++;
      let out: T | Promise<T>;
      try {
        out = body();
      } catch (e) {
        this.ended(e);
        throw e;
      }
      if (!(out instanceof Promise)) {
        this.inFlight--;
        return out;
      }
      return this.track(out);
    }
    this.inFlight++;
    return this.track(this.last.then(() => {
      if (this.broken) throw this.stopped(hooks);
      hooks.check(); // (it may have waited long in the queue)
      return body();
    }));
  }

  private track<T>(run: Promise<T>): Promise<T> {
    this.last = run.then(() => this.ended(), (e: unknown) => this.ended(e));
    return run;
  }

  private ended(error?: unknown): void {
    this.inFlight--;
    if (error !== undefined) this.broken ??= error instanceof TcclError ? error : new TcclError('TCCL_ERR_INTERNAL', String(error));
  }

  private stopped(hooks: SharedCallHooks): TcclError {
    return new TcclError('TCCL_ERR_INTERNAL', `${hooks.op} cannot use shared memory: an earlier shared-memory collective failed on this rank (${this.broken!.code}), so the ranks' steps may disagree`, { rank: this.team.rank, op: hooks.op, seq: hooks.seq, cause: this.broken });
  }

  sync(hooks: SharedCallHooks): Promise<void> | undefined {
    const { team } = this;
    const step = (this.step = (this.step + 1) | 0);
    team.arrive(step);
    let late: number[] | null = null;
    for (let i = 1; i < team.size; i++) {
      const peer = (team.rank + i) % team.size;
      if (!team.waitFor(peer, step, BLOCK_MS, true)) (late ??= []).push(peer);
    }
    return late ? this.waitLate(late, step, hooks) : undefined;
  }

  /** Peers not there within one blocking wait: keep waiting, returning to the event loop between waits. */
  private async waitLate(late: number[], step: number, hooks: SharedCallHooks): Promise<void> {
    for (const peer of late) hooks.waiting(peer); // a timeout names every one not there yet
    for (const peer of late) {
      for (;;) {
        if (this.team.waitFor(peer, step, BLOCK_MS, false)) break;
        hooks.check(peer);
        await yieldToLoop();
      }
      hooks.arrived(peer);
    }
  }
}

/** One collective call's view of the shared state. */
class SharedCall implements SharedGroup {
  readonly rank: number;
  readonly size: number;
  readonly slotBytes: number;

  constructor(private readonly state: SharedState, private readonly hooks: SharedCallHooks) {
    this.rank = state.team.rank;
    this.size = state.team.size;
    this.slotBytes = state.team.slotBytes;
  }

  nextHalf(): number { return (this.state.half ^= 1); }
  slot(rank: number, half: number): Uint8Array { return this.state.team.slot(rank, half); }
  slotAs<A extends TypedArray>(rank: number, half: number, like: A): A { return this.state.slotAs(rank, half, like); }
  sync(): Promise<void> | undefined { return this.state.sync(this.hooks); }
  exclusive<T>(body: () => T | Promise<T>): T | Promise<T> { return this.state.exclusive(body, this.hooks); }
}
