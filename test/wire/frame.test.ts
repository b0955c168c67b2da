// Frame header encode/decode: pure functions, no sockets.
import { describe, expect, it } from 'vitest';
import { decodeHeader, encodeHeader, FrameKind, HEADER_BYTES, MAGIC, WIRE_VERSION, type FrameHeader } from '../../src/wire/frame.js';
import { expectProtocolError } from '../support/errors.js';

const hex = (s: string): Uint8Array => {
  const clean = s.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
};
const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');


const BIG = Number.MAX_SAFE_INTEGER;

describe('frame header', () => {
  it('is 32 bytes, magic reads "TC" on the wire, version 1', () => {
    expect(HEADER_BYTES).toBe(32);
    expect(WIRE_VERSION).toBe(1);
    const b = encodeHeader({ kind: FrameKind.Data, context: 0, source: 0, tag: 0, seq: 0, aux: 0, length: 0 });
    expect(b.length).toBe(32);
    expect(String.fromCharCode(b[0], b[1])).toBe('TC');
    expect(b[0] | (b[1] << 8)).toBe(MAGIC);
  });

  it('round-trips every field, including negative tags, u32 extremes and > 4 GiB lengths', () => {
    const cases: FrameHeader[] = [
      { kind: FrameKind.Data, context: 0, source: 0, tag: 0, seq: 0, aux: 0, length: 0 },
      { kind: FrameKind.Data, context: 2, source: 3, tag: 0x7fff_ffff, seq: 1, aux: 0, length: 1 },
      { kind: FrameKind.Hello, context: 0xffff_ffff, source: 0xffff_ffff, tag: -1, seq: 0xffff_ffff, aux: 0xffff_ffff, length: 4096 },
      { kind: FrameKind.Heartbeat, context: 17, source: 1, tag: -0x8000_0000, seq: 12345, aux: 99, length: 0xffff_ffff },
      { kind: FrameKind.Abort, context: 1, source: 2, tag: 5, seq: 6, aux: 7, length: 0x1_0000_0000 },
      { kind: FrameKind.Goodbye, context: 1, source: 2, tag: 5, seq: 6, aux: 7, length: 2 ** 40 + 12345 },
      { kind: FrameKind.Data, context: 1, source: 2, tag: 5, seq: 6, aux: 7, length: BIG },
    ];
    for (const h of cases) {
      const bytes = encodeHeader(h);
      expect(decodeHeader(bytes, 0, BIG)).toEqual(h);
    }
  });

  it('encodes into a caller buffer at an offset, and decodes from a view with a byteOffset', () => {
    const h: FrameHeader = { kind: FrameKind.Data, context: 9, source: 8, tag: 7, seq: 6, aux: 5, length: 4 };
    const backing = new Uint8Array(100).fill(0xee);
    const out = backing.subarray(10, 90); // byteOffset 10
    const ret = encodeHeader(h, out, 13);
    expect(ret).toBe(out);
    // Nothing outside [23, 55) of the backing store was touched.
    expect(backing.subarray(0, 23).every((x) => x === 0xee)).toBe(true);
    expect(backing.subarray(23 + 32).every((x) => x === 0xee)).toBe(true);
    expect(decodeHeader(out, 13, 100)).toEqual(h);
    expect(decodeHeader(backing, 23, 100)).toEqual(h);
  });

  it('decodes a hand-written byte sequence to the documented layout', () => {
    // 0 magic u16 'TC' | 2 version u8 | 3 kind u8 | 4 context u32 | 8 source u32 | 12 tag i32
    // 16 seq u32 | 20 aux u32 | 24 length low u32 | 28 length high u32   (all little-endian)
    const bytes = hex(`
      5443       01  01
      04030201
      05000000
      feffffff
      efbeadde
      07000000
      10000000
      01000000`);
    expect(bytes.length).toBe(32);
    expect(decodeHeader(bytes, 0, 2 ** 36)).toEqual({
      kind: FrameKind.Data,
      context: 0x01020304,
      source: 5,
      tag: -2,
      seq: 0xdeadbeef,
      aux: 7,
      length: 0x1_0000_0010,
    });
    // And the encoder writes exactly those bytes.
    expect(toHex(encodeHeader({ kind: FrameKind.Data, context: 0x01020304, source: 5, tag: -2, seq: 0xdeadbeef, aux: 7, length: 0x1_0000_0010 })))
      .toBe(toHex(bytes));
  });

  it('decodes a second literal: a Goodbye with no payload', () => {
    const bytes = hex('5443 01 05 00000000 03000000 00000000 00000000 00000000 00000000 00000000');
    expect(decodeHeader(bytes, 0, 0)).toEqual({ kind: FrameKind.Goodbye, context: 0, source: 3, tag: 0, seq: 0, aux: 0, length: 0 });
  });

  const good = () => encodeHeader({ kind: FrameKind.Data, context: 1, source: 2, tag: 3, seq: 4, aux: 5, length: 6 });

  it('rejects a bad magic', () => {
    for (const [i, v] of [[0, 0x00], [1, 0x00], [0, 0x43], [1, 0x54]] as const) {
      const b = good();
      b[i] = v;
      expect(expectProtocolError(() => decodeHeader(b, 0, 100)).message).toMatch(/magic/);
    }
    // 'CT' (byte-swapped magic, a big-endian writer)
    const swapped = good();
    swapped[0] = 0x43;
    swapped[1] = 0x54;
    expectProtocolError(() => decodeHeader(swapped, 0, 100));
  });

  it('rejects a bad version', () => {
    for (const v of [0, 2, 255]) {
      const b = good();
      b[2] = v;
      expect(expectProtocolError(() => decodeHeader(b, 0, 100)).message).toMatch(/version/);
    }
  });

  it('rejects unknown frame kinds', () => {
    for (const k of [0, 6, 7, 128, 255]) {
      const b = good();
      b[3] = k;
      expect(expectProtocolError(() => decodeHeader(b, 0, 100)).message).toMatch(/kind/);
    }
    for (const k of [1, 2, 3, 4, 5]) {
      const b = good();
      b[3] = k;
      expect(decodeHeader(b, 0, 100).kind).toBe(k);
    }
  });

  it('accepts a length equal to the limit and rejects one byte more', () => {
    const at = encodeHeader({ kind: FrameKind.Data, context: 0, source: 0, tag: 0, seq: 0, aux: 0, length: 1000 });
    expect(decodeHeader(at, 0, 1000).length).toBe(1000);
    const over = encodeHeader({ kind: FrameKind.Data, context: 0, source: 0, tag: 0, seq: 0, aux: 0, length: 1001 });
    expect(expectProtocolError(() => decodeHeader(over, 0, 1000)).message).toMatch(/1001/);
    const zeroLimit = encodeHeader({ kind: FrameKind.Data, context: 0, source: 0, tag: 0, seq: 0, aux: 0, length: 1 });
    expectProtocolError(() => decodeHeader(zeroLimit, 0, 0));
  });

  it('rejects lengths with high bits set, even under an unlimited maxPayload', () => {
    const withHigh = (high: number, low = 0) => {
      const b = good();
      const v = new DataView(b.buffer);
      v.setUint32(24, low, true);
      v.setUint32(28, high, true);
      return b;
    };
    // 2^53 and above cannot be represented exactly: always a protocol error.
    for (const high of [0x20_0000, 0x20_0001, 0x8000_0000, 0xffff_ffff]) {
      expectProtocolError(() => decodeHeader(withHigh(high), 0, BIG));
      expectProtocolError(() => decodeHeader(withHigh(high, 0xffff_ffff), 0, Infinity));
    }
    // 2^53 - 1 is the largest representable length.
    expect(decodeHeader(withHigh(0x1f_ffff, 0xffff_ffff), 0, BIG).length).toBe(BIG);
    // Any high bit is over a realistic limit.
    expectProtocolError(() => decodeHeader(withHigh(1), 0, 2 ** 32 - 1));
  });
});
