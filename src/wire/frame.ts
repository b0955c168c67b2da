import { TcclError } from '../errors.js';

/**
 * Frame header, 32 bytes little-endian:
 *   0 magic u16 'TC' | 2 version u8 | 3 kind u8 | 4 context u32 | 8 source u32 | 12 tag i32
 *  16 seq u32 | 20 aux u32 | 24 payload length u64 (low u32, high u32; at most 2^53-1)
 */
export const HEADER_BYTES = 32;
export const MAGIC = 0x4354; // bytes 'T','C' when written little-endian
export const WIRE_VERSION = 1;

export enum FrameKind {
  /** Point-to-point payload for (context, source, tag). */
  Data = 1,
  /** First frame on a new link: source = sender's rank, payload = auth/hello bytes. */
  Hello = 2,
  /** Link liveness on idle links. */
  Heartbeat = 3,
  /** The sender aborted its job; payload = UTF-8 reason. */
  Abort = 4,
  /** Orderly shutdown: the sender will send nothing more on this link. */
  Goodbye = 5,
}
const MAX_KIND = FrameKind.Goodbye;

export interface FrameHeader {
  kind: FrameKind;
  context: number;
  source: number;
  tag: number;
  seq: number;
  aux: number;
  length: number;
}

export function encodeHeader(h: FrameHeader, out: Uint8Array = new Uint8Array(HEADER_BYTES), offset = 0): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset + offset, HEADER_BYTES);
  v.setUint16(0, MAGIC, true);
  v.setUint8(2, WIRE_VERSION);
  v.setUint8(3, h.kind);
  v.setUint32(4, h.context >>> 0, true);
  v.setUint32(8, h.source >>> 0, true);
  v.setInt32(12, h.tag | 0, true);
  v.setUint32(16, h.seq >>> 0, true);
  v.setUint32(20, h.aux >>> 0, true);
  v.setUint32(24, h.length % 0x1_0000_0000, true);
  v.setUint32(28, Math.floor(h.length / 0x1_0000_0000), true);
  return out;
}

/** Decode and validate one header; throws TCCL_ERR_PROTOCOL on anything malformed. */
export function decodeHeader(buf: Uint8Array, offset: number, maxPayload: number): FrameHeader {
  const v = new DataView(buf.buffer, buf.byteOffset + offset, HEADER_BYTES);
  const magic = v.getUint16(0, true);
  if (magic !== MAGIC) throw protocolError(`bad magic 0x${magic.toString(16)}`);
  const version = v.getUint8(2);
  if (version !== WIRE_VERSION) throw protocolError(`unsupported wire version ${version}`);
  const kind = v.getUint8(3);
  if (kind < 1 || kind > MAX_KIND) throw protocolError(`unknown frame kind ${kind}`);
  const high = v.getUint32(28, true);
  const length = high * 0x1_0000_0000 + v.getUint32(24, true);
  if (high >= 0x20_0000 || length > maxPayload) {
    throw protocolError(`payload length ${length} exceeds the limit of ${maxPayload} bytes`);
  }
  return {
    kind,
    context: v.getUint32(4, true),
    source: v.getUint32(8, true),
    tag: v.getInt32(12, true),
    seq: v.getUint32(16, true),
    aux: v.getUint32(20, true),
    length,
  };
}

const protocolError = (message: string) => new TcclError('TCCL_ERR_PROTOCOL', `malformed frame: ${message}`);
