import { expect } from 'vitest';
import { TcclError } from '../../src/errors.js';

/** Runs `fn`, expects it to throw a TcclError with code TCCL_ERR_PROTOCOL, and returns that error. */
export function expectProtocolError(fn: () => unknown): TcclError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TcclError);
    expect((e as TcclError).code).toBe('TCCL_ERR_PROTOCOL');
    return e as TcclError;
  }
  throw new Error('expected TCCL_ERR_PROTOCOL, nothing was thrown');
}
