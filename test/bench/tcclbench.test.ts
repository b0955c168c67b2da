// tcclbench end to end: real ranks through tcclrun over TCP. A normal sweep verifies clean;
// an injected wrong result is caught, reported per row and in the JSON, and fails the run.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchDocument } from '../../bench/tcclbench/report.js';
import { tableRows, tcclbench } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcclbench-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const readDoc = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as BenchDocument;

describe('tcclbench sweeps', () => {
  it('allreduce on 3 ranks: every row #wrong = 0, valid JSON with nccl-tests bandwidths', async () => {
    const json = join(dir, 'allreduce.json');
    const r = await tcclbench(3, ['allreduce', '-b', '8', '-e', '64K', '-f', '8', '-n', '3', '-w', '1', '-c', '2', '-J', json, '--progress']);
    expect(r.stderr).not.toContain('Error');
    expect(r.code).toBe(0);
    const rows = tableRows(r.stdout);
    expect(rows.map((x) => x.size)).toEqual([8, 64, 512, 4096, 32768]);
    for (const row of rows) expect([row.type, row.redop, row.root, row.wrongOut, row.wrongIn]).toEqual(['float32', 'sum', -1, '0', '0']);
    expect(r.stdout).toContain('# Out of bounds values : 0 OK');
    expect(r.stdout).toMatch(/# Avg bus bandwidth {4}: [\d.e+-]+/);
    // Forced progress without a terminal: one line per step on stderr.
    expect(r.stderr).toContain('tcclbench: 1/5 8 B float32 sum');

    const doc = readDoc(json);
    expect(doc).toMatchObject({ tool: 'tcclbench', implementation: 'tccl', collective: 'allreduce', nranks: 3, iters: 3, warmup: 1, check: 2, average: 'max', wrong: 0 });
    expect(doc.results).toHaveLength(5);
    for (const row of doc.results) {
      for (const p of [row.outOfPlace, row.inPlace!]) {
        expect(p.wrong).toBe(0);
        expect(p.timeUs).toBeGreaterThan(0);
        expect(p.medianUs).toBeGreaterThan(0);
        expect(p.algbw).toBeCloseTo(row.size / 1e9 / (p.timeUs / 1e6), 9);
        expect(p.busbw).toBeCloseTo((p.algbw * 2 * 2) / 3, 9); // 2(n-1)/n
      }
    }
    const mean = doc.results.reduce((a, x) => a + x.outOfPlace.busbw + x.inPlace!.busbw, 0) / 10;
    expect(doc.avgBusbw).toBeCloseTo(mean, 12);
  });

  it.each([
    ['reduce_scatter', ['-o', 'max', '-d', 'int32'], 'max', -1],
    ['allgather', ['-d', 'float64'], 'none', -1],
    ['broadcast', ['-r', '2', '-d', 'bfloat16'], 'none', 2],
    ['reduce', ['-r', '1', '-d', 'float16', '-o', 'avg'], 'avg', 1],
  ])('%s on 3 ranks verifies clean', async (coll, extra, redop, rootCol) => {
    const r = await tcclbench(3, [coll as string, '-b', '16', '-e', '48K', '-f', '16', '-n', '2', '-w', '1', ...(extra as string[])]);
    expect(r.code).toBe(0);
    const rows = tableRows(r.stdout);
    expect(rows).toHaveLength(3);
    for (const row of rows) expect([row.redop, row.root, row.wrongOut, row.wrongIn]).toEqual([redop, rootCol, '0', '0']);
  });

  it.each(['alltoall', 'sendrecv'])('%s on 3 ranks verifies clean out of place and in place (buffers aliased)', async (coll) => {
    const json = join(dir, `${coll}.json`);
    const r = await tcclbench(3, [coll, '-b', '12', '-e', '48K', '-f', '64', '-n', '2', '-w', '1', '-d', 'int8', '-J', json]);
    expect(r.code).toBe(0);
    const rows = tableRows(r.stdout);
    expect(rows).toHaveLength(3);
    for (const row of rows) expect([row.wrongOut, row.wrongIn]).toEqual(['0', '0']);
    const doc = readDoc(json);
    expect(doc.results.every((x) => x.inPlace?.wrong === 0 && x.outOfPlace.wrong === 0)).toBe(true);
  });

  it('every dtype x op of allreduce verifies clean on 2 ranks', async () => {
    const r = await tcclbench(2, ['allreduce', '-b', '24', '-e', '3K', '-f', '128', '-n', '1', '-w', '0', '-d', 'all', '-o', 'all']);
    expect(r.code).toBe(0);
    const rows = tableRows(r.stdout);
    // 4 float dtypes x 5 ops + 4 integer dtypes x 8 ops, two sizes each
    expect(rows).toHaveLength((4 * 5 + 4 * 8) * 2);
    expect(rows.filter((x) => x.wrongOut !== '0' || x.wrongIn !== '0')).toEqual([]);
  });
});

describe('tcclbench catches a wrong result', () => {
  it('a swapped pair of elements shows as #wrong in every row, in the JSON, and fails the run', async () => {
    const json = join(dir, 'injected.json');
    const r = await tcclbench(2, ['allreduce', '-b', '1K', '-e', '4K', '-f', '2', '-n', '2', '-w', '1', '-J', json], { TCCL_BENCH_INJECT: 'swap' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('corrupting verified results on purpose');
    const rows = tableRows(r.stdout);
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row.wrongOut).toBe('2');
      expect(row.wrongIn).toBe('2');
    }
    expect(r.stdout).toContain('# Out of bounds values : 12 FAILED');
    const doc = readDoc(json);
    expect(doc.wrong).toBe(12);
    expect(doc.results.every((x) => x.outOfPlace.wrong === 2 && x.inPlace!.wrong === 2)).toBe(true);
  });

  it('a flipped bit on one non-root rank of an allgather is caught too', async () => {
    const r = await tcclbench(3, ['allgather', '-b', '3K', '-e', '3K', '-n', '1', '-w', '0', '--inject', 'bump:1']);
    expect(r.code).not.toBe(0);
    const rows = tableRows(r.stdout);
    expect(rows).toHaveLength(1);
    expect([rows[0].wrongOut, rows[0].wrongIn]).toEqual(['1', '1']);
  });

  it('-c 0 checks nothing and says N/A rather than 0', async () => {
    const r = await tcclbench(2, ['allreduce', '-b', '1K', '-e', '1K', '-n', '1', '-w', '0', '-c', '0'], { TCCL_BENCH_INJECT: 'swap' });
    expect(r.code).toBe(0);
    const rows = tableRows(r.stdout);
    expect([rows[0].wrongOut, rows[0].wrongIn]).toEqual(['N/A', 'N/A']);
  });

  it('bad flags exit 2 with the reason', async () => {
    const r = await tcclbench(2, ['allreduce', '-d', 'float128']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown datatype "float128"');
  });
});
