// Streaming frame parser: fed bytes split at every position, no sockets.
import { describe, expect, it } from 'vitest';
import { TcclError } from '../../src/errors.js';
import { encodeHeader, FrameKind, HEADER_BYTES, type FrameHeader } from '../../src/wire/frame.js';
import { FrameParser, type FrameSink } from '../../src/wire/parser.js';
import { expectProtocolError } from '../support/errors.js';

type Policy = 'parser' | 'dest' | 'skip';

interface Seen {
  header: FrameHeader;
  /** A copy taken at endFrame time (the parser may hand up views). */
  payload: Uint8Array | null;
  /** The exact object endFrame received. */
  ref: Uint8Array | null;
}

/** Records every frame; `policy` chooses what beginFrame returns (per frame index if a function). */
class RecordingSink implements FrameSink {
  readonly begun: FrameHeader[] = [];
  readonly seen: Seen[] = [];
  readonly dests: (Uint8Array | null | undefined)[] = [];
  constructor(private readonly policy: Policy | ((i: number, h: FrameHeader) => Policy) = 'parser') {}
  beginFrame(header: FrameHeader): Uint8Array | null | undefined {
    const i = this.begun.length;
    this.begun.push(header);
    const p = typeof this.policy === 'function' ? this.policy(i, header) : this.policy;
    const dest = p === 'dest' ? new Uint8Array(header.length).fill(0xa5) : p === 'skip' ? null : undefined;
    this.dests.push(dest);
    return dest;
  }
  endFrame(header: FrameHeader, payload: Uint8Array | null): void {
    // Same header object as beginFrame (a plain check: expect() per frame is too slow here).
    if (header !== this.begun[this.seen.length]) throw new Error(`endFrame ${this.seen.length} got another header than beginFrame`);
    this.seen.push({ header, payload: payload ? payload.slice() : null, ref: payload });
  }
}

/** Deterministic payload bytes for frame `i`. */
function payloadFor(i: number, length: number): Uint8Array {
  const p = new Uint8Array(length);
  let x = (i + 1) * 0x9e3779b1;
  for (let j = 0; j < length; j++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    p[j] = x & 0xff;
  }
  return p;
}

interface Built { bytes: Uint8Array; headers: FrameHeader[]; payloads: Uint8Array[] }

function buildStream(lengths: number[], kinds: FrameKind[] = []): Built {
  const headers: FrameHeader[] = [];
  const payloads: Uint8Array[] = [];
  let total = 0;
  lengths.forEach((length, i) => {
    headers.push({ kind: kinds[i] ?? FrameKind.Data, context: 10 + i, source: i % 4, tag: i * 3 - 1, seq: i + 1, aux: i * 7, length });
    payloads.push(payloadFor(i, length));
    total += HEADER_BYTES + length;
  });
  const bytes = new Uint8Array(total);
  let off = 0;
  headers.forEach((h, i) => {
    encodeHeader(h, bytes, off);
    off += HEADER_BYTES;
    bytes.set(payloads[i], off);
    off += payloads[i].length;
  });
  return { bytes, headers, payloads };
}

function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Checks the sink saw exactly the built frames. Returns a description of the first difference, or ''. */
function diff(sink: RecordingSink, built: Built, policy: Policy = 'parser'): string {
  if (sink.seen.length !== built.headers.length) return `saw ${sink.seen.length} frames, expected ${built.headers.length}`;
  for (let i = 0; i < built.headers.length; i++) {
    const h = sink.seen[i].header;
    const e = built.headers[i];
    if (h.kind !== e.kind || h.context !== e.context || h.source !== e.source || h.tag !== e.tag || h.seq !== e.seq || h.aux !== e.aux || h.length !== e.length) {
      return `frame ${i}: header ${JSON.stringify(h)} != ${JSON.stringify(e)}`;
    }
    if (policy === 'skip') {
      if (sink.seen[i].ref !== null) return `frame ${i}: skipped payload handed up`;
    } else if (!sameBytes(sink.seen[i].payload, built.payloads[i])) {
      return `frame ${i}: payload differs`;
    }
  }
  return '';
}

const feed = (parser: FrameParser, bytes: Uint8Array, cuts: number[]) => {
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    parser.push(bytes.subarray(prev, c));
    prev = c;
  }
};


const SMALL = [0, 1, 100, 0, 1];
const ALL = [0, 1, 100, 70_000, 0, 1, 100];

describe('FrameParser', () => {
  it('parses one whole-chunk stream of 0, 1, 100 and 70000-byte frames', () => {
    for (const owned of [true, false]) {
      const built = buildStream(ALL);
      const sink = new RecordingSink();
      const parser = new FrameParser(sink, { maxPayload: 1 << 20, chunksAreOwned: owned });
      parser.push(built.bytes);
      expect(diff(sink, built)).toBe('');
      expect(parser.pendingBytes).toBe(0);
    }
  });

  for (const policy of ['parser', 'dest', 'skip'] as Policy[]) {
    for (const owned of [true, false]) {
      it(`small frames split at every single point, and at every pair of points (sink: ${policy}, owned: ${owned})`, () => {
        const built = buildStream(SMALL);
        const n = built.bytes.length;
        for (let a = 0; a <= n; a++) {
          const sink = new RecordingSink(policy);
          feed(new FrameParser(sink, { maxPayload: 1000, chunksAreOwned: owned }), built.bytes, [a]);
          const d = diff(sink, built, policy);
          if (d) expect.fail(`split at ${a}: ${d}`);
        }
        // Three chunks: every (a, b) pair of cut points.
        for (let a = 0; a <= n; a++) {
          for (let b = a; b <= n; b++) {
            const sink = new RecordingSink(policy);
            feed(new FrameParser(sink, { maxPayload: 1000, chunksAreOwned: owned }), built.bytes, [a, b]);
            const d = diff(sink, built, policy);
            if (d) expect.fail(`splits at ${a}, ${b}: ${d}`);
          }
        }
      });

      it(`all frames fed one byte at a time (sink: ${policy}, owned: ${owned})`, () => {
        const built = buildStream(ALL);
        const sink = new RecordingSink(policy);
        const parser = new FrameParser(sink, { maxPayload: 1 << 20, chunksAreOwned: owned });
        let framesBefore = 0;
        const ends: number[] = [];
        for (let i = 0; i < built.bytes.length; i++) {
          parser.push(built.bytes.subarray(i, i + 1));
          // No frame completes before its last byte: frames end exactly at frame boundaries.
          if (sink.seen.length !== framesBefore) {
            framesBefore = sink.seen.length;
            ends.push(i + 1);
          }
        }
        expect(diff(sink, built, policy)).toBe('');
        expect(parser.pendingBytes).toBe(0);
        let boundary = 0;
        const expectedEnds = ALL.map((len) => (boundary += HEADER_BYTES + len));
        expect(ends).toEqual(expectedEnds);
      });
    }
  }

  it('the 70000-byte frame split at every offset inside it and its neighbours yields identical frames', () => {
    // Every cut point in the header/payload boundary regions, and every 97th in the bulk,
    // across a stream that holds the big frame between small ones.
    const built = buildStream(ALL);
    const n = built.bytes.length;
    const bigStart = (HEADER_BYTES * 3) + 0 + 1 + 100;
    const cuts = new Set<number>();
    for (let i = 0; i <= bigStart + 2 * HEADER_BYTES; i++) cuts.add(i);
    for (let i = bigStart; i <= n; i += 97) cuts.add(i);
    for (let i = Math.max(0, n - 400); i <= n; i++) cuts.add(i);
    const bigEnd = bigStart + HEADER_BYTES + 70_000;
    for (let i = bigEnd - 64; i <= bigEnd + 64; i++) cuts.add(i);
    for (const owned of [true, false]) {
      for (const c of cuts) {
        const sink = new RecordingSink();
        feed(new FrameParser(sink, { maxPayload: 1 << 20, chunksAreOwned: owned }), built.bytes, [c]);
        const d = diff(sink, built);
        if (d) expect.fail(`split at ${c} (owned ${owned}): ${d}`);
      }
    }
  });

  it('yields identical frames for random multi-way splits of the full stream', () => {
    const built = buildStream(ALL);
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let trial = 0; trial < 300; trial++) {
      const k = 1 + Math.floor(rand() * 40);
      const cuts = Array.from({ length: k }, () => Math.floor(rand() * built.bytes.length)).sort((a, b) => a - b);
      const sink = new RecordingSink(trial % 3 === 0 ? 'dest' : 'parser');
      feed(new FrameParser(sink, { maxPayload: 1 << 20, chunksAreOwned: trial % 2 === 0 }), built.bytes, cuts);
      const d = diff(sink, built);
      if (d) expect.fail(`cuts ${cuts.join(',')}: ${d}`);
    }
  });

  it('writes the payload into exactly the destination buffer the sink returned', () => {
    const built = buildStream(ALL);
    for (const cuts of [[], [40], [HEADER_BYTES * 3 + 101 + 10, HEADER_BYTES * 3 + 101 + 40_000]]) {
      for (const owned of [true, false]) {
        const sink = new RecordingSink('dest');
        feed(new FrameParser(sink, { maxPayload: 1 << 20, chunksAreOwned: owned }), built.bytes, cuts);
        expect(diff(sink, built)).toBe('');
        sink.seen.forEach((s, i) => {
          expect(s.ref).toBe(sink.dests[i]); // same object, not a copy or a view
        });
      }
    }
  });

  it('mixes destinations, skips and parser storage frame by frame', () => {
    const built = buildStream(ALL);
    const policies: Policy[] = ['skip', 'dest', 'parser', 'skip', 'dest', 'parser', 'skip'];
    for (let c = 0; c <= built.bytes.length; c += 331) {
      const sink = new RecordingSink((i) => policies[i]);
      feed(new FrameParser(sink, { maxPayload: 1 << 20, chunksAreOwned: c % 2 === 0 }), built.bytes, [c]);
      expect(sink.seen.length).toBe(ALL.length);
      sink.seen.forEach((s, i) => {
        expect(s.header.seq).toBe(built.headers[i].seq);
        if (policies[i] === 'skip') expect(s.ref).toBeNull();
        else expect(sameBytes(s.payload, built.payloads[i])).toBe(true);
        if (policies[i] === 'dest') expect(s.ref).toBe(sink.dests[i]);
      });
    }
  });

  it('a sink returning null skips the payload, and the next frame still parses', () => {
    const built = buildStream([100, 70_000, 5]);
    const sink = new RecordingSink((i) => (i < 2 ? 'skip' : 'parser'));
    const parser = new FrameParser(sink, { maxPayload: 1 << 20, chunksAreOwned: false });
    // Feed in 1000-byte chunks so the skipped payload spans many pushes.
    for (let i = 0; i < built.bytes.length; i += 1000) parser.push(built.bytes.subarray(i, i + 1000));
    expect(sink.seen.map((s) => s.ref)).toEqual([null, null, expect.any(Uint8Array)]);
    expect(sameBytes(sink.seen[2].payload, built.payloads[2])).toBe(true);
    expect(sink.seen[2].header.seq).toBe(3);
  });

  it('a 0-byte frame with a null sink answer reports null; with undefined an empty array', () => {
    const built = buildStream([0, 0]);
    const sink = new RecordingSink((i) => (i === 0 ? 'skip' : 'parser'));
    new FrameParser(sink, { maxPayload: 10, chunksAreOwned: true }).push(built.bytes);
    expect(sink.seen[0].ref).toBeNull();
    expect(sink.seen[1].ref).toBeInstanceOf(Uint8Array);
    expect(sink.seen[1].ref!.length).toBe(0);
  });

  describe('chunksAreOwned', () => {
    it('true: a payload inside one chunk is handed up as a view of that chunk (no copy)', () => {
      const built = buildStream([100, 1, 5000]);
      const chunk = built.bytes.slice();
      const sink = new RecordingSink();
      new FrameParser(sink, { maxPayload: 1 << 20, chunksAreOwned: true }).push(chunk);
      let off = 0;
      sink.seen.forEach((s, i) => {
        off += HEADER_BYTES;
        expect(s.ref!.buffer).toBe(chunk.buffer);
        expect(s.ref!.byteOffset).toBe(chunk.byteOffset + off);
        expect(s.ref!.length).toBe(built.payloads[i].length);
        off += built.payloads[i].length;
      });
    });

    it('true: a payload spanning chunks is assembled in fresh storage', () => {
      const built = buildStream([100]);
      const a = built.bytes.slice(0, 50);
      const b = built.bytes.slice(50);
      const sink = new RecordingSink();
      const parser = new FrameParser(sink, { maxPayload: 1 << 20, chunksAreOwned: true });
      parser.push(a);
      parser.push(b);
      const ref = sink.seen[0].ref!;
      expect(ref.buffer).not.toBe(a.buffer);
      expect(ref.buffer).not.toBe(b.buffer);
      expect(sameBytes(ref, built.payloads[0])).toBe(true);
    });

    it('false: the payload never aliases the pushed chunk, so the caller may reuse it', () => {
      const built = buildStream([100, 1, 5000]);
      const chunk = built.bytes.slice();
      const sink = new RecordingSink();
      new FrameParser(sink, { maxPayload: 1 << 20, chunksAreOwned: false }).push(chunk);
      chunk.fill(0); // the caller reuses its buffer
      sink.seen.forEach((s, i) => {
        expect(s.ref!.buffer).not.toBe(chunk.buffer);
        expect(sameBytes(s.ref, built.payloads[i])).toBe(true);
      });
    });

    it('false: a header that lies entirely in a chunk is still decoded correctly after the chunk is reused', () => {
      // Two frames in one chunk, then the chunk is overwritten with garbage before the next push.
      const built = buildStream([3, 4]);
      const sink = new RecordingSink();
      const parser = new FrameParser(sink, { maxPayload: 100, chunksAreOwned: false });
      const chunk = built.bytes.slice(0, HEADER_BYTES + 3 + 10); // frame 0 whole, 10 bytes of header 1
      parser.push(chunk);
      chunk.fill(0xff);
      parser.push(built.bytes.slice(HEADER_BYTES + 3 + 10));
      expect(diff(sink, built)).toBe('');
    });
  });

  describe('protocol errors', () => {
    const badStreams: [string, (b: Uint8Array) => void][] = [
      ['bad magic', (b) => { b[0] = 0x00; }],
      ['bad version', (b) => { b[2] = 9; }],
      ['unknown kind', (b) => { b[3] = 42; }],
      ['length over the limit', (b) => { new DataView(b.buffer, b.byteOffset).setUint32(24, 1001, true); }],
      ['length with high bits set', (b) => { new DataView(b.buffer, b.byteOffset).setUint32(28, 0x8000_0000, true); }],
      ['length with a low high bit set', (b) => { new DataView(b.buffer, b.byteOffset).setUint32(28, 1, true); }],
    ];

    for (const [name, corrupt] of badStreams) {
      it(`${name}: throws TCCL_ERR_PROTOCOL before beginFrame, at any split, and every later push throws`, () => {
        const header = encodeHeader({ kind: FrameKind.Data, context: 0, source: 0, tag: 0, seq: 0, aux: 0, length: 10 });
        corrupt(header);
        for (let split = 0; split <= HEADER_BYTES; split++) {
          const sink = new RecordingSink();
          const parser = new FrameParser(sink, { maxPayload: 1000, chunksAreOwned: true });
          const first = header.slice(0, split);
          const rest = header.slice(split);
          let err: TcclError | undefined;
          if (split === HEADER_BYTES) err = expectProtocolError(() => parser.push(first));
          else {
            parser.push(first); // not enough bytes to judge yet
            err = expectProtocolError(() => parser.push(rest));
          }
          expect(sink.begun).toHaveLength(0); // nothing allocated, the sink never asked
          // Later pushes throw too, even with perfectly good bytes or nothing at all.
          const valid = buildStream([1]).bytes;
          const again = expectProtocolError(() => parser.push(valid));
          expect(again.message).toBe(err.message);
          expectProtocolError(() => parser.push(new Uint8Array(0)));
          expect(sink.seen).toHaveLength(0);
        }
      });
    }

    it('a huge length (2^40) is rejected without allocating it', () => {
      const header = encodeHeader({ kind: FrameKind.Data, context: 0, source: 0, tag: 0, seq: 0, aux: 0, length: 2 ** 40 });
      const sink = new RecordingSink();
      const parser = new FrameParser(sink, { maxPayload: 2 ** 30, chunksAreOwned: true });
      expectProtocolError(() => parser.push(header));
      expect(sink.begun).toHaveLength(0);
    });

    it('frames before the bad one are delivered, the bad one and everything after are not', () => {
      const built = buildStream([5, 6, 7]);
      const bad = built.bytes.slice();
      bad[HEADER_BYTES + 5 + HEADER_BYTES + 6 + 2] = 77; // version of frame 2
      const sink = new RecordingSink();
      const parser = new FrameParser(sink, { maxPayload: 100, chunksAreOwned: true });
      expectProtocolError(() => parser.push(bad));
      expect(sink.seen.map((s) => s.header.seq)).toEqual([1, 2]);
      expect(sink.begun).toHaveLength(2);
      expectProtocolError(() => parser.push(built.bytes));
      expect(sink.seen).toHaveLength(2);
    });

    it('a destination of the wrong size is an internal error, and the parser stays failed', () => {
      const built = buildStream([10, 10]);
      const sink: FrameSink = { beginFrame: () => new Uint8Array(5), endFrame: () => undefined };
      const parser = new FrameParser(sink, { maxPayload: 100, chunksAreOwned: true });
      expect(() => parser.push(built.bytes)).toThrow(expect.objectContaining({ code: 'TCCL_ERR_INTERNAL' }));
      expect(() => parser.push(built.bytes)).toThrow(expect.objectContaining({ code: 'TCCL_ERR_INTERNAL' }));
    });
  });

  it('pendingBytes counts what the current frame still needs', () => {
    const built = buildStream([100]);
    const parser = new FrameParser(new RecordingSink(), { maxPayload: 1000, chunksAreOwned: false });
    expect(parser.pendingBytes).toBe(0);
    parser.push(built.bytes.subarray(0, 10));
    expect(parser.pendingBytes).toBe(HEADER_BYTES - 10);
    parser.push(built.bytes.subarray(10, HEADER_BYTES + 40));
    expect(parser.pendingBytes).toBe(60);
    parser.push(built.bytes.subarray(HEADER_BYTES + 40));
    expect(parser.pendingBytes).toBe(0);
  });
});

// The socket reader asks for the unfilled rest of a payload's destination and lets the
// kernel write there (transports/tcp SocketReader): bytes must land once, in order.
describe('direct reads into the payload destination', () => {
  for (const policy of ['dest', 'parser'] as Policy[]) {
    it(`mixes pushed bytes and direct reads (${policy} storage)`, () => {
      const built = buildStream([5000, 3, 70_000, 0, 40_000]);
      const sink = new RecordingSink(policy);
      const parser = new FrameParser(sink, { maxPayload: 1 << 20, chunksAreOwned: false });
      let pos = 0;
      let directReads = 0;
      while (pos < built.bytes.length) {
        const target = parser.directTarget(1000);
        if (target) {
          // A "read" of at most 7777 bytes into the target, as recv() would do.
          const n = Math.min(target.length, 7777, built.bytes.length - pos);
          target.set(built.bytes.subarray(pos, pos + n));
          parser.pushedDirect(n);
          directReads++;
          pos += n;
        } else {
          const n = Math.min(100, built.bytes.length - pos);
          parser.push(built.bytes.slice(pos, pos + n));
          pos += n;
        }
      }
      expect(directReads).toBeGreaterThan(10);
      expect(sink.seen.map((s) => s.header)).toEqual(built.headers);
      sink.seen.forEach((s, i) => expect(s.payload).toEqual(built.payloads[i]));
      if (policy === 'dest') sink.seen.forEach((s, i) => expect(s.ref).toBe(sink.dests[i] ?? s.ref));
    });
  }

  it('offers no target between frames, for skipped payloads, or below the minimum', () => {
    const built = buildStream([4096]);
    const skip = new FrameParser(new RecordingSink('skip'), { maxPayload: 1 << 20, chunksAreOwned: false });
    expect(skip.directTarget(1)).toBeNull();
    skip.push(built.bytes.subarray(0, HEADER_BYTES));
    expect(skip.directTarget(1)).toBeNull();
    const keep = new FrameParser(new RecordingSink('dest'), { maxPayload: 1 << 20, chunksAreOwned: false });
    keep.push(built.bytes.subarray(0, HEADER_BYTES + 96));
    expect(keep.directTarget(4001)).toBeNull();
    expect(keep.directTarget(4000)?.length).toBe(4000);
    expect(() => keep.pushedDirect(4001)).toThrow(TcclError);
  });
});
