/**
 * tcclbench's command line: nccl-tests' flags with their meaning and defaults, except
 * -t (transport here; nccl-tests' thread count has no meaning for one process per rank) and
 * -a (default 3 = max over ranks, the conservative choice; nccl-tests defaults to 1 = mean).
 * Pure: parse errors throw BenchUsageError, nothing is printed or read from the environment.
 */
import { TcclError } from '../../src/errors.js';
import type { DType } from '../../src/dtype.js';
import type { ReduceOpName } from '../../src/kernels/reduce.js';

export const COLLECTIVES = ['allreduce', 'reduce_scatter', 'allgather', 'alltoall', 'broadcast', 'reduce', 'sendrecv', 'barrier'] as const;
export type CollectiveName = (typeof COLLECTIVES)[number];

export const BENCH_DTYPES: readonly DType[] = ['float32', 'float64', 'int32', 'int8', 'uint8', 'int64', 'float16', 'bfloat16'];
/** nccl-tests' type names accepted as aliases. */
const DTYPE_ALIASES: Record<string, DType> = { float: 'float32', double: 'float64', half: 'float16', int: 'int32', char: 'int8', bf16: 'bfloat16', fp16: 'float16', fp32: 'float32', fp64: 'float64' };
export const BENCH_OPS: readonly ReduceOpName[] = ['sum', 'prod', 'max', 'min', 'avg', 'band', 'bor', 'bxor'];
/** -a: how the per-rank times combine into the one reported (nccl-tests' numbering). */
export const AVERAGE_MODES = ['rank0', 'avg', 'min', 'max'] as const;
export type AverageMode = (typeof AVERAGE_MODES)[number];

export interface BenchOptions {
  collective: CollectiveName;
  minBytes: number;
  maxBytes: number;
  stepBytes: number;
  stepFactor: number;
  iters: number;
  warmup: number;
  /** Number of verified runs per size and placement (0 = no check). */
  check: number;
  /** 'all' expands to every dtype. */
  dtypes: DType[];
  /** 'all' expands to every op valid for the dtype; ignored by movement collectives. */
  ops: ReduceOpName[];
  root: number;
  average: AverageMode;
  /** Transport for init(); undefined = the one tcclrun set (TCCL_TRANSPORT). */
  transport?: string;
  json?: string;
  /** Per-collective timeout in ms (nccl-tests' -T is seconds). */
  timeoutMs?: number;
  /** true/false forces the progress bar on/off; undefined = only on a terminal. */
  progress?: boolean;
  /** Cap on bytes timed per size (0 = off): fewer iterations for large messages, as OSU does. */
  iterBytes: number;
  /** Run in place even where tccl has no in-place form (alltoall, sendrecv). */
  forceInPlace: boolean;
  /**
   * Untimed, unchecked out-of-place calls at the sweep's smallest size before each sweep (0 = none,
   * nccl-tests' behaviour): V8 optimizes a hot path only after ~10000 calls, more than -w gives.
   */
  jitWarmup: number;
  /** Hidden: corrupt a verified result to prove the check (see inject.ts). */
  inject?: string;
}

export class BenchUsageError extends TcclError {
  constructor(detail: string) {
    super('TCCL_ERR_INVALID_ARGUMENT', detail);
    this.name = 'BenchUsageError';
  }
}

export const BENCH_USAGE = `Usage: tcclrun -n N bench/tcclbench.ts <collective> [options]

Collectives: ${COLLECTIVES.join(', ')}
  (barrier moves no data: one row of size 0 whatever -b/-e/-d say, no in-place column, #wrong N/A)

Options (nccl-tests' names and defaults):
  -b, --minbytes SIZE      smallest message, e.g. 8, 64K, 1M (default 32M)
  -e, --maxbytes SIZE      largest message (default 32M)
  -i, --stepbytes SIZE     increment when -f is 1 (default 1M)
  -f, --stepfactor F       multiply the size by F each step (default 1: add -i)
  -n, --iters N            timed iterations per size (default 20)
  -w, --warmup_iters N     untimed iterations before each size (default 5)
  -c, --check N            verified runs per size, 0 = off (default 1)
  -d, --datatype T         ${BENCH_DTYPES.join(' | ')} | all (aliases: float, double, half, int)
  -o, --op OP              sum | prod | max | min | avg | band | bor | bxor | all (default sum)
  -r, --root R             root of broadcast / reduce (default 0)
  -a, --average M          per-rank times combine as 0=rank0 1=mean 2=min 3=max (default 3)
  -t, --transport T        tcp | shm | webrtc | auto (default: what tcclrun set)
  -J, --json FILE          write every result as JSON to FILE
  -T, --timeout S          seconds one collective may take before it fails (default 300)
  --iter-bytes SIZE        not in nccl-tests: per size run min(-n, SIZE / size) iterations (at
                           least 3) and min(-w, SIZE / size) warm-ups (at least 1); 0 = off
  --jit-warmup N           not in nccl-tests: N untimed, unchecked out-of-place calls at the
                           smallest size before the sweep, so V8's optimizing compiler (after
                           ~10000 calls) has run before anything is timed (default 0)
  --progress / --no-progress   force the progress bar on stderr on or off
  -h, --help
`;

export type ParsedBenchArgs = { kind: 'help' } | { kind: 'run'; options: BenchOptions };

const VALUE_FLAGS: Record<string, string> = {
  '-b': 'minbytes', '--minbytes': 'minbytes', '-e': 'maxbytes', '--maxbytes': 'maxbytes',
  '-i': 'stepbytes', '--stepbytes': 'stepbytes', '-f': 'stepfactor', '--stepfactor': 'stepfactor',
  '-n': 'iters', '--iters': 'iters', '-w': 'warmup', '--warmup_iters': 'warmup', '--warmup': 'warmup',
  '-c': 'check', '--check': 'check', '-d': 'datatype', '--datatype': 'datatype', '-o': 'op', '--op': 'op',
  '-r': 'root', '--root': 'root', '-a': 'average', '--average': 'average', '-t': 'transport', '--transport': 'transport',
  '-J': 'json', '--json': 'json', '-T': 'timeout', '--timeout': 'timeout', '--inject': 'inject', '--iter-bytes': 'iterbytes',
  '--jit-warmup': 'jitwarmup',
};

/** "8", "64K", "1M", "1.5G" -> bytes (binary units, as nccl-tests). */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?$/.exec(text.trim());
  if (!m) throw new BenchUsageError(`${what} must be a size like 8, 64K, 128M or 1G, got "${text}"`);
  const bytes = Math.floor(Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase()));
  if (!Number.isSafeInteger(bytes)) throw new BenchUsageError(`${what} ${text} is too large`);
  return bytes;
}

function parseInteger(text: string, what: string, min: number): number {
  if (!/^\d+$/.test(text.trim())) throw new BenchUsageError(`${what} must be an integer >= ${min}, got "${text}"`);
  const v = Number(text);
  if (v < min) throw new BenchUsageError(`${what} must be >= ${min}, got ${v}`);
  return v;
}

function parseDtypes(text: string): DType[] {
  if (text === 'all') return [...BENCH_DTYPES];
  const d = DTYPE_ALIASES[text] ?? text;
  if (!(BENCH_DTYPES as readonly string[]).includes(d)) throw new BenchUsageError(`unknown datatype "${text}" (expected ${BENCH_DTYPES.join(', ')} or all)`);
  return [d as DType];
}

function parseOps(text: string): ReduceOpName[] {
  if (text === 'all') return [...BENCH_OPS];
  if (!(BENCH_OPS as readonly string[]).includes(text)) throw new BenchUsageError(`unknown op "${text}" (expected ${BENCH_OPS.join(', ')} or all)`);
  return [text as ReduceOpName];
}

function parseAverage(text: string): AverageMode {
  const byNumber = /^[0-3]$/.test(text) ? AVERAGE_MODES[Number(text)] : undefined;
  const mode = byNumber ?? (AVERAGE_MODES as readonly string[]).find((m) => m === text);
  if (mode === undefined) throw new BenchUsageError(`-a must be 0 (rank0), 1 (avg), 2 (min) or 3 (max), got "${text}"`);
  return mode as AverageMode;
}

/** Parse argv after the script path. */
export function parseBenchArgs(argv: readonly string[]): ParsedBenchArgs {
  const values: Record<string, string> = {};
  let collective: string | undefined;
  let progress: boolean | undefined;
  let forceInPlace = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') return { kind: 'help' };
    if (arg === '--progress') { progress = true; continue; }
    if (arg === '--no-progress') { progress = false; continue; }
    if (arg === '--force-inplace') { forceInPlace = true; continue; } // kept for old scripts: every collective runs in place now
    if (!arg.startsWith('-')) {
      if (collective !== undefined) throw new BenchUsageError(`unexpected argument "${arg}" (the collective is already "${collective}")`);
      collective = arg;
      continue;
    }
    let flag = arg;
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) { flag = arg.slice(0, eq); value = arg.slice(eq + 1); }
    else if (/^-[a-zA-Z]./.test(arg) && VALUE_FLAGS[arg.slice(0, 2)]) { flag = arg.slice(0, 2); value = arg.slice(2); } // getopt's "-b8"
    const name = VALUE_FLAGS[flag];
    if (name === undefined) throw new BenchUsageError(`unknown option "${arg}"`);
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new BenchUsageError(`option ${flag} needs a value`);
      value = argv[++i];
    }
    values[name] = value;
  }
  if (collective === undefined) throw new BenchUsageError(`missing the collective to run (one of ${COLLECTIVES.join(', ')})`);
  const canonical = collective.replace(/-/g, '_').replace(/^reducescatter$/, 'reduce_scatter');
  if (!(COLLECTIVES as readonly string[]).includes(canonical)) throw new BenchUsageError(`unknown collective "${collective}" (expected one of ${COLLECTIVES.join(', ')})`);

  const minBytes = parseSize(values.minbytes ?? '32M', '-b');
  const maxBytes = parseSize(values.maxbytes ?? '32M', '-e');
  if (maxBytes < minBytes) throw new BenchUsageError(`-e ${maxBytes} is smaller than -b ${minBytes}`);
  const stepFactor = parseInteger(values.stepfactor ?? '1', '-f', 1);
  const stepBytes = parseSize(values.stepbytes ?? '1M', '-i');
  if (stepFactor === 1 && stepBytes === 0 && maxBytes > minBytes) throw new BenchUsageError('-i 0 with -f 1 would never reach -e');
  if (stepFactor > 1 && minBytes === 0) throw new BenchUsageError('-b 0 with -f > 1 would never grow: start at 1 byte or more');
  const timeoutS = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeoutS !== undefined && !(timeoutS > 0)) throw new BenchUsageError(`-T must be a positive number of seconds, got "${values.timeout}"`);
  const transport = values.transport;
  const dtypes = parseDtypes(values.datatype ?? 'float32'); // checked for a barrier too
  if (transport !== undefined && !/^[a-z]+$/.test(transport)) throw new BenchUsageError(`bad transport name "${transport}"`);
  return {
    kind: 'run',
    options: {
      collective: canonical as CollectiveName,
      // A barrier moves no data: one size-0 row whatever -b/-e say (they are still checked).
      ...(canonical === 'barrier' ? { minBytes: 0, maxBytes: 0 } : { minBytes, maxBytes }),
      stepBytes, stepFactor,
      iters: parseInteger(values.iters ?? '20', '-n', 1),
      warmup: parseInteger(values.warmup ?? '5', '-w', 0),
      check: parseInteger(values.check ?? '1', '-c', 0),
      dtypes: canonical === 'barrier' ? ['float32'] : dtypes, // a barrier has no data type: one row
      ops: parseOps(values.op ?? 'sum'),
      root: parseInteger(values.root ?? '0', '-r', 0),
      average: parseAverage(values.average ?? '3'),
      transport,
      json: values.json,
      timeoutMs: timeoutS === undefined ? undefined : Math.round(timeoutS * 1000),
      progress,
      forceInPlace,
      iterBytes: parseSize(values.iterbytes ?? '0', '--iter-bytes'),
      jitWarmup: parseInteger(values.jitwarmup ?? '0', '--jit-warmup', 0),
      inject: values.inject,
    },
  };
}

/** Timed and warm-up iterations at `bytes` under --iter-bytes (mirrored in mpibench.c). */
export function itersFor(bytes: number, o: Pick<BenchOptions, 'iters' | 'warmup' | 'iterBytes'>): { iters: number; warmup: number } {
  if (o.iterBytes <= 0) return { iters: o.iters, warmup: o.warmup };
  const fit = Math.floor(o.iterBytes / Math.max(bytes, 1));
  return { iters: Math.min(o.iters, Math.max(3, fit)), warmup: Math.min(o.warmup, Math.max(1, fit)) };
}

/** The message sizes of a sweep, in nccl-tests' order. */
export function sweepSizes(o: Pick<BenchOptions, 'minBytes' | 'maxBytes' | 'stepBytes' | 'stepFactor'>): number[] {
  const sizes: number[] = [];
  for (let s = o.minBytes; s <= o.maxBytes; s = o.stepFactor > 1 ? s * o.stepFactor : s + o.stepBytes) {
    sizes.push(s);
    if (o.stepFactor === 1 && o.stepBytes === 0) break;
    if (o.stepFactor > 1 && s === 0) break; // a barrier's size 0 (mpibench.c has the same guard)
  }
  return sizes;
}
