// tcclbench's barrier row and --jit-warmup end to end, through tcclrun, and the same in mpibench
// (the Open MPI reference) where Open MPI is installed or installable: one row of size 0, no
// in-place form, nothing to check (#wrong N/A), the same columns in both tools.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchDocument } from '../../bench/tcclbench/report.js';
import { canRunMpi, MPIRUN_FLAGS, root, runProcess, tableRows, tcclbench } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcclbench-barrier-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const readDoc = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as BenchDocument;
/** The fields of a data row after the leading columns: out-of-place time..#wrong, in-place time..#wrong. */
const fields = (stdout: string) => stdout.split('\n').filter((l) => /^\s+\d+\s+\d+\s+\w+/.test(l)).map((l) => l.trim().split(/\s+/));

function expectBarrierDoc(doc: BenchDocument, nranks: number): void {
  expect(doc).toMatchObject({ collective: 'barrier', nranks, minBytes: 0, maxBytes: 0, avgBusbw: 0, wrong: null });
  expect(doc.results).toHaveLength(1);
  const [row] = doc.results;
  expect(row).toMatchObject({ size: 0, count: 0, type: 'none', redop: 'none', root: -1, inPlace: null });
  expect(row.outOfPlace).toMatchObject({ algbw: 0, busbw: 0, wrong: null, iters: 20 });
  expect(row.outOfPlace.timeUs).toBeGreaterThan(0);
  expect(row.outOfPlace.medianUs).toBeGreaterThan(0);
}

describe('tcclbench barrier', () => {
  it.each([
    ['tcp', 3, 50], // dissemination barrier over messages
    ['shm', 2, 0], // the shared-memory barrier; no --jit-warmup: absent from header and JSON
  ] as const)('over %s on %i ranks: one size-0 row whatever -b/-e/-d say, in place and #wrong N/A', async (transport, n, jit) => {
    const json = join(dir, `barrier-${transport}.json`);
    const r = await tcclbench(n, ['barrier', '-t', transport, '-b', '8', '-e', '1M', '-f', '2', '-d', 'all', '-n', '20', '-w', '5', ...(jit ? ['--jit-warmup', String(jit)] : []), '-J', json]);
    expect(r.stderr).not.toContain('Error');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`# tcclbench barrier: tccl`);
    expect(r.stdout).toContain('# minBytes 0 maxBytes 0 ');
    if (jit) expect(r.stdout).toContain(` jit-warmup: ${jit}\n`);
    else expect(r.stdout).not.toContain('jit-warmup');
    const rows = fields(r.stdout);
    expect(rows).toHaveLength(1);
    const [row] = rows;
    expect(row.slice(0, 5)).toEqual(['0', '0', 'none', 'none', '-1']);
    expect(Number(row[5])).toBeGreaterThan(0);
    expect(row.slice(6)).toEqual(['0.00', '0.00', 'N/A', 'N/A', 'N/A', 'N/A', 'N/A']);
    expect(r.stdout).toContain('# Out of bounds values : 0 OK');
    expect(r.stdout).toContain('# Avg bus bandwidth    : 0\n');
    const doc = readDoc(json);
    expectBarrierDoc(doc, n);
    if (jit) expect(doc.jitWarmup).toBe(jit);
    else expect(Object.keys(doc)).not.toContain('jitWarmup');
    expect(doc.transport).toBe(transport);
  });
});

describe('tcclbench --jit-warmup', () => {
  it('runs before the sweep, says so in the header and the JSON, and results still verify', async () => {
    const json = join(dir, 'jit.json');
    const r = await tcclbench(2, ['allreduce', '-b', '8', '-e', '512', '-f', '8', '-n', '3', '-w', '1', '--jit-warmup', '200', '-J', json]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/warmup iters: 1 iters: 3 validation: 1 average: max jit-warmup: 200\n/);
    const rows = tableRows(r.stdout);
    expect(rows.map((x) => [x.size, x.wrongOut, x.wrongIn])).toEqual([[8, '0', '0'], [64, '0', '0'], [512, '0', '0']]);
    expect(readDoc(json)).toMatchObject({ warmup: 1, iters: 3, jitWarmup: 200, wrong: 0 });
  });

  it('a bad value exits 2 with the reason', async () => {
    const r = await tcclbench(2, ['allreduce', '--jit-warmup', '-5']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('tcclbench: --jit-warmup must be an integer >= 0, got "-5"');
  });
});

const mpirunFlags = ['--mca', 'pml', 'ob1', ...MPIRUN_FLAGS];

describe.runIf(canRunMpi)('mpibench barrier and --jit-warmup (Open MPI reference)', () => {
  let binary = '';
  beforeAll(() => {
    binary = execFileSync('bash', ['bench/mpi/build.sh', '--quiet'], { cwd: root, encoding: 'utf8', timeout: 600_000 }).trim().split('\n').pop()!;
  }, 600_000);

  it('prints the row tcclbench prints (MPI_Barrier) and the same JSON', async () => {
    const json = join(dir, 'mpi-barrier.json');
    const r = await runProcess('mpirun', ['-n', '3', ...mpirunFlags, binary, 'barrier', '-b', '8', '-e', '1M', '-f', '2', '-n', '20', '-w', '5', '--jit-warmup', '50', '-J', json, '--transport', 'vader']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('# minBytes 0 maxBytes 0 ');
    expect(r.stdout).toContain(' jit-warmup: 50\n');
    const rows = fields(r.stdout);
    expect(rows).toHaveLength(1);
    expect(rows[0].slice(0, 5)).toEqual(['0', '0', 'none', 'none', '-1']);
    expect(Number(rows[0][5])).toBeGreaterThan(0);
    expect(rows[0].slice(6)).toEqual(['0.00', '0.00', 'N/A', 'N/A', 'N/A', 'N/A', 'N/A']);
    expect(r.stdout).toContain('# Out of bounds values : 0 OK');
    const doc = readDoc(json);
    expectBarrierDoc(doc, 3);
    expect(doc).toMatchObject({ tool: 'mpibench', jitWarmup: 50 });
  });

  it('--jit-warmup with a data collective still verifies; a bad value exits 2 with the reason', async () => {
    const ok = await runProcess('mpirun', ['-n', '2', ...mpirunFlags, binary, 'allreduce', '-b', '8', '-e', '512', '-f', '8', '-n', '3', '-w', '1', '--jit-warmup', '200']);
    expect(ok.code).toBe(0);
    expect(tableRows(ok.stdout).map((x) => [x.size, x.wrongOut, x.wrongIn])).toEqual([[8, '0', '0'], [64, '0', '0'], [512, '0', '0']]);
    const bad = await runProcess('mpirun', ['-n', '2', ...mpirunFlags, binary, 'allreduce', '--jit-warmup', '1x']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('mpibench: --jit-warmup must be an integer >= 0');
  });
});
