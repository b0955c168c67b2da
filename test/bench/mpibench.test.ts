// The Open MPI reference (bench/mpi/mpibench.c): same data bit for bit as tcclbench, clean
// verification for every collective, and the same JSON document. Needs Open MPI (mpicc,
// mpirun): bench/mpi/build.sh installs Debian's packages when they are missing and we are root
// (CI), so these run wherever Open MPI is or can be installed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedReduction, inputArray } from '../../bench/tcclbench/data.js';
import type { BenchDocument } from '../../bench/tcclbench/report.js';
import type { DType } from '../../src/dtype.js';
import type { ReduceOpName } from '../../src/kernels/reduce.js';
import { canRunMpi, MPIRUN_FLAGS, root, runProcess, tableRows } from './helpers.js';

const mpirunFlags = MPIRUN_FLAGS;
const dir = mkdtempSync(join(tmpdir(), 'mpibench-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hex = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

describe.runIf(canRunMpi)('mpibench (Open MPI reference)', () => {
  let built = '';
  // Installing Open MPI (first run on a fresh machine) takes a while; building takes a second.
  beforeAll(() => {
    built = execFileSync('bash', ['bench/mpi/build.sh', '--quiet'], { cwd: root, encoding: 'utf8', timeout: 600_000 }).trim().split('\n').pop()!;
  }, 600_000);
  const binary = () => built;

  it.each([['float32', 'sum'], ['float64', 'min'], ['int32', 'sum'], ['int8', 'prod'], ['uint8', 'max'], ['int64', 'bxor'], ['float32', 'prod']] as [DType, ReduceOpName][])(
    'generates the same %s %s data and expected result as tcclbench', async (dtype, op) => {
      const r = await runProcess('mpirun', ['-n', '3', ...mpirunFlags, binary(), 'allreduce', '-d', dtype, '-o', op, '--dump', '40']);
      expect(r.code).toBe(0);
      const lines = r.stdout.split('\n').filter((l) => l.startsWith('DUMP'));
      expect(lines).toHaveLength(3);
      for (const line of lines) {
        const [, rank, , input, , expected] = line.split(' ');
        expect(input).toBe(hex(inputArray(dtype, op, 3, 1, Number(rank), 0, 40)));
        expect(expected).toBe(hex(expectedReduction(dtype, op, 3, 1, 0, 40)));
      }
    });

  it.each(['allreduce', 'reduce_scatter', 'allgather', 'alltoall', 'broadcast', 'reduce', 'sendrecv'])('%s on 3 ranks verifies clean and writes the JSON tcclbench writes', async (coll) => {
    const json = join(dir, `${coll}.json`);
    const r = await runProcess('mpirun', ['-n', '3', ...mpirunFlags, binary(), coll, '-b', '8', '-e', '256K', '-f', '32', '-n', '3', '-w', '1', '-r', '1', '-J', json, '--transport', 'vader']);
    expect(r.code).toBe(0);
    const rows = tableRows(r.stdout);
    expect(rows).toHaveLength(4);
    for (const row of rows) expect([row.wrongOut, row.wrongIn]).toEqual(['0', '0']);
    const doc = JSON.parse(readFileSync(json, 'utf8')) as BenchDocument;
    expect(Object.keys(doc).sort()).toEqual(['average', 'avgBusbw', 'check', 'collective', 'date', 'host', 'implementation', 'iterBytes', 'iters', 'maxBytes', 'minBytes', 'nranks', 'results', 'stepBytes', 'stepFactor', 'tool', 'transport', 'version', 'warmup', 'wrong']);
    expect(doc).toMatchObject({ tool: 'mpibench', implementation: 'openmpi', transport: 'vader', collective: coll, nranks: 3, wrong: 0 });
    expect(doc.results.map((x) => x.size)).toEqual(rows.map((x) => x.size));
  });

  it('refuses what MPI cannot do (avg, float16) with exit 2', async () => {
    const r = await runProcess('mpirun', ['-n', '2', ...mpirunFlags, binary(), 'allreduce', '-o', 'avg']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('MPI has no avg');
  });
});
