// The frame parser under random and mutated input, without sockets: whatever arrives, it
// either yields well-formed frames or throws TCCL_ERR_PROTOCOL, and it never asks for more
// memory than the cap allows (oversized lengths are refused from the header alone).
import { describe, expect, it } from 'vitest';
import { TcclError } from '../../src/errors.js';
import { encodeHeader, FrameKind, HEADER_BYTES, type FrameHeader } from '../../src/wire/frame.js';
import { FrameParser } from '../../src/wire/parser.js';

function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CAP = 4096;

describe('frame parser fuzz', () => {
  it('200,000 random and mutated frames: only well-formed frames or TCCL_ERR_PROTOCOL, never more than the cap', () => {
    const rand = prng(42);
    const int = (n: number) => Math.floor(rand() * n);
    let frames = 0;
    let protocolErrors = 0;
    let delivered = 0;
    // Checked by hand per frame (expect() is too slow for 200k calls), asserted at the end.
    const violations: string[] = [];
    let parser: FrameParser;
    const sink = {
      beginFrame(h: FrameHeader) {
        if (h.length > CAP || h.kind < FrameKind.Data || h.kind > FrameKind.Goodbye) violations.push(`began ${JSON.stringify(h)}`);
        return undefined;
      },
      endFrame(h: FrameHeader, payload: Uint8Array | null) {
        if (payload?.length !== h.length) violations.push(`payload of ${payload?.length} for ${h.length}`);
        delivered++;
      },
    };
    const fresh = () => (parser = new FrameParser(sink, { maxPayload: CAP, chunksAreOwned: int(2) === 0 }));
    fresh();
    const valid = () => {
      const length = int(64);
      const h = encodeHeader({ kind: 1 + int(5), context: int(8), source: int(8), tag: int(100), seq: int(100), aux: int(4), length });
      const out = new Uint8Array(HEADER_BYTES + length);
      out.set(h);
      for (let i = HEADER_BYTES; i < out.length; i++) out[i] = int(256);
      return out;
    };
    while (frames < 200_000) {
      let bytes: Uint8Array;
      const mode = int(6);
      if (mode === 0) bytes = Uint8Array.from({ length: 1 + int(80) }, () => int(256));
      else if (mode === 1) {
        bytes = valid();
        for (let k = 1 + int(3); k > 0; k--) bytes[int(Math.min(bytes.length, HEADER_BYTES))] ^= 1 << int(8);
      } else if (mode === 2) {
        bytes = valid();
        new DataView(bytes.buffer).setUint32(28, 1 + int(0x1f_ffff), true); // lengths of 4 GiB and beyond
      } else bytes = valid();
      frames++;
      // Split anywhere, as TCP may.
      const cut = int(bytes.length + 1);
      try {
        parser.push(bytes.subarray(0, cut));
        parser.push(bytes.subarray(cut));
      } catch (e) {
        if (!(e instanceof TcclError) || e.code !== 'TCCL_ERR_PROTOCOL') violations.push(`threw ${String(e)}`);
        protocolErrors++;
        fresh(); // the link would be closed; a new one starts clean
      }
    }
    expect(violations.slice(0, 5)).toEqual([]);
    expect(protocolErrors).toBeGreaterThan(10_000);
    expect(delivered).toBeGreaterThan(10_000);
  });
});
