/**
 * tcclrun's command line, parsed without side effects other than checking that the script
 * exists, so every rule here is unit-testable.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { TcclError } from '../errors.js';

export const TRANSPORTS = ['tcp', 'memory', 'shm', 'webrtc', 'auto'] as const;
export type TransportName = (typeof TRANSPORTS)[number];

/** A fully validated launch request. */
export interface CliOptions {
  /** Number of ranks (WORLD_SIZE). */
  n: number;
  transport: TransportName;
  /** Whole-job limit and per-rank TCCL_TIMEOUT_MS; undefined = none. */
  timeoutMs?: number;
  /** Prefix every output line with `[rank] `. */
  prefix: boolean;
  /** Address the rendezvous store binds to (MASTER_ADDR). */
  host: string;
  /** Absolute path of the script. */
  script: string;
  /** Arguments after the script, passed through untouched. */
  scriptArgs: string[];
  /** Run the ranks as worker_threads of one process (shared-memory rings, no native code). */
  threads: boolean;
  /** 'core': each rank's main thread runs on a CPU of its own (mpirun --bind-to core). */
  bindTo: BindTo;
}

export const BIND_TO = ['none', 'core'] as const;
export type BindTo = (typeof BIND_TO)[number];

export type ParsedArgs =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; options: CliOptions };

/** Bad command line: the CLI prints `detail` and exits 2 (the usual usage-error code). */
export class UsageError extends TcclError {
  constructor(detail: string) {
    super('TCCL_ERR_INVALID_ARGUMENT', detail);
    this.name = 'UsageError';
  }
}

export const USAGE = `Usage: tcclrun -n N [options] [--] script.(ts|mts|js|mjs) [args...]

Starts N ranks of script on this host with a rendezvous store, like mpirun / torchrun.

Options:
  -n, -np, --nproc N        number of ranks to start (required, >= 1)
  --transport T             tcp | memory | shm | webrtc | auto (default: auto)
  --timeout S               seconds: sets TCCL_TIMEOUT_MS in every rank and kills the
                            whole job if it is still running after S seconds
  --tag-output              prefix every output line with "[rank] " (default)
  --no-prefix               pass rank output through without a prefix
  --host ADDR               address the rendezvous store listens on (default: 127.0.0.1)
  --threads                 run the ranks as worker_threads of one process, linked by
                            SharedArrayBuffer rings (transport shm or auto)
  --bind-to core|none       core: run each rank's main thread on a CPU of its own, as
                            mpirun --bind-to core (at most one rank per CPU); default none
  -h, --help                show this help
  --version                 print the tccl version

Everything after the script path is passed to the script. TypeScript scripts run
through tsx. Rank 0 receives the launcher's stdin. Each rank gets RANK, WORLD_SIZE,
LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TCCL_STORE_URL, TCCL_TRANSPORT,
TCCL_JOB_ID, TCCL_JOB_SECRET, TCCL_LAUNCHER_PID (and TCCL_TIMEOUT_MS with --timeout).
If a rank fails, the others are stopped and tcclrun exits with that rank's status.
`;

/** Options that take a value; aliases map to the canonical name. */
const VALUE_FLAGS: Record<string, 'n' | 'transport' | 'timeout' | 'host' | 'bind'> = {
  '--bind-to': 'bind',
  '-n': 'n',
  '-np': 'n',
  '--np': 'n',
  '--nproc': 'n',
  '--transport': 'transport',
  '--timeout': 'timeout',
  '--host': 'host',
};

export interface ParseEnv {
  /** Directory the script path is relative to (default: process.cwd()). */
  cwd?: string;
  /** File check, replaceable in tests (default: statSync(...).isFile()). */
  isFile?: (path: string) => boolean;
}

/** Parse `argv` (without node and the bin path). Throws UsageError for bad input. */
export function parseArgs(argv: readonly string[], env: ParseEnv = {}): ParsedArgs {
  const cwd = env.cwd ?? process.cwd();
  const isFile = env.isFile ?? defaultIsFile;
  let n: string | undefined;
  let transport: string | undefined;
  let timeout: string | undefined;
  let host: string | undefined;
  let bind: string | undefined;
  let prefix = true;
  let threads = false;
  let i = 0;

  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '-h' || arg === '--help') return { kind: 'help' };
    if (arg === '--version') return { kind: 'version' };
    if (arg === '--tag-output') {
      prefix = true;
      continue;
    }
    if (arg === '--no-prefix') {
      prefix = false;
      continue;
    }
    if (arg === '--threads') {
      threads = true;
      continue;
    }
    // First non-option ends option parsing: it is the script.
    if (!arg.startsWith('-') || arg === '-') {
      if (arg === '-') throw new UsageError('reading the script from stdin ("-") is not supported');
      break;
    }

    let flag = arg;
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      flag = arg.slice(0, eq);
      value = arg.slice(eq + 1);
    } else if (/^-n\d+$/.test(arg)) {
      // mpirun-style "-n4".
      flag = '-n';
      value = arg.slice(2);
    }
    const name = VALUE_FLAGS[flag];
    if (name === undefined) throw new UsageError(`unknown option "${arg}"`);
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`option ${flag} needs a value`);
      value = argv[++i];
    }
    if (name === 'n') n = value;
    else if (name === 'transport') transport = value;
    else if (name === 'timeout') timeout = value;
    else if (name === 'bind') bind = value;
    else host = value;
  }

  if (n === undefined) throw new UsageError('missing -n N (number of ranks)');
  const ranks = parseCount(n);

  const tr = transport ?? 'auto';
  if (!(TRANSPORTS as readonly string[]).includes(tr)) {
    throw new UsageError(`unknown transport "${tr}" (expected one of: ${TRANSPORTS.join(', ')})`);
  }

  let timeoutMs: number | undefined;
  if (timeout !== undefined) {
    const s = Number(timeout);
    if (timeout.trim() === '' || !Number.isFinite(s) || s <= 0) {
      throw new UsageError(`--timeout must be a positive number of seconds, got "${timeout}"`);
    }
    timeoutMs = Math.max(1, Math.round(s * 1000));
  }

  if (host !== undefined && host.trim() === '') throw new UsageError('--host needs a non-empty address');

  const bindTo = bind ?? 'none';
  if (!(BIND_TO as readonly string[]).includes(bindTo)) throw new UsageError(`--bind-to must be core or none, got "${bind}"`);
  if (bindTo === 'core' && threads) throw new UsageError('--bind-to core binds processes: it cannot be combined with --threads');

  if (i >= argv.length) throw new UsageError('missing script to run');
  const scriptArg = argv[i];
  const script = resolve(cwd, scriptArg);
  if (!isFile(script)) throw new UsageError(`script not found: ${scriptArg}`);

  return {
    kind: 'run',
    options: {
      n: ranks,
      transport: tr as TransportName,
      timeoutMs,
      prefix,
      host: host ?? '127.0.0.1',
      script,
      scriptArgs: argv.slice(i + 1),
      bindTo: bindTo as BindTo,
      threads,
    },
  };
}

function parseCount(text: string): number {
  // Strict: "4x", "1e2", "" and "2.5" are mistakes, not numbers to coerce.
  if (!/^\d+$/.test(text)) throw new UsageError(`-n must be a positive integer, got "${text}"`);
  const v = Number(text);
  if (v < 1) throw new UsageError(`-n must be at least 1, got ${text}`);
  if (v > 4096) throw new UsageError(`-n ${text} is more ranks than one host can run (max 4096)`);
  return v;
}

function defaultIsFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
