/**
 * In-process multi-rank runner: N simulated ranks run concurrently (Promise.all) over a
 * CollectiveP2P built on in-memory queues per (src, dst) pair.
 *
 * Sends and receives match in posting order per pair, but every delivery happens later on a
 * randomly chosen microtask / setImmediate hop (seeded), so completions come back out of order
 * and algorithms that lean on timing break. Modes:
 *  - 'rendezvous' (default, strictest): a send completes only once matched and copied, and the
 *    copy reads the sender's buffer at delivery time — an algorithm that reuses a send buffer
 *    early, or awaits a send before posting the receive its peer needs, fails or deadlocks.
 *  - 'eager': the send is copied at once and completes on its own; receivers may find it queued.
 * A watchdog turns a deadlock into an error that lists the unmatched operations, and a run
 * that leaves unmatched sends or receives behind fails.
 */
import type { CollectiveP2P } from '../../src/collectives/p2p.js';
import { prng } from '../support/prng.js';

export type Mode = 'rendezvous' | 'eager';

export interface RunOptions {
  mode?: Mode;
  seed?: number;
}

export interface RunStats {
  /** Messages sent by each rank (zero-byte ones included). */
  messages: number[];
  /** Payload bytes sent by each rank. */
  bytes: number[];
}

interface PendingSend { data: Uint8Array; done: () => void; fail: (e: Error) => void }
interface PendingRecv { data: Uint8Array; done: () => void; fail: (e: Error) => void }


class Fabric {
  readonly sends = new Map<string, PendingSend[]>();
  readonly recvs = new Map<string, PendingRecv[]>();
  readonly stats: RunStats;
  inflight = 0;
  progress = 0;
  error: Error | undefined;
  private readonly random: () => number;

  constructor(readonly size: number, readonly mode: Mode, seed: number) {
    this.random = prng(seed);
    this.stats = { messages: new Array<number>(size).fill(0), bytes: new Array<number>(size).fill(0) };
  }

  /** Run `fn` after a random short delay; `inflight` lets the watchdog know work is queued. */
  later(fn: () => void): void {
    this.inflight++;
    const run = () => { this.inflight--; this.progress++; fn(); };
    const x = this.random();
    if (x < 0.3) queueMicrotask(run);
    else if (x < 0.8) setImmediate(run);
    else setImmediate(() => setImmediate(run));
  }

  private check(rank: number, peer: number, what: string): void {
    if (!Number.isInteger(peer) || peer < 0 || peer >= this.size) throw this.fatal(`rank ${rank} ${what} peer ${peer} out of range`);
    if (peer === rank) throw this.fatal(`rank ${rank} ${what} itself`);
  }

  private fatal(msg: string): Error {
    const e = new Error(msg);
    this.error ??= e;
    return e;
  }

  send(src: number, dst: number, data: Uint8Array): Promise<void> {
    this.check(src, dst, 'sends to');
    if (!(data instanceof Uint8Array)) throw this.fatal(`rank ${src} send: data is not a Uint8Array`);
    this.stats.messages[src]++;
    this.stats.bytes[src] += data.length;
    return new Promise<void>((resolve, reject) => {
      const eager = this.mode === 'eager';
      const entry: PendingSend = { data: eager ? data.slice() : data, done: eager ? () => {} : resolve, fail: reject };
      push(this.sends, `${src}>${dst}`, entry);
      if (eager) this.later(resolve);
      this.match(src, dst);
    });
  }

  recv(dst: number, src: number, data: Uint8Array): Promise<void> {
    this.check(dst, src, 'receives from');
    if (!(data instanceof Uint8Array)) throw this.fatal(`rank ${dst} recv: data is not a Uint8Array`);
    return new Promise<void>((resolve, reject) => {
      push(this.recvs, `${src}>${dst}`, { data, done: resolve, fail: reject });
      this.match(src, dst);
    });
  }

  private match(src: number, dst: number): void {
    const key = `${src}>${dst}`;
    const sq = this.sends.get(key);
    const rq = this.recvs.get(key);
    while (sq?.length && rq?.length) {
      const s = sq.shift()!;
      const r = rq.shift()!;
      this.later(() => {
        if (s.data.length !== r.data.length) {
          const e = this.fatal(`message ${src} -> ${dst}: sent ${s.data.length} bytes, receive posted for ${r.data.length}`);
          r.fail(e);
          s.fail(e);
          return;
        }
        r.data.set(s.data); // rendezvous: reads the sender's buffer only now
        s.done();
        r.done();
      });
    }
  }

  /** Unmatched operations, e.g. "0>1: 2 sends; 1>2: 1 recv". */
  describePending(): string {
    const parts: string[] = [];
    for (const [k, q] of this.sends) if (q.length) parts.push(`${k}: ${q.length} send(s) of ${q.map((e) => e.data.length).join(',')} B`);
    for (const [k, q] of this.recvs) if (q.length) parts.push(`${k}: ${q.length} recv(s) of ${q.map((e) => e.data.length).join(',')} B`);
    return parts.join('; ');
  }
}

function push<T>(m: Map<string, T[]>, k: string, v: T): void {
  const q = m.get(k);
  if (q) q.push(v);
  else m.set(k, [v]);
}

/** Run `fn` on `size` simulated ranks concurrently; resolves with each rank's result and traffic stats. */
export async function runRanks<T>(
  size: number, fn: (p2p: CollectiveP2P, rank: number) => Promise<T>, opts: RunOptions = {},
): Promise<{ results: T[]; stats: RunStats }> {
  const fabric = new Fabric(size, opts.mode ?? 'rendezvous', opts.seed ?? 1);
  const p2ps: CollectiveP2P[] = Array.from({ length: size }, (_, rank) => ({
    rank,
    size,
    send: (peer: number, data: Uint8Array) => fabric.send(rank, peer, data),
    recv: (peer: number, data: Uint8Array) => fabric.recv(rank, peer, data),
  }));
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    // Synchronous work blocks this timer, so an idle tick with nothing in flight means every
    // rank is parked on an operation that can never match: a deadlock.
    let idleTicks = 0;
    let last = -1;
    timer = setInterval(() => {
      if (fabric.inflight === 0 && fabric.progress === last) idleTicks++;
      else idleTicks = 0;
      last = fabric.progress;
      if (idleTicks >= 3) reject(new Error(`deadlock: ${fabric.describePending() || 'no pending operations'}`));
    }, 20);
  });
  try {
    const results = await Promise.race([Promise.all(p2ps.map((p, r) => fn(p, r))), watchdog]);
    if (fabric.error) throw fabric.error;
    const left = fabric.describePending();
    if (left) throw new Error(`unmatched operations after the run: ${left}`);
    return { results, stats: fabric.stats };
  } finally {
    clearInterval(timer);
  }
}
