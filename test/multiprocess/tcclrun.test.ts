// Real processes through the real launcher over TCP.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = (n: number, script: string, args: string[] = []) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['bin/tcclrun.js', '-n', String(n), '--timeout', '120', script, ...args], { cwd: root, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });

describe('tcclrun jobs over tcp', () => {
  it('1000 random isend/irecv among 4 processes arrive intact and in MPI order', async () => {
    const r = await run(4, 'test/multiprocess/fixtures/random-p2p.ts', ['1000']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('RESULT messages=1000 wrong=0');
  });

  it('examples/allreduce.ts prints a verified result on 4 ranks', async () => {
    const r = await run(4, 'examples/allreduce.ts', ['100003']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[0\] allreduce of 100003 float64 over 4 ranks: verified, 0 wrong/);
  });

  it('misuse raises coded errors and the communicator keeps working', async () => {
    const r = await run(3, 'test/multiprocess/fixtures/misuse.ts');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.includes('CODES'));
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).toContain('dest>=size:TCCL_ERR_INVALID_ARGUMENT');
      expect(line).toContain('not-typed-array:TCCL_ERR_INVALID_ARGUMENT');
      expect(line).toContain('root-out-of-range:TCCL_ERR_INVALID_ARGUMENT');
      expect(line).toContain('band-on-float:TCCL_ERR_INVALID_ARGUMENT');
      expect(line).toContain('allgather-length:TCCL_ERR_INVALID_ARGUMENT');
      expect(line).toContain('recv-timeout:TCCL_ERR_TIMEOUT');
      expect(line).not.toContain('MESSAGE_WITHOUT_RANK');
      expect(line).toContain('STILL_WORKS=true');
    }
    expect(lines.find((l) => l.startsWith('[0]'))).toContain('truncated:TCCL_ERR_TRUNCATED');
    expect(r.stdout.match(/AFTER_CLOSE after-close:TCCL_ERR_CLOSED/g)).toHaveLength(3);
  });
});
