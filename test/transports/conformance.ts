/**
 * Point-to-point behaviour every transport must share, run through initLocalWorld against
 * 'memory' and 'tcp'. Nothing here sleeps: ordering is forced with fence messages (a later
 * message on the same pair proves the earlier ones arrived) or by polling engine state
 * between event-loop turns.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ANY_SOURCE, ANY_TAG, type Communicator, type Request, type Status } from '../../src/index.js';
import {
  bytesOf, engineOf, makeArray, messageSeed, pattern, prng, rejection, sameBytes, until,
  WorldTracker, type TransportKind, type TypedCtor, type WorldOptions,
} from './helpers.js';

const DTYPES: TypedCtor[] = [Float32Array, Int32Array, BigInt64Array, Uint8Array, Float64Array];
const COUNTS = [0, 1, 7, 1_000_003];
const FENCE_TAG = 999_999;

export function transportConformance(transport: TransportKind, defaults: WorldOptions = {}): void {
  const label = `${transport}${defaults.connect ? ` (${defaults.connect} connect)` : ''}`;

  describe(`transport conformance: ${label}`, () => {
    const worlds = new WorldTracker(transport, defaults);
    const world = (size: number, opts?: WorldOptions) => worlds.world(size, opts);
    afterEach(async () => {
      vi.restoreAllMocks();
      await worlds.closeAll();
    });

    /** Sends a 1-byte fence on FENCE_TAG and waits until `to` got it: everything sent before arrived. */
    async function fence(w: Communicator[], from: number, to: number): Promise<void> {
      const got = new Uint8Array(1);
      await Promise.all([w[from].send(new Uint8Array([from]), to, { tag: FENCE_TAG }), w[to].recv(got, from, { tag: FENCE_TAG })]);
      expect(got[0]).toBe(from);
    }

    describe('typed arrays between every pair', () => {
      for (const size of [1, 2, 3, 4]) {
        it(`world of ${size}: every dtype and count, each rank to every rank (itself included)`, async () => {
          const w = await world(size);
          const early: Promise<void>[] = [];
          const late: (() => Promise<void>)[] = [];
          const sends: Promise<Status>[] = [];
          for (let src = 0; src < size; src++) {
            for (let dst = 0; dst < size; dst++) {
              DTYPES.forEach((ctor, t) => {
                COUNTS.forEach((count, c) => {
                  // The million-element messages go around the ring only, to keep the bytes moderate.
                  if (count > 1000 && dst !== (src + 1) % size) return;
                  const tag = t * 10 + c;
                  const seed = messageSeed(src, dst, tag);
                  const recvOne = async () => {
                    const buf = new ctor(count);
                    const status = await w[dst].irecv(buf, src, { tag });
                    expect(status).toEqual({ source: src, tag, bytes: count * ctor.BYTES_PER_ELEMENT, count });
                    sameBytes(buf, pattern(buf.byteLength, seed), `${ctor.name}[${count}] ${src}→${dst}`);
                  };
                  // Half the receives are posted before the sends, half after.
                  if ((t + c) % 2 === 0) early.push(recvOne());
                  else late.push(recvOne);
                  const data = makeArray(ctor, count, seed);
                  sends.push(w[src].isend(data, dst, { tag }).then((s) => {
                    expect(s).toEqual({ source: src, tag, bytes: data.byteLength, count });
                    return s;
                  }));
                });
              });
            }
          }
          await Promise.all([...early, ...late.map((f) => f()), ...sends]);
        });
      }
    });

    describe('wildcards', () => {
      it('ANY_SOURCE + ANY_TAG receives report the sender, tag, bytes and count', async () => {
        const w = await world(4);
        const bufs = Array.from({ length: 4 }, () => new Int32Array(100).fill(-7));
        const recvs = bufs.map((b) => w[0].irecv(b, ANY_SOURCE, { tag: ANY_TAG }));
        const sends = w.map((c, r) => c.isend(Int32Array.from({ length: 3 + r }, (_, i) => r * 1000 + i), 0, { tag: 50 + 3 * r }));
        const statuses = await Promise.all(recvs);
        await Promise.all(sends);
        expect(statuses.map((s) => s.source).sort()).toEqual([0, 1, 2, 3]);
        statuses.forEach((s, i) => {
          const r = s.source;
          expect(s).toEqual({ source: r, tag: 50 + 3 * r, bytes: (3 + r) * 4, count: 3 + r });
          expect(Array.from(bufs[i].subarray(0, 3 + r))).toEqual(Array.from({ length: 3 + r }, (_, j) => r * 1000 + j));
          expect(bufs[i][3 + r]).toBe(-7); // nothing written past the message
        });
      });

      it('ANY_SOURCE with a tag, and a source with ANY_TAG, match only what they should', async () => {
        const w = await world(3);
        // Rank 2 gets: from 0 tag 5, from 1 tag 5, from 1 tag 6.
        await Promise.all([
          w[0].send(new Float64Array([0.5]), 2, { tag: 5 }),
          w[1].send(new Float64Array([1.5]), 2, { tag: 5 }),
          w[1].send(new Float64Array([1.6]), 2, { tag: 6 }),
          fence(w, 0, 2), fence(w, 1, 2),
        ]);
        const a = new Float64Array(1);
        const s6 = await w[2].recv(a, ANY_SOURCE, { tag: 6 });
        expect([s6.source, s6.tag, a[0]]).toEqual([1, 6, 1.6]);
        const s0 = await w[2].recv(a, 0, { tag: ANY_TAG });
        expect([s0.source, s0.tag, a[0]]).toEqual([0, 5, 0.5]);
        const s1 = await w[2].recv(a, ANY_SOURCE, { tag: ANY_TAG });
        expect([s1.source, s1.tag, a[0]]).toEqual([1, 5, 1.5]);
      });

      it('the default receive is ANY_SOURCE / ANY_TAG', async () => {
        const w = await world(2);
        const buf = new Uint8Array(4);
        const [st] = await Promise.all([w[1].recv(buf), w[0].send(new Uint8Array([9, 8, 7]), 1, { tag: 77 })]);
        expect(st).toEqual({ source: 0, tag: 77, bytes: 3, count: 3 });
      });

      it('count is in the receive buffer\'s element type', async () => {
        const w = await world(2);
        const sent = new Float64Array([1, 2, 3]); // 24 bytes
        const cases: [ArrayBufferView, number][] = [[new Int32Array(10), 6], [new Uint8Array(24), 24], [new BigInt64Array(5), 3], [new Float64Array(3), 3]];
        for (const [buf, count] of cases) {
          const [st] = await Promise.all([w[1].recv(buf, 0, { tag: 1 }), w[0].send(sent, 1, { tag: 1 })]);
          expect(st).toEqual({ source: 0, tag: 1, bytes: 24, count });
          sameBytes(bytesOf(buf).subarray(0, 24), bytesOf(sent), 'reinterpreted bytes');
        }
      });
    });

    describe('MPI non-overtaking order', () => {
      const N = 200;
      /** Message k of a stream: a mix of empty, small and 100 kB sizes. */
      const sizeOf = (k: number) => (k % 10 === 9 ? 100_000 + k : k % 7 === 0 ? 0 : (k * 37) % 300);
      const MAX = 100_000 + N;

      async function receiveStream(c: Communicator, src: number, tag: number, reqs: Request<Status>[], bufs: Uint8Array[], streamSrc = src): Promise<void> {
        const statuses = await Promise.all(reqs);
        statuses.forEach((st, k) => {
          expect(st.source).toBe(streamSrc);
          expect(st.tag).toBe(tag);
          expect(st.bytes, `message ${k}`).toBe(sizeOf(k));
          sameBytes(bufs[k].subarray(0, st.bytes), pattern(sizeOf(k), messageSeed(streamSrc, c.rank, k)), `message ${k}`);
        });
      }

      const sendStream = (c: Communicator, dst: number, tag: number) =>
        Array.from({ length: N }, (_, k) => c.isend(pattern(sizeOf(k), messageSeed(c.rank, dst, k)), dst, { tag }));

      it(`${N} messages on one (source, tag), receives posted after every message arrived`, async () => {
        const w = await world(2);
        const sends = sendStream(w[0], 1, 7);
        await fence(w, 0, 1);
        const bufs = Array.from({ length: N }, () => new Uint8Array(MAX));
        await receiveStream(w[1], 0, 7, bufs.map((b) => w[1].irecv(b, 0, { tag: 7 })), bufs);
        await Promise.all(sends);
      });

      it(`${N} messages on one (source, tag), receives posted before any send`, async () => {
        const w = await world(2);
        const bufs = Array.from({ length: N }, () => new Uint8Array(MAX));
        const reqs = bufs.map((b) => w[1].irecv(b, 0, { tag: 7 }));
        const sends = sendStream(w[0], 1, 7);
        await receiveStream(w[1], 0, 7, reqs, bufs);
        await Promise.all(sends);
      });

      it(`${N} messages on one (source, tag), half the receives early, half while data streams in`, async () => {
        const w = await world(2);
        const bufs = Array.from({ length: N }, () => new Uint8Array(MAX));
        const reqs = bufs.slice(0, N / 2).map((b) => w[1].irecv(b, 0, { tag: 7 }));
        const sends = sendStream(w[0], 1, 7);
        // Post the rest as the first receives complete: some land on messages still streaming in.
        await reqs[10];
        reqs.push(...bufs.slice(N / 2).map((b) => w[1].irecv(b, 0, { tag: 7 })));
        await receiveStream(w[1], 0, 7, reqs, bufs);
        await Promise.all(sends);
      });

      it('ANY_SOURCE receives keep each sender\'s order', async () => {
        const w = await world(3);
        const sends = [...sendStream(w[1], 0, 4), ...sendStream(w[2], 0, 4)];
        const bufs = Array.from({ length: 2 * N }, () => new Uint8Array(MAX));
        const statuses = await Promise.all(bufs.map((b) => w[0].irecv(b, ANY_SOURCE, { tag: 4 })));
        const next = [0, 0, 0];
        statuses.forEach((st, i) => {
          const k = next[st.source]++;
          expect(st.bytes, `message ${k} from ${st.source}`).toBe(sizeOf(k));
          sameBytes(bufs[i].subarray(0, st.bytes), pattern(sizeOf(k), messageSeed(st.source, 0, k)), `message ${k} from ${st.source}`);
        });
        expect(next).toEqual([0, N, N]);
        await Promise.all(sends);
      });

      it('ANY_TAG receives get one sender\'s messages in send order across tags', async () => {
        const w = await world(2);
        const sends = Array.from({ length: N }, (_, k) => w[0].isend(pattern(sizeOf(k), messageSeed(0, 1, k)), 1, { tag: k % 3 }));
        await fence(w, 0, 1);
        const bufs = Array.from({ length: N }, () => new Uint8Array(MAX));
        const statuses = await Promise.all(bufs.map((b) => w[1].irecv(b, 0, { tag: ANY_TAG })));
        statuses.forEach((st, k) => {
          expect(st.tag).toBe(k % 3);
          sameBytes(bufs[k].subarray(0, st.bytes), pattern(sizeOf(k), messageSeed(0, 1, k)), `message ${k}`);
        });
        await Promise.all(sends);
      });

      it('messages with different tags may be received in any order', async () => {
        const w = await world(2);
        const a = pattern(300_000, 1);
        const b = pattern(10, 2);
        // Late: both arrived, tag B (sent second) is received first.
        await Promise.all([w[0].send(a, 1, { tag: 1 }), w[0].send(b, 1, { tag: 2 }), fence(w, 0, 1)]);
        const gotB = new Uint8Array(10);
        const gotA = new Uint8Array(300_000);
        expect((await w[1].recv(gotB, 0, { tag: 2 })).bytes).toBe(10);
        expect((await w[1].recv(gotA, 0, { tag: 1 })).bytes).toBe(300_000);
        sameBytes(gotA, a, 'A');
        sameBytes(gotB, b, 'B');
        // Early: receive B is posted (and completes) before receive A is even posted.
        gotA.fill(0);
        gotB.fill(0);
        const rb = w[1].irecv(gotB, 0, { tag: 2 });
        const sa = w[0].isend(a, 1, { tag: 1 });
        const sb = w[0].isend(b, 1, { tag: 2 });
        await rb;
        const ra = w[1].irecv(gotA, 0, { tag: 1 });
        await Promise.all([ra, sa, sb]);
        sameBytes(gotA, a, 'A');
        sameBytes(gotB, b, 'B');
      });
    });

    describe('receive buffers', () => {
      it('an irecv posted before the send gets the payload written straight into its buffer', async () => {
        const w = await world(2);
        const engine = engineOf(w[1]);
        const spy = vi.spyOn(engine, 'beginFrame');
        for (const bytes of [800, 4 << 20]) {
          spy.mockClear();
          const backing = new Uint8Array(bytes + 400).fill(0xee);
          const buf = new Float32Array(backing.buffer, 8, (bytes + 200) / 4); // bigger than the message
          const req = w[1].irecv(buf, 0, { tag: 3 });
          const data = makeArray(Float32Array, bytes / 4, 42 + bytes);
          const [st] = await Promise.all([req, w[0].send(data, 1, { tag: 3 })]);
          expect(st).toEqual({ source: 0, tag: 3, bytes, count: bytes / 4 });
          sameBytes(backing.subarray(8, 8 + bytes), bytesOf(data), 'payload');
          expect(backing.subarray(0, 8).every((x) => x === 0xee)).toBe(true);
          expect(backing.subarray(8 + bytes).every((x) => x === 0xee)).toBe(true);
          // The engine handed the transport a view of the receive buffer itself.
          const dests = spy.mock.results.map((r) => r.value as Uint8Array | null | undefined).filter((d): d is Uint8Array => d instanceof Uint8Array);
          expect(dests).toHaveLength(1);
          expect(dests[0].buffer).toBe(backing.buffer);
          expect(dests[0].byteOffset).toBe(8);
          expect(dests[0].length).toBe(bytes);
          expect(engine.heldUnexpectedBytes).toBe(0);
        }
      });

      it('a receive into a subarray view writes only inside the view', async () => {
        const w = await world(2);
        const backing = new Int32Array(64).fill(-1);
        const view = backing.subarray(16, 32);
        await w[0].send(Int32Array.from({ length: 16 }, (_, i) => i * 11), 1, { tag: 0 });
        const st = await w[1].recv(view, 0, { tag: 0 });
        expect(st.count).toBe(16);
        expect(Array.from(backing.subarray(0, 16)).every((x) => x === -1)).toBe(true);
        expect(Array.from(view)).toEqual(Array.from({ length: 16 }, (_, i) => i * 11));
        expect(Array.from(backing.subarray(32)).every((x) => x === -1)).toBe(true);
      });
    });

    describe('sendrecv', () => {
      for (const size of [1, 2, 3, 4]) {
        it(`ring of ${size}: 20 rounds, each rank passes to the right`, async () => {
          const w = await world(size);
          for (let round = 0; round < 20; round++) {
            const n = 1000 + round * 997;
            await Promise.all(w.map(async (c, r) => {
              const right = (r + 1) % size;
              const left = (r - 1 + size) % size;
              const out = makeArray(Float64Array, n, messageSeed(r, right, round));
              const got = new Float64Array(n);
              const st = await c.sendrecv(out, right, got, left, { tag: round });
              expect(st).toEqual({ source: left, tag: round, bytes: n * 8, count: n });
              sameBytes(got, pattern(n * 8, messageSeed(left, r, round)), `round ${round} at ${r}`);
            }));
          }
        });
      }

      it('separate send and receive tags', async () => {
        const w = await world(2);
        const got = [new Int32Array(1), new Int32Array(1)];
        const st = await Promise.all([
          w[0].sendrecv(new Int32Array([10]), 1, got[0], 1, { sendTag: 1, recvTag: 2 }),
          w[1].sendrecv(new Int32Array([20]), 0, got[1], 0, { sendTag: 2, recvTag: 1 }),
        ]);
        expect(st.map((s) => s.tag)).toEqual([2, 1]);
        expect([got[0][0], got[1][0]]).toEqual([20, 10]);
      });
    });

    describe('self-sends', () => {
      it('isend to self, then recv; the send buffer may be reused once isend resolves', async () => {
        const [c] = await world(1);
        const data = makeArray(Int32Array, 1000, 5);
        const copy = data.slice();
        const st = await c.isend(data, 0, { tag: 3 });
        expect(st).toEqual({ source: 0, tag: 3, bytes: 4000, count: 1000 });
        bytesOf(data).fill(0);
        const got = new Int32Array(1000);
        expect(await c.recv(got, 0, { tag: 3 })).toEqual({ source: 0, tag: 3, bytes: 4000, count: 1000 });
        sameBytes(got, copy, 'self message');
      });

      it('irecv from self posted first, in a bigger world, including 8 MiB', async () => {
        const w = await world(3);
        for (const n of [0, 1, 8 << 20]) {
          const got = new Uint8Array(n);
          const req = w[1].irecv(got, 1, { tag: 9 });
          const data = pattern(n, n + 1);
          await w[1].isend(data, 1, { tag: 9 });
          expect((await req).bytes).toBe(n);
          sameBytes(got, data, `self ${n}`);
        }
      });

      it('self-sends keep their order among themselves and match ANY_SOURCE', async () => {
        const w = await world(2);
        const sends = Array.from({ length: 50 }, (_, k) => w[1].isend(new Int32Array([k]), 1, { tag: 1 }));
        for (let k = 0; k < 50; k++) {
          const got = new Int32Array(1);
          const st = await w[1].recv(got, ANY_SOURCE, { tag: 1 });
          expect([st.source, got[0]]).toEqual([1, k]);
        }
        await Promise.all(sends);
      });
    });

    it('1000 random isend/irecv among 4 ranks, sizes 0..8 MiB, all posted at once, matched in MPI order', async () => {
      const w = await world(4);
      const rand = prng(0x7cc1);
      interface Msg { k: number; src: number; dst: number; tag: number; size: number; slack: number; sendFirst: boolean }
      const msgs: Msg[] = [];
      let total = 0;
      for (let k = 0; k < 1000; k++) {
        const u = rand();
        let size = u < 0.9 ? Math.floor(rand() * 4097) : u < 0.99 ? Math.floor(rand() * (256 << 10)) : 1 + Math.floor(rand() * (8 << 20));
        if (k === 500) size = 8 << 20; // at least one of the maximum size
        total += size;
        msgs.push({ k, src: Math.floor(rand() * 4), dst: Math.floor(rand() * 4), tag: Math.floor(rand() * 3), size, slack: Math.floor(rand() * 16), sendFirst: rand() < 0.5 });
      }
      expect(total).toBeLessThan(300 << 20);
      const recvBufs: Uint8Array[] = [];
      const reqs: Promise<void>[] = [];
      for (const m of msgs) {
        const post = () => {
          const buf = new Uint8Array(m.size + m.slack).fill(0xee);
          recvBufs[m.k] = buf;
          reqs.push(w[m.dst].irecv(buf, m.src, { tag: m.tag }).then((st) => {
            expect(st, `message ${m.k}`).toEqual({ source: m.src, tag: m.tag, bytes: m.size, count: m.size });
          }));
        };
        const send = () => reqs.push(w[m.src].isend(pattern(m.size, messageSeed(m.src, m.dst, m.k)), m.dst, { tag: m.tag }).then(() => undefined));
        if (m.sendFirst) { send(); post(); } else { post(); send(); }
      }
      await Promise.all(reqs);
      for (const m of msgs) {
        const buf = recvBufs[m.k];
        sameBytes(buf.subarray(0, m.size), pattern(m.size, messageSeed(m.src, m.dst, m.k)), `message ${m.k} ${m.src}→${m.dst} tag ${m.tag}`);
        expect(buf.subarray(m.size).every((x) => x === 0xee), `slack of message ${m.k}`).toBe(true);
      }
      for (const c of w) expect(engineOf(c).heldUnexpectedBytes).toBe(0);
    });

    describe('split and dup', () => {
      it('split orders ranks by key, then by parent rank; color null gives null', async () => {
        const w = await world(4);
        // color = rank % 2, key = -rank: each group in reverse world order.
        const subs = await Promise.all(w.map((c, r) => c.split(r % 2, -r).then((s) => worlds.track(s))));
        expect(subs.map((s) => s!.size)).toEqual([2, 2, 2, 2]);
        expect(subs.map((s) => s!.rank)).toEqual([1, 1, 0, 0]);
        expect(subs.map((s) => s!.worldRanks)).toEqual([[2, 0], [3, 1], [2, 0], [3, 1]]);
        // Equal keys: parent order. Rank 3 opts out.
        const subs2 = await Promise.all(w.map((c, r) => c.split(r === 3 ? null : 7, 0).then((s) => worlds.track(s))));
        expect(subs2[3]).toBeNull();
        expect(subs2.slice(0, 3).map((s) => [s!.rank, s!.size])).toEqual([[0, 3], [1, 3], [2, 3]]);
        // Keys that sort ranks 0 and 2 the same and 1 first.
        const subs3 = await Promise.all(w.map((c, r) => c.split(0, r === 1 ? -5 : 3).then((s) => worlds.track(s))));
        expect(subs3.map((s) => s!.rank)).toEqual([1, 0, 2, 3]);
        // The sub-communicators carry traffic among their members, in sub ranks.
        const [a, b] = [subs[0]!, subs[2]!]; // world 0 = sub rank 1, world 2 = sub rank 0
        const got = new Int32Array(1);
        const [st] = await Promise.all([a.recv(got, 0, { tag: 4 }), b.send(new Int32Array([42]), 1, { tag: 4 })]);
        expect(st.source).toBe(0);
        expect(got[0]).toBe(42);
      });

      it('a message on a sub-communicator is never received by the parent with the same tag, nor the reverse', async () => {
        const w = await world(4);
        const subs = await Promise.all(w.map((c, r) => c.split(r % 2, r).then((s) => worlds.track(s))));
        // World 0 (sub rank 0) and world 2 (sub rank 1).
        const parentGot = new Int32Array(1);
        const parentRecv = w[0].irecv(parentGot, ANY_SOURCE, { tag: 5 });
        await subs[2]!.send(new Int32Array([111]), 0, { tag: 5 });
        await fence(w, 2, 0); // the sub message has arrived at world 0
        expect(parentRecv.done).toBe(false);
        const subGot = new Int32Array(1);
        const subStatus = await subs[0]!.recv(subGot, ANY_SOURCE, { tag: 5 });
        expect([subStatus.source, subGot[0]]).toEqual([1, 111]);
        expect(parentRecv.done).toBe(false);
        await w[2].send(new Int32Array([222]), 0, { tag: 5 });
        expect((await parentRecv).source).toBe(2);
        expect(parentGot[0]).toBe(222);
        // Reverse: a parent message is not taken by a sub receive.
        const subRecv = subs[0]!.irecv(subGot, ANY_SOURCE, { tag: ANY_TAG });
        await w[2].send(new Int32Array([333]), 0, { tag: 6 });
        await fence(w, 2, 0);
        expect(subRecv.done).toBe(false);
        expect((await w[0].recv(parentGot, 2, { tag: 6 })).bytes).toBe(4);
        expect(parentGot[0]).toBe(333);
        await subs[2]!.send(new Int32Array([444]), 0, { tag: 6 });
        await subRecv;
        expect(subGot[0]).toBe(444);
      });

      it('dup has the same ranks and a separate matching space', async () => {
        const w = await world(3);
        const dups = await Promise.all(w.map((c) => c.dup().then((d) => worlds.track(d))));
        dups.forEach((d, r) => {
          expect([d.rank, d.size]).toEqual([r, 3]);
          expect(d.worldRanks).toEqual([0, 1, 2]);
          expect(d.context).not.toBe(w[r].context);
          expect(d.collectiveContext).not.toBe(w[r].collectiveContext);
        });
        const parentGot = new Uint8Array(1);
        const parentRecv = w[1].irecv(parentGot, 0, { tag: 0 });
        const dupGot = new Uint8Array(1);
        await Promise.all([dups[0].send(new Uint8Array([1]), 1, { tag: 0 }), dups[1].recv(dupGot, 0, { tag: 0 })]);
        expect(dupGot[0]).toBe(1);
        expect(parentRecv.done).toBe(false);
        await w[0].send(new Uint8Array([2]), 1, { tag: 0 });
        await parentRecv;
        expect(parentGot[0]).toBe(2);
        // A dup of the dup is separate from both.
        const dd = await Promise.all(dups.map((d) => d.dup().then((x) => worlds.track(x))));
        expect(new Set([w[0].context, dups[0].context, dd[0].context]).size).toBe(3);
        const [st] = await Promise.all([dd[2].recv(dupGot, ANY_SOURCE), dd[0].send(new Uint8Array([3]), 2, { tag: 8 })]);
        expect([st.source, st.tag, dupGot[0]]).toEqual([0, 8, 3]);
      });
    });

    describe('unexpected-message bound (flow control)', () => {
      const LIMIT = 64 << 10;
      const MSG = 32 << 10;

      it('100 × 32 KiB sent before any receive, with a 64 KiB bound: all delivered, in order, once receives are posted', async () => {
        const w = await world(2, { maxUnexpectedBytes: LIMIT });
        const engine = engineOf(w[1]);
        let peak = 0;
        const original = engine.beginFrame.bind(engine);
        vi.spyOn(engine, 'beginFrame').mockImplementation((peer, header) => {
          const dest = original(peer, header);
          peak = Math.max(peak, engine.heldUnexpectedBytes);
          return dest;
        });
        const sends = Array.from({ length: 100 }, (_, k) => w[0].isend(pattern(MSG, messageSeed(0, 1, k)), 1, { tag: 1 }));
        await until(() => engine.heldUnexpectedBytes > LIMIT, 'the receiver to hold more than the bound');
        const bufs = Array.from({ length: 100 }, () => new Uint8Array(MSG));
        const statuses = await Promise.all(bufs.map((b) => w[1].irecv(b, 0, { tag: 1 })));
        statuses.forEach((st, k) => {
          expect(st.bytes).toBe(MSG);
          sameBytes(bufs[k], pattern(MSG, messageSeed(0, 1, k)), `message ${k}`);
        });
        await Promise.all(sends);
        expect(engine.heldUnexpectedBytes).toBe(0);
        // Reading stopped near the bound: at most one message past it, plus one socket read for TCP.
        expect(peak).toBeLessThanOrEqual(LIMIT + MSG + (transport === 'tcp' ? 128 << 10 : 0));
      });

      it('one unexpected message larger than the whole bound is delivered once its receive is posted', async () => {
        const w = await world(2, { maxUnexpectedBytes: LIMIT, timeoutMs: 1_500 });
        const engine = engineOf(w[1]);
        const big = pattern(4 << 20, 77);
        const sent = w[0].isend(big, 1, { tag: 1 });
        await until(() => engine.heldUnexpectedBytes > 0, 'the message to start arriving unexpected');
        const got = new Uint8Array(4 << 20);
        const outcome = await w[1].recv(got, 0, { tag: 1 }).then((s) => s, (e: unknown) => e);
        expect(outcome, 'the receive claims the message that is streaming in').toEqual({ source: 0, tag: 1, bytes: 4 << 20, count: 4 << 20 });
        sameBytes(got, big, 'big');
        await sent;
      });

      it('receives awaited one at a time drain a flooded queue', async () => {
        const w = await world(2, { maxUnexpectedBytes: LIMIT, timeoutMs: 1_500 });
        const sends = Array.from({ length: 100 }, (_, k) => w[0].isend(pattern(MSG + k, messageSeed(0, 1, k)), 1, { tag: 2 }));
        for (let k = 0; k < 100; k++) {
          const buf = new Uint8Array(MSG + 100);
          const st = await w[1].recv(buf, 0, { tag: 2 });
          expect(st.bytes).toBe(MSG + k);
          sameBytes(buf.subarray(0, st.bytes), pattern(MSG + k, messageSeed(0, 1, k)), `message ${k}`);
        }
        await Promise.all(sends);
      });

      it('two flooding senders, receiver alternating between them with blocking receives (MPI progress)', async () => {
        // MPI-legal: nonblocking sends, receives in a fixed order. Must not deadlock whatever the bound.
        const w = await world(3, { maxUnexpectedBytes: LIMIT, timeoutMs: 1_500 });
        const sends = [1, 2].flatMap((src) => Array.from({ length: 40 }, (_, k) => w[src].isend(pattern(MSG, messageSeed(src, 0, k)), 0, { tag: 3 })));
        for (let k = 0; k < 40; k++) {
          for (const src of [1, 2]) {
            const buf = new Uint8Array(MSG);
            await w[0].recv(buf, src, { tag: 3 });
            sameBytes(buf, pattern(MSG, messageSeed(src, 0, k)), `message ${k} from ${src}`);
          }
        }
        await Promise.all(sends);
      });

      it('a receive for a message queued behind paused unexpected data still completes (MPI progress)', async () => {
        const w = await world(2, { maxUnexpectedBytes: LIMIT, timeoutMs: 1_500 });
        const engine = engineOf(w[1]);
        // Three messages on tag 1 fill the bound, then the one the receiver wants first, on tag 2.
        const bulk = Array.from({ length: 4 }, (_, k) => w[0].isend(pattern(MSG, k), 1, { tag: 1 }));
        const wanted = w[0].isend(pattern(100, 99), 1, { tag: 2 });
        await until(() => engine.heldUnexpectedBytes > LIMIT, 'the bound to be reached');
        const got = new Uint8Array(100);
        const outcome = await w[1].recv(got, 0, { tag: 2 }).then((s) => s, (e: unknown) => e);
        expect(outcome, 'recv(tag 2) must complete even though tag-1 messages are not received yet').toEqual({ source: 0, tag: 2, bytes: 100, count: 100 });
        sameBytes(got, pattern(100, 99), 'wanted');
        const bufs = Array.from({ length: 4 }, () => new Uint8Array(MSG));
        await Promise.all(bufs.map((b) => w[1].recv(b, 0, { tag: 1 })));
        bufs.forEach((b, k) => sameBytes(b, pattern(MSG, k), `bulk ${k}`));
        await Promise.all([...bulk, wanted]);
      });
    });

    it('isend requests are testable without awaiting', async () => {
      const w = await world(2);
      const got = new Uint8Array(3);
      const r = w[1].irecv(got, 0, { tag: 0 });
      expect(r.done).toBe(false);
      expect(r.test()).toBeUndefined();
      await w[0].send(new Uint8Array([1, 2, 3]), 1, { tag: 0 });
      await r.wait();
      expect(r.done).toBe(true);
      expect(r.test()).toEqual({ source: 0, tag: 0, bytes: 3, count: 3 });
    });

    it('a receive that fails does not leave its request unhandled', async () => {
      const w = await world(2);
      const r = w[1].irecv(new Uint8Array(1), 0, { tag: 0, timeoutMs: 10 });
      expect((await rejection(r)).code).toBe('TCCL_ERR_TIMEOUT');
      expect(() => r.test()).toThrow();
    });
  });
}
