/**
 * Store wire protocol: proto/store.proto loaded at runtime with protobufjs, plus typed
 * encode/decode helpers shared by StoreServer and WsStore.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { RawData } from 'ws';
import { TcclError } from '../errors.js';

export type RequestOp =
  | { kind: 'hello'; jobId: string; auth: Uint8Array; nonce?: Uint8Array }
  | { kind: 'auth'; proof: Uint8Array }
  | { kind: 'set'; key: string; value: Uint8Array }
  | { kind: 'get'; key: string; timeoutMs: number }
  | { kind: 'wait'; keys: string[]; timeoutMs: number }
  | { kind: 'add'; key: string; delta: number }
  | { kind: 'delete'; key: string };

export interface StoreRequest {
  id: number;
  op: RequestOp;
}

export interface StoreResponse {
  id: number;
  ok: boolean;
  value: Uint8Array;
  counter: number;
  existed: boolean;
  errorCode: string;
  errorMessage: string;
  missingKeys: string[];
  /** hello: the server's nonce and proof when it authenticates (see src/auth.ts). */
  challenge: Uint8Array;
  proof: Uint8Array;
}

/**
 * The package root is the first ancestor holding package.json: this module runs both from
 * src/rendezvous/ (tsx, vitest) and dist/src/rendezvous/ (compiled), at different depths.
 */
function findStoreProto(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'proto', 'store.proto');
    const parent = dirname(dir);
    if (parent === dir) throw new TcclError('TCCL_ERR_INTERNAL', `no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

interface StoreTypes {
  request: protobuf.Type;
  response: protobuf.Type;
}

let storeTypes: StoreTypes | undefined;

/** Parsed on first use, so importing the store classes never touches the filesystem. */
function types(): StoreTypes {
  if (storeTypes === undefined) {
    const root = protobuf.loadSync(findStoreProto());
    storeTypes = {
      request: root.lookupType('tccl.store.Request'),
      response: root.lookupType('tccl.store.Response'),
    };
  }
  return storeTypes;
}

// longs: Number turns sint64 into plain numbers; callers keep values within safe integers.
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, defaults: true, oneofs: true };

export function encodeRequest(request: StoreRequest): Uint8Array {
  const { kind, ...fields } = request.op;
  const { request: type } = types();
  return type.encode(type.fromObject({ id: request.id, [kind]: fields })).finish();
}

/** Throws TCCL_ERR_PROTOCOL for bytes that are not a Request carrying an op. */
export function decodeRequest(bytes: Uint8Array): StoreRequest {
  const { request: type } = types();
  let decoded: Record<string, unknown>;
  try {
    decoded = type.toObject(type.decode(bytes), TO_OBJECT);
  } catch (cause) {
    throw new TcclError('TCCL_ERR_PROTOCOL', 'undecodable store request', { cause });
  }
  const kind = decoded.op as RequestOp['kind'] | undefined;
  if (kind === undefined) throw new TcclError('TCCL_ERR_PROTOCOL', 'store request carries no op');
  return { id: decoded.id as number, op: { kind, ...(decoded[kind] as object) } as RequestOp };
}

export function encodeResponse(response: Partial<StoreResponse> & { id: number; ok: boolean }): Uint8Array {
  const { response: type } = types();
  return type.encode(type.fromObject(response)).finish();
}

/** Throws TCCL_ERR_PROTOCOL for bytes that are not a Response. */
export function decodeResponse(bytes: Uint8Array): StoreResponse {
  const { response: type } = types();
  try {
    return type.toObject(type.decode(bytes), TO_OBJECT) as StoreResponse;
  } catch (cause) {
    throw new TcclError('TCCL_ERR_PROTOCOL', 'undecodable store response', { cause });
  }
}

/** A ws message as one byte array (ws hands out fragments or ArrayBuffers by binaryType). */
export function rawDataBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
