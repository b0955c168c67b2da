/**
 * TCCL_DEBUG=DETAIL: before each collective every rank sends every other rank what it is
 * about to call (operation, count, dtype, reduce op, root), over a matching context of its
 * own so the check can never match collective data. Any disagreement fails the collective
 * on every rank with TCCL_ERR_DESYNC naming the ranks and what each called.
 */
import { TcclError } from '../errors.js';
import type { CollectiveP2P } from '../collectives/p2p.js';

/** What a rank calls; fields that do not apply to an operation are left out. */
export interface CallDesc {
  op: string;
  count?: number;
  dtype?: string;
  reduceOp?: string;
  root?: number;
}

/** Fixed record size: collective receives take exact sizes. */
export const DESC_BYTES = 256;
/** The check's matching context sits above every context a communicator can own. */
export const DESYNC_CONTEXT_BIT = 0x8000_0000;

export function encodeDesc(d: CallDesc): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify([d.op, d.count ?? null, d.dtype ?? null, d.reduceOp ?? null, d.root ?? null]));
  if (json.length > DESC_BYTES - 4) throw new TcclError('TCCL_ERR_INTERNAL', `call descriptor of ${json.length} bytes does not fit ${DESC_BYTES - 4}`);
  const out = new Uint8Array(DESC_BYTES);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  return out;
}

/** Throws TCCL_ERR_PROTOCOL on a record no tccl rank would send. */
export function decodeDesc(bytes: Uint8Array): CallDesc {
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  try {
    if (n > bytes.length - 4) throw new Error(`length ${n}`);
    const [op, count, dtype, reduceOp, root] = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + n))) as [string, number | null, string | null, string | null, number | null];
    const d: CallDesc = { op: String(op) };
    if (count !== null) d.count = count;
    if (dtype !== null) d.dtype = dtype;
    if (reduceOp !== null) d.reduceOp = reduceOp;
    if (root !== null) d.root = root;
    return d;
  } catch (cause) {
    throw new TcclError('TCCL_ERR_PROTOCOL', 'undecodable desync-check record', { cause });
  }
}

/** What a collective was called with, for the desync check, the flight recorder and logs. */
export interface CollectiveDesc extends Omit<CallDesc, 'op'> {
  /** Algorithm chosen (logged, not compared); a function is called only when shown. */
  algorithm?: string | (() => string);
}

/** e.g. "allreduce(count=1024, dtype=float32, op=sum) algo=ring" */
export function describeCollective(op: string, d: CollectiveDesc): string {
  const algorithm = typeof d.algorithm === 'function' ? d.algorithm() : d.algorithm;
  return describeCall({ op, count: d.count, dtype: d.dtype, reduceOp: d.reduceOp, root: d.root }) + (algorithm ? ` algo=${algorithm}` : '');
}

export function describeCall(d: CallDesc): string {
  const args: string[] = [];
  if (d.count !== undefined) args.push(`count=${d.count}`);
  if (d.dtype !== undefined) args.push(`dtype=${d.dtype}`);
  if (d.reduceOp !== undefined) args.push(`op=${d.reduceOp}`);
  if (d.root !== undefined) args.push(`root=${d.root}`);
  return `${d.op}(${args.join(', ')})`;
}

/**
 * Group ranks by what they called. Returns null when all agree; otherwise a message naming
 * every group and the ranks whose call differs from `me`'s.
 */
export function findDisagreement(calls: readonly CallDesc[], me: number): { message: string; differing: number[] } | null {
  const groups = new Map<string, number[]>();
  calls.forEach((c, r) => {
    const key = describeCall(c);
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  });
  if (groups.size === 1) return null;
  const mine = describeCall(calls[me]);
  const parts = [...groups.entries()].sort((a, b) => b[1].length - a[1].length || a[1][0] - b[1][0])
    .map(([call, ranks]) => `rank${ranks.length > 1 ? 's' : ''} ${ranks.join(',')} called ${call}`);
  const differing = calls.map((c, r) => (describeCall(c) === mine ? -1 : r)).filter((r) => r >= 0);
  return { message: `ranks disagree on this collective: ${parts.join('; ')}`, differing };
}

/**
 * Exchange call descriptors with every other rank over `check` (a p2p bound to the check
 * context and this collective's tag) and compare. Receives time out with the collective.
 */
export async function checkAgreement(check: CollectiveP2P, mine: CallDesc): Promise<{ message: string; differing: number[] } | null> {
  const record = encodeDesc(mine);
  const records: Uint8Array[] = [];
  const ops: Promise<void>[] = [];
  for (let r = 0; r < check.size; r++) {
    if (r === check.rank) {
      records.push(record);
      continue;
    }
    const buf = new Uint8Array(DESC_BYTES);
    records.push(buf);
    ops.push(check.recv(r, buf), check.send(r, record));
  }
  await Promise.all(ops);
  return findDisagreement(records.map((b, r) => (r === check.rank ? mine : decodeDesc(b))), check.rank);
}
