import { describe, expect, it } from 'vitest';
import { bytesOf } from '../../src/dtype.js';
import { allocArray, isViewOf, viewAs } from '../../src/kernels/view.js';

describe('viewAs', () => {
  it('aliases the bytes when the absolute offset is aligned', () => {
    const backing = new Uint8Array(64);
    const bytes = backing.subarray(4); // byteOffset 4
    const v = viewAs('float32', bytes, 8, 3) as Float32Array;
    expect(v.byteOffset).toBe(12);
    expect(isViewOf(v, bytes)).toBe(true);
    v[0] = 1.5;
    expect(new Float32Array(backing.buffer, 12, 1)[0]).toBe(1.5);
    const b = viewAs('int64', new Uint8Array(32), 8, 2);
    expect(b).toBeInstanceOf(BigInt64Array);
    expect(viewAs('float16', bytes, 2, 5)).toBeInstanceOf(Uint16Array);
  });

  it('copies to an aligned array when misaligned (reads correct, writes do not alias)', () => {
    const src = Float64Array.of(1.25, -2, 3e300);
    const bytes = new Uint8Array(1 + src.byteLength);
    bytes.set(bytesOf(src), 1);
    const v = viewAs('float64', bytes, 1, 3);
    expect(Array.from(v as Float64Array)).toEqual([1.25, -2, 3e300]);
    expect(isViewOf(v, bytes)).toBe(false);
    (v as Float64Array)[0] = 9;
    expect(bytes[1]).toBe(bytesOf(src)[0]);
    // Misaligned only by the Uint8Array's own byteOffset:
    const odd = new Uint8Array(new ArrayBuffer(12), 3);
    odd.set([1, 0, 0, 0, 2, 0, 0, 0]);
    const w = viewAs('int32', odd, 0, 2);
    expect(isViewOf(w, odd)).toBe(false);
    expect(Array.from(w as Int32Array)).toEqual([1, 2]);
    expect(isViewOf(viewAs('int32', odd, 1, 2), odd)).toBe(true); // 3 + 1 is aligned
  });

  it('handles count 0 and rejects ranges outside the bytes', () => {
    expect(viewAs('float32', new Uint8Array(4), 4, 0).length).toBe(0);
    expect(() => viewAs('float32', new Uint8Array(8), 4, 2)).toThrow(/TCCL_ERR_INVALID_ARGUMENT/);
    expect(() => viewAs('float32', new Uint8Array(8), -1, 1)).toThrow(/TCCL_ERR_INVALID_ARGUMENT/);
    expect(() => viewAs('nope' as never, new Uint8Array(8), 0, 1)).toThrow(/unknown dtype/);
    expect(allocArray('bfloat16', 3)).toBeInstanceOf(Uint16Array);
  });
});
