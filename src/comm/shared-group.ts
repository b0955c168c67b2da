import { TcclError } from '../errors.js';
import type { SharedGroup } from '../collectives/p2p.js';
import type { SharedTeam } from '../transport.js';

/**
 * How long one wait may block the thread before returning to the event loop, where a lost
 * peer (its doorbell socket closing), an abort or the deadline can be noticed.
 */
const BLOCK_MS = 2;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What a shared-memory collective call reports and checks while it waits on peers. */
export interface SharedCallHooks {
  /** Throw if the call must stop (deadline, abort signal, a lost peer, a failed engine). */
  check(): void;
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
  private step = 0;
  private half = 1;
  private queue: Promise<unknown> = Promise.resolve();
  /** Set when a shared collective failed here: steps may now disagree between ranks. */
  private broken: TcclError | null = null;

  constructor(readonly team: SharedTeam) {}

  /** The SharedGroup one collective call sees. */
  bind(hooks: SharedCallHooks): SharedGroup {
    const { team } = this;
    return {
      rank: team.rank,
      size: team.size,
      slotBytes: team.slotBytes,
      nextHalf: () => (this.half ^= 1),
      slot: (rank, half) => team.slot(rank, half),
      sync: () => this.sync(hooks),
      exclusive: (body) => this.exclusive(body),
    };
  }

  private exclusive<T>(body: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.broken) {
        throw new TcclError('TCCL_ERR_INTERNAL', `shared-memory collectives on rank ${this.team.rank} stopped after an earlier one failed (${this.broken.code}): the ranks' steps may disagree`, { rank: this.team.rank, cause: this.broken });
      }
      return body().catch((e: unknown) => {
        this.broken ??= e instanceof TcclError ? e : new TcclError('TCCL_ERR_INTERNAL', String(e));
        throw e;
      });
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private sync(hooks: SharedCallHooks): Promise<void> | undefined {
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
    for (const peer of late) {
      hooks.waiting(peer);
      for (;;) {
        hooks.check();
        if (this.team.waitFor(peer, step, BLOCK_MS, false)) break;
        await yieldToLoop();
      }
      hooks.arrived(peer);
    }
  }
}
