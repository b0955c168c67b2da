import { describe, expect, it } from 'vitest';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type RequestOp } from '../../src/rendezvous/messages.js';
import { rejection } from './store-behaviour.js';

describe('store messages', () => {
  it('round-trips every request op', () => {
    const ops: RequestOp[] = [
      { kind: 'hello', jobId: 'job', auth: new Uint8Array([7, 8]) },
      { kind: 'set', key: 'k', value: new Uint8Array([0, 1, 2]) },
      { kind: 'get', key: 'k', timeoutMs: 1234 },
      { kind: 'wait', keys: ['a', 'b'], timeoutMs: 0 },
      { kind: 'add', key: 'n', delta: -(2 ** 40) },
      { kind: 'delete', key: 'k' },
    ];
    for (const [id, op] of ops.entries()) {
      const decoded = decodeRequest(encodeRequest({ id, op }));
      expect(decoded.id).toBe(id);
      expect({ ...decoded.op }).toEqual(expect.objectContaining({ kind: op.kind }));
      for (const [field, value] of Object.entries(op)) {
        const got = (decoded.op as Record<string, unknown>)[field];
        expect(value instanceof Uint8Array ? new Uint8Array(got as Uint8Array) : got).toEqual(value);
      }
    }
  });

  it('round-trips responses, with defaults for absent fields', () => {
    const failure = decodeResponse(
      encodeResponse({ id: 9, ok: false, errorCode: 'TCCL_ERR_TIMEOUT', errorMessage: 'late', missingKeys: ['x', 'y'] }),
    );
    expect(failure).toMatchObject({ id: 9, ok: false, errorCode: 'TCCL_ERR_TIMEOUT', missingKeys: ['x', 'y'] });
    expect(failure).toMatchObject({ counter: 0, existed: false });
    expect(failure.value.byteLength).toBe(0);
    const counter = decodeResponse(encodeResponse({ id: 2 ** 32 - 1, ok: true, counter: -(2 ** 53 - 1) }));
    expect(counter).toMatchObject({ id: 2 ** 32 - 1, ok: true, counter: -(2 ** 53 - 1), errorCode: '' });
  });

  it('rejects undecodable bytes and requests without an op as TCCL_ERR_PROTOCOL', async () => {
    expect((await rejection((async () => decodeRequest(new Uint8Array([0xff, 0x01])))())).code).toBe('TCCL_ERR_PROTOCOL');
    expect((await rejection((async () => decodeRequest(new Uint8Array()))())).code).toBe('TCCL_ERR_PROTOCOL');
    expect((await rejection((async () => decodeResponse(new Uint8Array([0x0a, 0x05])))())).code).toBe('TCCL_ERR_PROTOCOL');
  });
});
