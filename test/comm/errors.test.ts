// Misuse and failure: every error carries a stable code and names the rank and the op.
import { afterEach, describe, expect, it } from 'vitest';
import { ANY_SOURCE, ANY_TAG, TAG_UB, type Communicator, type TcclError } from '../../src/index.js';
import { pattern, rejection, sameBytes, thrown, WorldTracker, type TransportKind } from '../transports/helpers.js';

/** A full exchange between ranks 0 and 1: proves the communicators still work. */
async function roundTrip(w: Communicator[], tag = 4242): Promise<void> {
  const got = [new Int32Array(2), new Int32Array(2)];
  await Promise.all([
    w[0].sendrecv(new Int32Array([10, 11]), 1, got[0], 1, { tag }),
    w[1].sendrecv(new Int32Array([20, 21]), 0, got[1], 0, { tag }),
  ]);
  expect(Array.from(got[0])).toEqual([20, 21]);
  expect(Array.from(got[1])).toEqual([10, 11]);
}

/** The message names the calling rank and the op, e.g. "(rank 0, op isend)"; `op` may list alternatives "a|b". */
function namesRankAndOp(e: TcclError, rank: number, op: string): void {
  expect(e.message).toMatch(new RegExp(`\\brank ${rank}\\b`));
  expect(e.message).toMatch(new RegExp(`\\bop (${op})\\b`));
}

for (const transport of ['memory', 'tcp'] as TransportKind[]) {
  describe(`communicator errors (${transport})`, () => {
    const worlds = new WorldTracker(transport);
    const world = (size: number, opts: { timeoutMs?: number } = {}) => worlds.world(size, opts);
    afterEach(() => worlds.closeAll());

    describe('invalid arguments', () => {
      it('destination rank >= size, negative or not an integer', async () => {
        const w = await world(2);
        const buf = new Float32Array(4);
        for (const dest of [2, 5, -1, -2, 1.5, NaN]) {
          const e = thrown(() => w[0].isend(buf, dest));
          expect(e.code).toBe('TCCL_ERR_INVALID_ARGUMENT');
          namesRankAndOp(e, 0, 'isend');
          expect(e.message).toContain(String(dest));
          const viaSend = await rejection(w[0].send(buf, dest));
          expect(viaSend.code).toBe('TCCL_ERR_INVALID_ARGUMENT');
        }
        for (const source of [2, -2, 0.5]) {
          const e = thrown(() => w[1].irecv(buf, source));
          expect(e.code).toBe('TCCL_ERR_INVALID_ARGUMENT');
          namesRankAndOp(e, 1, 'irecv');
          expect((await rejection(w[1].recv(buf, source))).code).toBe('TCCL_ERR_INVALID_ARGUMENT');
        }
        await roundTrip(w);
      });

      it('sendrecv with a bad send argument fails and leaves no receive posted behind', async () => {
        const w = await world(2, { timeoutMs: 1_500 });
        const bad: [string, () => Promise<unknown>][] = [
          ['destination 3', () => w[0].sendrecv(new Int32Array(1), 3, new Int32Array(1), 1)],
          ['sendTag -5', () => w[0].sendrecv(new Int32Array(1), 1, new Int32Array(1), 1, { sendTag: -5 })],
          ['a plain-array send buffer', () => w[0].sendrecv([1] as unknown as Int32Array, 1, new Int32Array(1), 1)],
        ];
        for (const [what, call] of bad) {
          const e = await rejection(call());
          expect(e.code, what).toBe('TCCL_ERR_INVALID_ARGUMENT');
          // The next message from rank 1 must reach the next receive, not a receive the failed call left posted.
          const got = new Int32Array(1);
          const [outcome] = await Promise.all([
            w[0].recv(got, 1, { tag: 1 }).then((st) => st, (err: unknown) => err),
            w[1].send(new Int32Array([77]), 0, { tag: 1 }),
          ]);
          expect(outcome, `receive after sendrecv(${what}) failed`).toEqual({ source: 1, tag: 1, bytes: 4, count: 1 });
          expect(got[0]).toBe(77);
        }
      });

      const notTyped: [string, unknown][] = [
        ['a plain array', [1, 2, 3]],
        ['a string', 'abc'],
        ['null', null],
        ['undefined', undefined],
        ['a number', 42],
        ['a plain object', { length: 3 }],
        ['an ArrayBuffer (not a view)', new ArrayBuffer(8)],
      ];

      it('a buffer that is not a typed array → TCCL_ERR_INVALID_ARGUMENT', async () => {
        const w = await world(2);
        for (const [what, bad] of notTyped) {
          const s = thrown(() => w[0].isend(bad as ArrayBufferView, 1));
          expect(s.code, what).toBe('TCCL_ERR_INVALID_ARGUMENT');
          expect(s.message).toMatch(/typed array/);
          const r = thrown(() => w[1].irecv(bad as ArrayBufferView, 0));
          expect(r.code, what).toBe('TCCL_ERR_INVALID_ARGUMENT');
          expect((await rejection(w[0].send(bad as ArrayBufferView, 1))).code).toBe('TCCL_ERR_INVALID_ARGUMENT');
          expect((await rejection(w[1].recv(bad as ArrayBufferView, 0))).code).toBe('TCCL_ERR_INVALID_ARGUMENT');
        }
        await roundTrip(w);
      });

      it('a buffer that is not a typed array: the error names the rank and the op', async () => {
        const w = await world(2);
        for (const [what, bad] of notTyped) {
          const s = thrown(() => w[0].isend(bad as ArrayBufferView, 1));
          expect(s.rank, `isend(${what}): TcclError.rank`).toBe(0);
          namesRankAndOp(s, 0, 'isend');
          const r = thrown(() => w[1].irecv(bad as ArrayBufferView, 0));
          expect(r.rank, `irecv(${what}): TcclError.rank`).toBe(1);
          namesRankAndOp(r, 1, 'irecv');
        }
        await roundTrip(w);
      });

      it('bad tags', async () => {
        const w = await world(2);
        const buf = new Uint8Array(1);
        for (const tag of [ANY_TAG, -2, 1.5, TAG_UB + 1, NaN, Infinity, 2 ** 32]) {
          const e = thrown(() => w[0].isend(buf, 1, { tag }));
          expect(e.code, `send tag ${tag}`).toBe('TCCL_ERR_INVALID_ARGUMENT');
          namesRankAndOp(e, 0, 'isend');
          expect(e.message).toMatch(/tag/);
        }
        for (const tag of [-2, 1.5, TAG_UB + 1, NaN]) {
          const e = thrown(() => w[1].irecv(buf, 0, { tag }));
          expect(e.code, `recv tag ${tag}`).toBe('TCCL_ERR_INVALID_ARGUMENT');
          namesRankAndOp(e, 1, 'irecv');
        }
        // The largest tag is fine.
        const got = new Uint8Array(1);
        await Promise.all([w[0].send(new Uint8Array([7]), 1, { tag: TAG_UB }), w[1].recv(got, 0, { tag: TAG_UB })]);
        expect(got[0]).toBe(7);
        await roundTrip(w);
      });
    });

    describe('truncation', () => {
      it('receive posted before the message: TCCL_ERR_TRUNCATED, and the next message on the pair is fine', async () => {
        const w = await world(2);
        const small = new Uint8Array(50);
        const truncated = w[1].irecv(small, 0, { tag: 1 });
        await w[0].send(pattern(100, 1), 1, { tag: 1 });
        const e = await rejection(truncated);
        expect(e.code).toBe('TCCL_ERR_TRUNCATED');
        namesRankAndOp(e, 1, 'recv');
        expect(e.message).toMatch(/100 bytes/);
        expect(e.message).toMatch(/50-byte/);
        await w[0].send(pattern(50, 2), 1, { tag: 1 });
        expect((await w[1].recv(small, 0, { tag: 1 })).bytes).toBe(50);
        sameBytes(small, pattern(50, 2), 'next message');
        await roundTrip(w);
      });

      it('receive posted after the message arrived: TCCL_ERR_TRUNCATED, and the next message on the pair is fine', async () => {
        const w = await world(2);
        await w[0].send(pattern(100, 1), 1, { tag: 1 });
        await w[0].send(pattern(50, 2), 1, { tag: 1 });
        // Fence: a message on another tag proves both have arrived.
        await Promise.all([w[0].send(new Uint8Array(1), 1, { tag: 2 }), w[1].recv(new Uint8Array(1), 0, { tag: 2 })]);
        const small = new Uint8Array(50);
        const e = await rejection(w[1].recv(small, 0, { tag: 1 }));
        expect(e.code).toBe('TCCL_ERR_TRUNCATED');
        namesRankAndOp(e, 1, 'recv');
        expect((await w[1].recv(small, 0, { tag: 1 })).bytes).toBe(50);
        sameBytes(small, pattern(50, 2), 'next message');
        await roundTrip(w);
      });

      it('a large message into a tiny posted buffer is skipped on the wire; the stream stays in sync', async () => {
        const w = await world(2);
        const tiny = new Float64Array(1);
        const r = w[1].irecv(tiny, 0, { tag: 1 });
        const sends = [w[0].isend(pattern(3 << 20, 1), 1, { tag: 1 }), w[0].isend(pattern(8, 2), 1, { tag: 1 })];
        expect((await rejection(r)).code).toBe('TCCL_ERR_TRUNCATED');
        expect(await w[1].recv(tiny, ANY_SOURCE, { tag: 1 })).toEqual({ source: 0, tag: 1, bytes: 8, count: 1 });
        sameBytes(tiny, pattern(8, 2), 'next');
        await Promise.all(sends);
      });

      it('a truncated self-send', async () => {
        const w = await world(2);
        await w[1].send(pattern(10, 3), 1, { tag: 0 });
        expect((await rejection(w[1].recv(new Uint8Array(9), 1, { tag: 0 }))).code).toBe('TCCL_ERR_TRUNCATED');
        await roundTrip(w);
      });
    });

    describe('after close()', () => {
      it('every call fails with TCCL_ERR_CLOSED naming the op; other ranks and close() again are fine', async () => {
        const w = await world(3);
        await w[0].close();
        expect(w[0].isClosed).toBe(true);
        const buf = new Uint8Array(1);
        const sync: [string, () => unknown][] = [
          ['isend', () => w[0].isend(buf, 1)],
          ['irecv', () => w[0].irecv(buf, 1)],
        ];
        for (const [op, call] of sync) {
          const e = thrown(call);
          expect(e.code).toBe('TCCL_ERR_CLOSED');
          namesRankAndOp(e, 0, op);
        }
        const async: [string, () => Promise<unknown>][] = [
          ['isend', () => w[0].send(buf, 1)],
          ['irecv', () => w[0].recv(buf, 1)],
          ['sendrecv|irecv|isend', () => w[0].sendrecv(buf, 1, buf, 1)],
          ['split', () => w[0].split(0)],
          ['split|dup', () => w[0].dup()],
        ];
        for (const [op, call] of async) {
          const e = await rejection(call());
          expect(e.code).toBe('TCCL_ERR_CLOSED');
          namesRankAndOp(e, 0, op);
        }
        await w[0].close(); // idempotent
        // Ranks 1 and 2 still talk to each other.
        const got = new Uint8Array(1);
        await Promise.all([w[1].send(new Uint8Array([5]), 2), w[2].recv(got, 1)]);
        expect(got[0]).toBe(5);
      });

      it('closing a sub-communicator leaves the parent working', async () => {
        const w = await world(2);
        const subs = await Promise.all(w.map((c) => c.dup()));
        await Promise.all(subs.map((s) => s.close()));
        expect(thrown(() => subs[0].isend(new Uint8Array(1), 1)).code).toBe('TCCL_ERR_CLOSED');
        await roundTrip(w);
      });

      it('close() fails the closing rank\'s own pending receives with TCCL_ERR_CLOSED (no timer left behind)', async () => {
        const w = await world(2);
        const pending = w[0].irecv(new Uint8Array(1), 1, { timeoutMs: 1_500 });
        const anySource = w[0].irecv(new Uint8Array(1), ANY_SOURCE, { timeoutMs: 1_500 });
        await w[0].close();
        for (const r of [pending, anySource]) {
          const e = await rejection(r);
          expect(e.code, 'a receive pending on a closed communicator').toBe('TCCL_ERR_CLOSED');
        }
      });
    });

    describe('timeouts and cancellation', () => {
      it('a recv that never gets its message: TCCL_ERR_TIMEOUT naming the source rank and op', async () => {
        const w = await world(2);
        const e = await rejection(w[0].recv(new Float32Array(4), 1, { tag: 3, timeoutMs: 100 }));
        expect(e.code).toBe('TCCL_ERR_TIMEOUT');
        expect(e.message).toMatch(/from rank 1\b/);
        expect(e.message).toMatch(/100 ms/);
        namesRankAndOp(e, 0, 'recv');
        expect(e.peer).toBe(1);
        expect(e.op).toBe('recv');
        const any = await rejection(w[0].recv(new Float32Array(4), ANY_SOURCE, { timeoutMs: 100 }));
        expect(any.code).toBe('TCCL_ERR_TIMEOUT');
        expect(any.message).toMatch(/any source/);
        // The timed-out receive is gone: the next message goes to the next receive.
        const got = new Float32Array(4);
        await Promise.all([w[1].send(new Float32Array([1, 2, 3, 4]), 0, { tag: 3 }), w[0].recv(got, 1, { tag: 3 })]);
        expect(Array.from(got)).toEqual([1, 2, 3, 4]);
        await roundTrip(w);
      });

      it('the world\'s timeoutMs is the default for every receive', async () => {
        const w = await world(2, { timeoutMs: 100 });
        const e = await rejection(w[1].recv(new Uint8Array(1), 0));
        expect(e.code).toBe('TCCL_ERR_TIMEOUT');
        expect(e.message).toMatch(/100 ms/);
      });

      it('an AbortSignal cancels a pending recv with TCCL_ERR_ABORTED; the next message goes to the next recv', async () => {
        const w = await world(2);
        const ac = new AbortController();
        const r = w[0].irecv(new Uint8Array(4), 1, { tag: 1, signal: ac.signal });
        ac.abort(new Error('user gave up'));
        const e = await rejection(r);
        expect(e.code).toBe('TCCL_ERR_ABORTED');
        namesRankAndOp(e, 0, 'recv');
        // Already-aborted signal.
        expect((await rejection(w[0].recv(new Uint8Array(4), 1, { tag: 1, signal: ac.signal }))).code).toBe('TCCL_ERR_ABORTED');
        const got = new Uint8Array(4);
        await Promise.all([w[1].send(new Uint8Array([4, 3, 2, 1]), 0, { tag: 1 }), w[0].recv(got, 1, { tag: 1 })]);
        expect(Array.from(got)).toEqual([4, 3, 2, 1]);
        // Aborting after completion changes nothing.
        const late = new AbortController();
        const done = w[0].irecv(got, 1, { tag: 2, signal: late.signal });
        await w[1].send(new Uint8Array([9, 9, 9, 9]), 0, { tag: 2 });
        await done;
        late.abort();
        expect(done.test()?.bytes).toBe(4);
        await roundTrip(w);
      });
    });

    describe('peer failure', () => {
      it('a peer that closes makes a pending recv from it fail with TCCL_ERR_PEER_LOST (link in use)', async () => {
        const w = await world(3);
        await roundTrip(w); // links between 0 and 1 exist
        const pending = w[0].irecv(new Uint8Array(8), 1, { tag: 6 });
        await w[1].close();
        const e = await rejection(pending);
        expect(e.code).toBe('TCCL_ERR_PEER_LOST');
        expect(e.message).toMatch(/\brank 1\b/);
        expect(e.peer).toBe(1);
        namesRankAndOp(e, 0, 'recv');
        // Later operations on the lost peer fail at once; the others still work.
        expect((await rejection(w[0].recv(new Uint8Array(1), 1, { timeoutMs: 5_000 }))).code).toBe('TCCL_ERR_PEER_LOST');
        expect((await rejection(w[0].send(new Uint8Array(1), 1))).code).toBe('TCCL_ERR_PEER_LOST');
        const got = new Uint8Array(1);
        await Promise.all([w[0].send(new Uint8Array([3]), 2, { tag: 1 }), w[2].recv(got, 0, { tag: 1 })]);
        expect(got[0]).toBe(3);
      });

      it('a peer that closes makes a pending recv from it fail with TCCL_ERR_PEER_LOST (no traffic before)', async () => {
        const w = await world(2, { timeoutMs: 1_500 });
        const pending = w[0].irecv(new Uint8Array(8), 1, { tag: 6 });
        await w[1].close();
        const e = await rejection(pending);
        expect(e.code, 'pending recv from a rank that closed without ever talking to us').toBe('TCCL_ERR_PEER_LOST');
      });

      it('a message the peer sent before closing can still be received', async () => {
        const w = await world(2);
        const lostSeen = w[0].irecv(new Uint8Array(1), 1, { tag: 99 });
        await w[1].send(pattern(64, 5), 0, { tag: 1 });
        await w[1].close();
        expect((await rejection(lostSeen)).code).toBe('TCCL_ERR_PEER_LOST'); // rank 0 knows rank 1 left
        const got = new Uint8Array(64);
        const outcome = await w[0].recv(got, 1, { tag: 1 }).then((s) => s, (err: unknown) => err);
        expect(outcome, 'the message arrived before the peer left').toEqual({ source: 1, tag: 1, bytes: 64, count: 64 });
        sameBytes(got, pattern(64, 5), 'message sent before close');
      });

      it('comm.abort() on one rank fails a pending recv on another rank with TCCL_ERR_ABORTED naming the aborting rank', async () => {
        const w = await world(3);
        // Every pair has talked, so every link exists.
        for (const [a, b] of [[0, 1], [0, 2], [1, 2]]) {
          await Promise.all([w[a].send(new Uint8Array(1), b), w[b].recv(new Uint8Array(1), a), w[b].send(new Uint8Array(1), a), w[a].recv(new Uint8Array(1), b)]);
        }
        const onZero = w[0].irecv(new Uint8Array(1), 2, { tag: 5 });
        const onTwo = w[2].irecv(new Uint8Array(1), ANY_SOURCE, { tag: 5 });
        const onOne = w[1].irecv(new Uint8Array(1), 0, { tag: 5 });
        w[1].abort('boom');
        for (const [rank, r] of [[1, onOne], [0, onZero], [2, onTwo]] as const) {
          const e = await rejection(r);
          expect(e.code, `rank ${rank}`).toBe('TCCL_ERR_ABORTED');
          expect(e.message).toMatch(/rank 1 aborted/);
          expect(e.message).toMatch(/boom/);
        }
        // The aborting rank is closed; the others fail every later call with the abort.
        expect(thrown(() => w[1].isend(new Uint8Array(1), 0)).code).toBe('TCCL_ERR_CLOSED');
        expect(thrown(() => w[0].irecv(new Uint8Array(1), 2)).code).toBe('TCCL_ERR_ABORTED');
      });

      it('comm.abort() reaches a rank it never talked to', async () => {
        const w = await world(2, { timeoutMs: 1_500 });
        const pending = w[0].irecv(new Uint8Array(1), 1, { tag: 5 });
        w[1].abort('boom');
        const e = await rejection(pending);
        expect(e.code, 'pending recv on a rank the aborting rank never exchanged messages with').toBe('TCCL_ERR_ABORTED');
        expect(e.message).toMatch(/rank 1/);
      });
    });
  });
}
