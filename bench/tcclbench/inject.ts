/**
 * Deliberate corruption of a verified result, to prove that the check catches and reports a
 * wrong answer (test/bench). Never active unless asked for:
 *   TCCL_BENCH_INJECT=swap[:rank]   exchange two neighbouring result elements (a misplaced element)
 *   TCCL_BENCH_INJECT=bump[:rank]   flip the low bit of one result element
 * (or the hidden flag --inject SPEC). Default rank: the root (0 for unrooted collectives).
 * Applied after the first check run of every size and placement, never to timed runs.
 */
import type { TypedArray } from '../../src/dtype.js';
import { BenchUsageError } from './args.js';

export interface Injection {
  mode: 'swap' | 'bump';
  rank?: number;
}

export function parseInjection(spec: string | undefined): Injection | undefined {
  if (spec === undefined || spec === '') return undefined;
  const m = /^(swap|bump)(?::(\d+))?$/.exec(spec);
  if (!m) throw new BenchUsageError(`bad injection "${spec}": expected swap[:rank] or bump[:rank]`);
  return { mode: m[1] as Injection['mode'], rank: m[2] === undefined ? undefined : Number(m[2]) };
}

/** Corrupt `result` in place; returns how many elements now differ (0 if it had none to corrupt). */
export function corrupt(inj: Injection, result: TypedArray): number {
  const width = result.BYTES_PER_ELEMENT;
  const bytes = new Uint8Array(result.buffer, result.byteOffset, result.byteLength);
  const k = Math.floor(result.length / 2);
  if (inj.mode === 'swap' && result.length >= 2) {
    const a = bytes.slice(k * width - width, k * width);
    const b = bytes.slice(k * width, k * width + width);
    if (Buffer.compare(a, b) !== 0) {
      bytes.set(b, k * width - width);
      bytes.set(a, k * width);
      return 2;
    }
  }
  if (result.length === 0) return 0;
  bytes[k * width] ^= 1;
  return 1;
}
