// The SPSC ring on its own: literal bytes in and out, wrap-around, and the doorbell flags
// (who must wake whom) — no second process, no timing.
import { describe, expect, it } from 'vitest';
import { MIN_RING_BYTES, Ring, ringBytes } from '../../transports/shm/ring.js';

const CAP = MIN_RING_BYTES;
const pair = () => {
  const sab = new SharedArrayBuffer(ringBytes(CAP));
  // Producer and consumer each hold their own Ring over the same memory, as two processes do.
  return { writer: new Ring(sab, 0, CAP), reader: new Ring(sab, 0, CAP) };
};
const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** Read everything readable, following the wrap. */
function readAll(reader: Ring): Uint8Array {
  const out: number[] = [];
  for (let n = reader.readable(); n > 0; n = reader.readable()) {
    const view = reader.peek(n);
    out.push(...view);
    reader.consume(view.length);
  }
  return Uint8Array.from(out);
}

describe('shm ring', () => {
  it('rejects capacities that are not a power of two in range, and unaligned offsets', () => {
    const sab = new SharedArrayBuffer(ringBytes(CAP) * 2);
    expect(() => new Ring(sab, 0, 5000)).toThrow(/power of two/);
    expect(() => new Ring(sab, 0, 1024)).toThrow(/power of two/);
    expect(() => new Ring(sab, 8, CAP)).toThrow(/cache-line/);
  });

  it('bytes become readable only when published, and come out in order', () => {
    const { writer, reader } = pair();
    expect(writer.free()).toBe(CAP);
    writer.write(Uint8Array.of(1, 2, 3));
    expect(reader.readable()).toBe(0);
    writer.publish();
    expect(reader.readable()).toBe(3);
    expect([...readAll(reader)]).toEqual([1, 2, 3]);
    expect(writer.free()).toBe(CAP);
  });

  it('wraps around the end of the data area many times without losing or reordering a byte', () => {
    const { writer, reader } = pair();
    const got: number[] = [];
    const sent: number[] = [];
    for (let k = 0; k < 50; k++) {
      const msg = bytes(1000 + 97 * k, k);
      for (let off = 0; off < msg.length;) {
        const n = Math.min(writer.free(), msg.length - off);
        writer.write(msg.subarray(off, off + n));
        writer.publish();
        sent.push(...msg.subarray(off, off + n));
        off += n;
        // The consumer takes a part of what is there, so positions drift across the wrap.
        const view = reader.peek(Math.ceil(reader.readable() / 2));
        got.push(...view);
        reader.consume(view.length);
      }
    }
    got.push(...readAll(reader));
    expect(got.length).toBe(sent.length);
    expect(Uint8Array.from(got)).toEqual(Uint8Array.from(sent));
  });

  it('peek stops at the wrap: a frame split by the end comes out as two views', () => {
    const { writer, reader } = pair();
    writer.write(new Uint8Array(CAP - 10));
    writer.publish();
    reader.consume(reader.peek(reader.readable()).length);
    writer.write(bytes(30, 7));
    writer.publish();
    const first = reader.peek(30);
    expect(first.length).toBe(10);
    reader.consume(10);
    const second = reader.peek(reader.readable());
    expect(second.length).toBe(20);
    expect([...first, ...second]).toEqual([...bytes(30, 7)]);
  });

  it('a sleeping reader is woken by exactly one publish; an awake one by none', () => {
    const { writer, reader } = pair();
    expect(reader.sleep()).toBe(true);
    writer.write(Uint8Array.of(9));
    expect(writer.publish()).toBe(true);
    writer.write(Uint8Array.of(9));
    expect(writer.publish()).toBe(false); // the flag was taken by the first wake-up
    readAll(reader);
    reader.awake();
    writer.write(Uint8Array.of(9));
    expect(writer.publish()).toBe(false);
  });

  it('a reader cannot fall asleep on data that is already there (no lost wake-up)', () => {
    const { writer, reader } = pair();
    writer.write(Uint8Array.of(1));
    writer.publish();
    expect(reader.sleep()).toBe(false);
    expect(writer.publish()).toBe(false); // and it left no stale request for a doorbell
  });

  it('a writer waiting on a full ring is woken by the consume that frees space, once', () => {
    const { writer, reader } = pair();
    writer.write(new Uint8Array(CAP));
    writer.publish();
    expect(writer.free()).toBe(0);
    expect(writer.waitForSpace()).toBe(true);
    expect(reader.consume(100)).toBe(true);
    expect(reader.consume(100)).toBe(false);
    expect(writer.free()).toBe(200);
    expect(writer.waitForSpace()).toBe(false); // space is there: keep writing
  });
});
