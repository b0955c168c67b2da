// Pure argument parsing: no processes, no real files.
import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../../src/launcher/args.js';
import { isTcclError } from '../../src/errors.js';

const env = { cwd: '/job', isFile: (p: string) => p.startsWith('/job/') || p === '/abs/train.ts' };
const run = (argv: string[]) => {
  const r = parseArgs(argv, env);
  if (r.kind !== 'run') throw new Error(`expected run, got ${r.kind}`);
  return r.options;
};
const usage = (argv: string[]) => {
  try {
    parseArgs(argv, env);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    expect(isTcclError(e, 'TCCL_ERR_INVALID_ARGUMENT')).toBe(true);
    return (e as UsageError).detail;
  }
  throw new Error('expected a UsageError');
};

describe('parseArgs', () => {
  it('applies defaults and resolves the script against cwd', () => {
    expect(run(['-n', '4', 'train.mjs'])).toEqual({
      n: 4,
      transport: 'auto',
      timeoutMs: undefined,
      prefix: true,
      host: '127.0.0.1',
      script: '/job/train.mjs',
      scriptArgs: [],
      threads: false,
      bindTo: 'none',
    });
  });

  it('--bind-to core|none (mpirun\'s names); any other value, or core with --threads, is refused', () => {
    expect(run(['-n', '2', '--bind-to', 'core', 'a.js']).bindTo).toBe('core');
    expect(run(['-n', '2', '--bind-to=none', 'a.js']).bindTo).toBe('none');
    expect(usage(['-n', '2', '--bind-to', 'socket', 'a.js'])).toBe('--bind-to must be core or none, got "socket"');
    expect(usage(['-n', '2', '--bind-to', 'a.js'])).toMatch(/--bind-to must be core or none|missing script/);
    expect(usage(['-n', '2', '--threads', '--bind-to', 'core', 'a.js'])).toMatch(/cannot be combined with --threads/);
  });

  it('--threads asks for rank threads in one process', () => {
    expect(run(['-n', '4', '--threads', 'train.mjs']).threads).toBe(true);
  });

  it('accepts every option spelling', () => {
    const o = run(['-np', '2', '--transport=shm', '--timeout', '1.5', '--no-prefix', '--host=0.0.0.0', '/abs/train.ts']);
    expect(o).toMatchObject({ n: 2, transport: 'shm', timeoutMs: 1500, prefix: false, host: '0.0.0.0', script: '/abs/train.ts' });
    expect(run(['-n8', 'a.js']).n).toBe(8);
    expect(run(['--nproc=3', 'a.js']).n).toBe(3);
    expect(run(['--np', '5', '--timeout=2', 'a.js']).timeoutMs).toBe(2000);
    expect(run(['--no-prefix', '--tag-output', '-n', '1', 'a.js']).prefix).toBe(true);
    for (const t of ['tcp', 'memory', 'shm', 'webrtc', 'auto']) expect(run(['-n', '1', '--transport', t, 'a.js']).transport).toBe(t);
  });

  it('passes everything after the script through untouched', () => {
    expect(run(['-n', '2', 'a.js', '-n', '9', '--help', '--', '--timeout']).scriptArgs).toEqual(['-n', '9', '--help', '--', '--timeout']);
    expect(run(['-n', '2', '--', '-weird.js', 'x']).script).toBe('/job/-weird.js');
    expect(run(['-n', '2', '--', '-weird.js', 'x']).scriptArgs).toEqual(['x']);
  });

  it('help and version win wherever they are among the options', () => {
    expect(parseArgs(['-n', '2', '--help'], env)).toEqual({ kind: 'help' });
    expect(parseArgs(['-h'], env)).toEqual({ kind: 'help' });
    expect(parseArgs(['--version'], env)).toEqual({ kind: 'version' });
    // ...but not after the script, where they belong to the script.
    expect(parseArgs(['-n', '1', 'a.js', '--help'], env).kind).toBe('run');
  });

  it.each([
    [[], 'missing -n N (number of ranks)'],
    [['a.js'], 'missing -n N (number of ranks)'],
    [['-n'], 'option -n needs a value'],
    [['-n', '0', 'a.js'], '-n must be at least 1, got 0'],
    [['-n', '-2', 'a.js'], '-n must be a positive integer, got "-2"'],
    [['-n', '2.5', 'a.js'], '-n must be a positive integer, got "2.5"'],
    [['-n', 'four', 'a.js'], '-n must be a positive integer, got "four"'],
    [['-n', '1e2', 'a.js'], '-n must be a positive integer, got "1e2"'],
    [['-n', '2'], 'missing script to run'],
    [['-n', '2', 'nope.mjs'.replace('nope', '../elsewhere/nope')], 'script not found: ../elsewhere/nope.mjs'],
    [['-n', '2', '--transport', 'ib', 'a.js'], 'unknown transport "ib" (expected one of: tcp, memory, shm, webrtc, auto)'],
    [['-n', '2', '--bogus', 'a.js'], 'unknown option "--bogus"'],
    [['-x', '-n', '2', 'a.js'], 'unknown option "-x"'],
    [['-n', '2', '--timeout', '0', 'a.js'], '--timeout must be a positive number of seconds, got "0"'],
    [['-n', '2', '--timeout', 'soon', 'a.js'], '--timeout must be a positive number of seconds, got "soon"'],
    [['-n', '2', '--host=', 'a.js'], '--host needs a non-empty address'],
    [['-n', '2', '-', 'a.js'], 'reading the script from stdin ("-") is not supported'],
  ])('%j -> %s', (argv, message) => {
    expect(usage(argv)).toBe(message);
  });
});
