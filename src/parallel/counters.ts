/**
 * Communication counters of a parallel group: how many collectives of each kind each phase
 * issued and the bytes of the buffers they reduced or gathered (the logical tensor, e.g.
 * T×H×4 for an allreduce of activations — what Megatron's analysis counts; bytes on the wire
 * follow from the algorithm, 2(P−1)/P of that for a ring allreduce).
 */

export type CollectiveKind = 'allreduce' | 'allgather' | 'reduceScatter';
export type Phase = 'forward' | 'backward' | 'other';

export interface CommTally {
  count: number;
  bytes: number;
  /** Wall time spent awaiting these collectives, in ms. */
  ms: number;
}

export class CommCounters {
  private readonly tallies = new Map<string, CommTally>();

  record(kind: CollectiveKind, phase: Phase, bytes: number, ms: number): void {
    const key = `${kind}/${phase}`;
    const t = this.tallies.get(key) ?? { count: 0, bytes: 0, ms: 0 };
    t.count++;
    t.bytes += bytes;
    t.ms += ms;
    this.tallies.set(key, t);
  }

  get(kind: CollectiveKind, phase: Phase): CommTally {
    return { ...(this.tallies.get(`${kind}/${phase}`) ?? { count: 0, bytes: 0, ms: 0 }) };
  }

  /** Sum over every kind and phase. */
  total(): CommTally {
    const t = { count: 0, bytes: 0, ms: 0 };
    for (const v of this.tallies.values()) {
      t.count += v.count;
      t.bytes += v.bytes;
      t.ms += v.ms;
    }
    return t;
  }

  reset(): void {
    this.tallies.clear();
  }
}
