/**
 * Flight recorder (NCCL's TORCH_NCCL_TRACE_BUFFER_SIZE idea): the last N operations of each
 * rank, with state and timing, printed when an operation times out so every rank shows where
 * it was. Capacity from TCCL_FLIGHT_RECORDER (default 32; 0 disables).
 */
import { describeCollective, type CollectiveDesc } from './desync.js';
import { performance } from 'node:perf_hooks';

export interface OpRecord {
  rank: number;
  /** Communicator context: tells operations on split communicators apart. */
  context: number;
  seq: number;
  op: string;
  /** What was called: text, or a collective's arguments (described only when shown). */
  what: string | CollectiveDesc;
  startedAt: number;
  /** Unset while running, and for an operation that finished within the call that started it. */
  endedAt?: number;
  state: 'running' | 'done' | 'failed';
  error?: string;
}

const DEFAULT_CAPACITY = 32;

function capacityFromEnv(): number {
  const v = Number(process.env.TCCL_FLIGHT_RECORDER ?? DEFAULT_CAPACITY);
  return Number.isInteger(v) && v >= 0 ? v : DEFAULT_CAPACITY;
}

export class FlightRecorder {
  private readonly ring: OpRecord[] = [];
  private next = 0;

  constructor(readonly capacity: number = capacityFromEnv()) {}

  start(rank: number, context: number, seq: number, op: string, what: string | CollectiveDesc, startedAt = performance.now()): OpRecord {
    const rec: OpRecord = { rank, context, seq, op, what, startedAt, state: 'running' };
    if (this.capacity === 0) return rec;
    if (this.ring.length < this.capacity) this.ring.push(rec);
    else this.ring[this.next] = rec;
    this.next = (this.next + 1) % this.capacity;
    return rec;
  }

  /**
   * `timed` false: the operation finished within the call that started it (a small
   * shared-memory collective, about a microsecond), so no second clock read.
   */
  finish(rec: OpRecord, error?: unknown, timed = true): void {
    if (rec.state !== 'running') return;
    if (timed) rec.endedAt = performance.now();
    rec.state = error === undefined ? 'done' : 'failed';
    if (error !== undefined) rec.error = error instanceof Error ? error.message : String(error);
  }

  /** Oldest first. */
  records(): OpRecord[] {
    return this.ring.length < this.capacity ? [...this.ring] : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }

  /** Human-readable dump, one line per operation, oldest first. */
  dump(now = performance.now()): string {
    const recs = this.records();
    if (recs.length === 0) return '  (no operations recorded)';
    return recs.map((r) => {
      const took = r.state === 'running' ? `running for ${(now - r.startedAt).toFixed(0)} ms`
        : r.endedAt !== undefined ? `${(r.endedAt - r.startedAt).toFixed(1)} ms` : 'within the call';
      const err = r.error ? ` — ${r.error}` : '';
      return `  ctx ${r.context} seq ${r.seq} ${r.op} ${typeof r.what === 'string' ? r.what : describeCollective(r.op, r.what)} ${r.state} (${took})${err}`;
    }).join('\n');
  }
}

const recorders = new WeakMap<object, FlightRecorder>();

/** One recorder per engine (per rank), shared by all its communicators. */
export function recorderFor(owner: object): FlightRecorder {
  let r = recorders.get(owner);
  if (!r) recorders.set(owner, (r = new FlightRecorder()));
  return r;
}
