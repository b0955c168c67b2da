// Diagnostics: desync records and verdicts, the flight recorder, rate-limited warnings.
import { afterEach, describe, expect, it } from 'vitest';
import { decodeDesc, describeCall, encodeDesc, findDisagreement, DESC_BYTES } from '../../src/diag/desync.js';
import { FlightRecorder } from '../../src/diag/flight-recorder.js';
import { setDebugLevel, setLogSink, warnLimited } from '../../src/diag/log.js';

afterEach(() => setDebugLevel(process.env.TCCL_DEBUG ?? 'WARN'));

describe('desync check records', () => {
  it('round-trip a call through a fixed-size record', () => {
    const call = { op: 'allreduce', count: 1024, dtype: 'float32', reduceOp: 'sum' };
    const rec = encodeDesc(call);
    expect(rec.length).toBe(DESC_BYTES);
    expect(decodeDesc(rec)).toEqual(call);
    expect(decodeDesc(encodeDesc({ op: 'barrier' }))).toEqual({ op: 'barrier' });
  });

  it('a garbled record is a protocol error, not a crash', () => {
    const rec = encodeDesc({ op: 'x' });
    rec[5] = 0xff;
    expect(() => decodeDesc(rec)).toThrow(expect.objectContaining({ code: 'TCCL_ERR_PROTOCOL' }));
    const huge = new Uint8Array(DESC_BYTES).fill(0xff);
    expect(() => decodeDesc(huge)).toThrow(expect.objectContaining({ code: 'TCCL_ERR_PROTOCOL' }));
  });

  it('agreement is null; disagreement names every group and the ranks that differ from me', () => {
    const ar = { op: 'allreduce', count: 8, dtype: 'float32', reduceOp: 'sum' };
    expect(findDisagreement([ar, ar, ar], 0)).toBeNull();
    const bc = { op: 'broadcast', count: 8, dtype: 'float32', root: 0 };
    const d = findDisagreement([ar, bc, ar, ar], 0)!;
    expect(d.message).toBe('ranks disagree on this collective: ranks 0,2,3 called allreduce(count=8, dtype=float32, op=sum); rank 1 called broadcast(count=8, dtype=float32, root=0)');
    expect(d.differing).toEqual([1]);
    expect(findDisagreement([ar, bc, ar, ar], 1)!.differing).toEqual([0, 2, 3]);
    expect(describeCall({ op: 'allreduce', count: 4, dtype: 'int32', reduceOp: 'max', root: 2 })).toBe('allreduce(count=4, dtype=int32, op=max, root=2)');
  });
});

describe('flight recorder', () => {
  it('keeps the last N operations, oldest first, with state and error', () => {
    const fr = new FlightRecorder(3);
    const recs = [1, 2, 3, 4].map((seq) => fr.start(0, 0, seq, 'allreduce', `count=${seq}`));
    fr.finish(recs[1]);
    fr.finish(recs[2], new Error('boom'));
    expect(fr.records().map((r) => r.seq)).toEqual([2, 3, 4]);
    const dump = fr.dump();
    expect(dump.split('\n')).toHaveLength(3);
    expect(dump).toMatch(/seq 2 allreduce count=2 done/);
    expect(dump).toMatch(/seq 3 allreduce count=3 failed .* — boom/);
    expect(dump).toMatch(/seq 4 allreduce count=4 running \(running for \d+ ms\)/);
  });

  it('an operation that finished within its call is shown as such, without a duration', () => {
    const fr = new FlightRecorder(4);
    const rec = fr.start(0, 2, 7, 'allreduce', { count: 2, dtype: 'float32', reduceOp: 'sum', algorithm: 'shm' });
    fr.finish(rec, undefined, false);
    expect(rec.endedAt).toBeUndefined();
    expect(fr.dump()).toBe('  ctx 2 seq 7 allreduce allreduce(count=2, dtype=float32, op=sum) algo=shm done (within the call)');
  });

  it('capacity 0 records nothing', () => {
    const fr = new FlightRecorder(0);
    fr.start(0, 0, 1, 'x', '');
    expect(fr.records()).toEqual([]);
  });
});

describe('logging', () => {
  it('a warning repeated at network speed prints a few times, then is counted', () => {
    const lines: string[] = [];
    const prev = setLogSink((l) => lines.push(l));
    try {
      for (let i = 0; i < 1000; i++) warnLimited('test-key', 3, `refused #${i}`);
    } finally {
      setLogSink(prev);
    }
    expect(lines).toHaveLength(5);
    expect(lines[0]).toBe('tccl WARN rank 3: refused #0\n');
  });

  it('NONE silences warnings; INFO and DETAIL are opt-in', async () => {
    const { info, warn, infoEnabled, detailEnabled } = await import('../../src/diag/log.js');
    const lines: string[] = [];
    const prev = setLogSink((l) => lines.push(l));
    try {
      setDebugLevel('NONE');
      warn(0, 'hidden');
      setDebugLevel('WARN');
      info(0, 'hidden too');
      expect(infoEnabled()).toBe(false);
      setDebugLevel('info');
      info(0, 'shown');
      expect(detailEnabled()).toBe(false);
      setDebugLevel('DETAIL');
      expect(detailEnabled()).toBe(true);
    } finally {
      setLogSink(prev);
    }
    expect(lines).toEqual(['tccl INFO rank 0: shown\n']);
  });
});
