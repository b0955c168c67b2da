/** Shared plumbing for the algorithms: block layout, byte views, bounded messages. */
import type { TypedArray } from '../dtype.js';
import { invalidArgument } from '../errors.js';
import type { CollectiveP2P, SharedGroup } from './p2p.js';

/**
 * Ring / chain segment size (bytes). Provisional until measured: big enough that per-message
 * overhead (~10 µs in Node) is small next to moving it, small enough that reducing segment k
 * overlaps receiving segment k+1 and the pipeline fills quickly.
 */
export const SEGMENT_BYTES = 512 * 1024;

/**
 * Largest single p2p message (bytes). Bigger logical messages are cut into pieces of this size
 * on both sides, so frames stay far below 2 GiB and any length works.
 */
export const MAX_MESSAGE_BYTES = 1 << 30;

export const mod = (a: number, n: number): number => ((a % n) + n) % n;
export const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
/** Largest power of two <= n (n >= 1). */
export const pow2Floor = (n: number): number => 2 ** Math.floor(Math.log2(n));

/**
 * Split `count` elements into `parts` blocks: the first `count % parts` blocks get one extra
 * element. Returns per-block counts and displacements (`displs` has parts + 1 entries).
 */
export function evenBlocks(count: number, parts: number): { counts: number[]; displs: number[] } {
  const base = Math.floor(count / parts);
  const extra = count % parts;
  const counts = new Array<number>(parts);
  for (let i = 0; i < parts; i++) counts[i] = base + (i < extra ? 1 : 0);
  return { counts, displs: prefixSums(counts) };
}

/** displs[i] = counts[0] + … + counts[i-1]; displs[parts] = total. */
export function prefixSums(counts: readonly number[]): number[] {
  const d = new Array<number>(counts.length + 1);
  d[0] = 0;
  for (let i = 0; i < counts.length; i++) d[i + 1] = d[i] + counts[i];
  return d;
}

/** Byte view (no copy) of elements [off, off + len) of `buf`. */
export const bytesAt = (buf: TypedArray, off: number, len: number): Uint8Array =>
  new Uint8Array(buf.buffer, buf.byteOffset + off * buf.BYTES_PER_ELEMENT, len * buf.BYTES_PER_ELEMENT);

/** Typed view (no copy) of elements [off, off + len) of `buf`. */
export const sub = (buf: TypedArray, off: number, len: number): TypedArray => buf.subarray(off, off + len) as TypedArray;

/** A new zeroed array of the same class as `like`. */
export const allocLike = (like: TypedArray, len: number): TypedArray =>
  new (like.constructor as new (n: number) => TypedArray)(len);

/** Copy `len` elements src[srcOff…] -> dst[dstOff…] (memcpy; skipped when they are the same memory). */
export function copyElems(dst: TypedArray, dstOff: number, src: TypedArray, srcOff: number, len: number): void {
  if (len === 0) return;
  const d = bytesAt(dst, dstOff, len);
  const s = bytesAt(src, srcOff, len);
  if (d.buffer === s.buffer && d.byteOffset === s.byteOffset) return;
  d.set(s);
}

/** Send `bytes` as ceil(len / max) messages; zero bytes send nothing (both sides know the length). */
export function xsend(p2p: CollectiveP2P, peer: number, bytes: Uint8Array, max = MAX_MESSAGE_BYTES): Promise<void> {
  if (bytes.length <= max) return bytes.length === 0 ? DONE : p2p.send(peer, bytes);
  const parts: Promise<void>[] = [];
  for (let o = 0; o < bytes.length; o += max) parts.push(quiet(p2p.send(peer, bytes.subarray(o, o + max))));
  return Promise.all(parts).then(noop);
}

/** Receive what the matching `xsend` sent. */
export function xrecv(p2p: CollectiveP2P, peer: number, bytes: Uint8Array, max = MAX_MESSAGE_BYTES): Promise<void> {
  if (bytes.length <= max) return bytes.length === 0 ? DONE : p2p.recv(peer, bytes);
  const parts: Promise<void>[] = [];
  for (let o = 0; o < bytes.length; o += max) parts.push(quiet(p2p.recv(peer, bytes.subarray(o, o + max))));
  return Promise.all(parts).then(noop);
}

/** Post a send and a receive together and wait for both (never send-then-recv: that deadlocks on rendezvous transports). */
export function sendrecv(p2p: CollectiveP2P, to: number, sbytes: Uint8Array, from: number, rbytes: Uint8Array): Promise<void> {
  return Promise.all([quiet(xsend(p2p, to, sbytes)), quiet(xrecv(p2p, from, rbytes))]).then(noop);
}

/**
 * Mark a promise we will await later as handled, so an early rejection is not reported as
 * unhandled; awaiting `p` itself still throws.
 */
export function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(noop);
  return p;
}

/** Segments of at most `seg` elements covering [off, off + len): pushed as (offset, length) pairs. */
export function pushSegments(out: number[], off: number, len: number, seg: number): void {
  for (let o = 0; o < len; o += seg) out.push(off + o, Math.min(seg, len - o));
}

/** Elements per segment for `segmentBytes`: at least one, at most one message. */
export const segmentElems = (buf: TypedArray, segmentBytes: number): number =>
  Math.max(1, Math.floor(Math.min(segmentBytes, MAX_MESSAGE_BYTES) / buf.BYTES_PER_ELEMENT));

/** Cheap invariant check (the Communicator validates arguments fully before calling in). */
export function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw invalidArgument(what);
}

const noop = (): void => {};
const DONE: Promise<void> = Promise.resolve();

/**
 * The standard fold for non-power-of-two worlds (p = largest power of two <= n, rem = n - p):
 * among the first 2·rem ranks each even rank hands its whole buffer to the odd rank above
 * and waits for the result; that odd rank reduces it in. Returns this rank's virtual rank
 * among the p survivors, or -1 when it sat out (its buffer already holds the result).
 * `scratch` must hold at least buf.length elements when this rank is such an odd rank.
 * With a commutative op both partners compute the same bits, so all ranks agree.
 */
export async function foldToPow2(p2p: CollectiveP2P, buf: TypedArray, reduce: (acc: TypedArray, other: TypedArray) => void, scratch: () => TypedArray): Promise<number> {
  const r = p2p.rank;
  const rem = p2p.size - pow2Floor(p2p.size);
  if (r >= 2 * rem) return r - rem;
  const all = bytesAt(buf, 0, buf.length);
  if (r % 2 === 0) {
    await xsend(p2p, r + 1, all);
    await xrecv(p2p, r + 1, all);
    return -1;
  }
  const tmp = sub(scratch(), 0, buf.length);
  await xrecv(p2p, r - 1, bytesAt(tmp, 0, buf.length));
  reduce(buf, tmp);
  return r >> 1;
}

/** World rank of virtual rank `v` after foldToPow2. */
export const unfoldedRank = (v: number, rem: number): number => (v < rem ? 2 * v + 1 : v + rem);

/** The end of foldToPow2: survivors that absorbed a partner send it the result. */
export async function unfoldFromPow2(p2p: CollectiveP2P, buf: TypedArray): Promise<void> {
  const rem = p2p.size - pow2Floor(p2p.size);
  if (p2p.rank < 2 * rem) await xsend(p2p, p2p.rank - 1, bytesAt(buf, 0, buf.length));
}

/**
 * The loop of a shared-memory collective (SharedGroup in p2p.ts): for each chunk k < chunks,
 * take the next half, `fill(k, half)` (copy in), sync, `drain(k, half)` (copy out). It runs
 * synchronously while every peer is there, so a collective whose peers were ready finishes
 * within the call (undefined: no promise, no event-loop turn); from the first late peer on it
 * goes on asynchronously (a promise).
 */
export function sharedChunks(
  g: SharedGroup, chunks: number, fill: (k: number, half: number) => void, drain: (k: number, half: number) => void, from = 0,
): Promise<void> | undefined {
  for (let k = from; k < chunks; k++) {
    const half = g.nextHalf();
    fill(k, half);
    const wait = g.sync();
    if (wait) {
      return wait.then(() => {
        drain(k, half);
        return sharedChunks(g, chunks, fill, drain, k + 1);
      });
    }
    drain(k, half);
  }
  return undefined;
}

/** alltoallv's invariants (shared by its algorithms): one count per rank, the own block sent to itself, every block inside its buffer. */
export function checkAlltoallv(
  n: number, me: number, src: TypedArray, sendCounts: readonly number[], sdispls: readonly number[],
  dst: TypedArray, recvCounts: readonly number[], rdispls: readonly number[],
): void {
  check(sendCounts.length === n && recvCounts.length === n, 'alltoallv: one count per rank');
  check(sendCounts[me] === recvCounts[me], 'alltoallv: the block a rank sends itself must match what it receives');
  for (let j = 0; j < n; j++) {
    check(sdispls[j] + sendCounts[j] <= src.length && rdispls[j] + recvCounts[j] <= dst.length, 'alltoallv: a block lies outside its buffer');
  }
}
