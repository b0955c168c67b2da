// The native addon (build/Release/tccl_shm.node, built by `npm install`) and the launcher's
// segment cleanup, against the real /dev/shm.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { removeJobSegments } from '../../src/launcher/shm-cleanup.js';
import { safeJobId, segmentPrefix, shmAddon } from '../../transports/shm/native.js';

const created: string[] = [];
const fresh = (tag: string) => {
  const name = `/tccl-test${randomBytes(6).toString('hex')}-${tag}`;
  created.push(name);
  return name;
};
afterEach(() => {
  for (const name of created.splice(0)) shmAddon().unlink(name);
});

describe('shm addon', () => {
  it('maps one segment twice: bytes and atomics written through one mapping are seen through the other', () => {
    const addon = shmAddon();
    const name = fresh('a');
    const a = addon.map(name, 1 << 16, true);
    const b = addon.map(name, 1 << 16, false);
    expect(a.byteLength).toBe(1 << 16);
    new Uint8Array(a).set([1, 2, 3], 100);
    expect([...new Uint8Array(b, 100, 3)]).toEqual([1, 2, 3]);
    Atomics.store(new Int32Array(a), 7, 42);
    expect(Atomics.load(new Int32Array(b), 7)).toBe(42);
    expect(new Uint8Array(b)[0]).toBe(0); // fresh segments are zero-filled
  });

  it('creating a name that exists fails (two jobs can never share a segment)', () => {
    const addon = shmAddon();
    const name = fresh('b');
    addon.map(name, 4096, true);
    expect(() => addon.map(name, 4096, true)).toThrow(/cannot create shared-memory segment .*File exists/);
  });

  it('opening a missing segment fails with a message naming it', () => {
    expect(() => shmAddon().map('/tccl-test-no-such-segment', 4096, false)).toThrow(/cannot open shared-memory segment \/tccl-test-no-such-segment/);
  });

  it('opening a segment smaller than asked fails instead of mapping past its end', () => {
    const addon = shmAddon();
    const name = fresh('c');
    addon.map(name, 4096, true);
    expect(() => addon.map(name, 1 << 20, false)).toThrow(/smaller than expected/);
  });

  it('rejects bad names and sizes', () => {
    const addon = shmAddon();
    expect(() => addon.map('no-slash', 4096, true)).toThrow(TypeError);
    expect(() => addon.map('/a/b', 4096, true)).toThrow(TypeError);
    expect(() => addon.map(`/${'x'.repeat(300)}`, 4096, true)).toThrow(TypeError);
    expect(() => addon.map('/tccl-test-size', 0, true)).toThrow(RangeError);
    expect(() => addon.map('/tccl-test-size', -5, true)).toThrow(RangeError);
  });

  it('unlink removes the name, not the memory of existing mappings; a second unlink reports false', () => {
    const addon = shmAddon();
    const name = fresh('d');
    const a = addon.map(name, 4096, true);
    expect(readdirSync('/dev/shm')).toContain(name.slice(1));
    expect(addon.unlink(name)).toBe(true);
    expect(readdirSync('/dev/shm')).not.toContain(name.slice(1));
    new Uint8Array(a)[10] = 5;
    expect(new Uint8Array(a)[10]).toBe(5);
    expect(addon.unlink(name)).toBe(false);
  });
});

describe('single-copy pull (process_vm_readv)', () => {
  it("copies bytes straight out of another process's buffer, given its pid and the address the addon reported there", async () => {
    const addonPath = new URL('../../build/Release/tccl_shm.node', import.meta.url).pathname;
    const child = spawn(process.execPath, ['-e', `
      const a = require(${JSON.stringify(addonPath)});
      const buf = new Uint8Array(1 << 20);
      for (let i = 0; i < buf.length; i++) buf[i] = (i * 13) & 255;
      console.log(process.pid, a.address(buf.subarray(1000)).toString());
      process.stdin.on('data', () => process.exit(0));
    `], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const [line] = await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next().then((r) => [r.value as string]);
      const [pid, address] = line.split(' ');
      const dest = new Uint8Array(5000);
      expect(shmAddon().pull(Number(pid), BigInt(address), dest)).toBe(5000);
      expect(dest.every((b, i) => b === (((i + 1000) * 13) & 255))).toBe(true);
      // A view's offset is honoured on our side too.
      const big = new Uint8Array(100);
      shmAddon().pull(Number(pid), BigInt(address), big.subarray(10, 20));
      expect([...big.subarray(8, 22)]).toEqual([0, 0, ...Array.from({ length: 10 }, (_, i) => ((i + 1000) * 13) & 255), 0, 0]);
    } finally {
      child.stdin.end('x');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });

  it('fails with a message naming the pid when the process is gone', async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => child.once('exit', resolve));
    expect(() => shmAddon().pull(child.pid!, 4096n, new Uint8Array(8))).toThrow(new RegExp(`cannot read the payload from pid ${child.pid}`));
  });
});

describe('segment names and the launcher cleanup', () => {
  it('job ids from other launchers become safe, distinct names', () => {
    expect(safeJobId('0123abcd')).toBe('0123abcd');
    expect(safeJobId('slurm/job 7')).toMatch(/^slurm_job_7_[0-9a-f]{16}$/);
    expect(safeJobId('slurm/job 7')).not.toBe(safeJobId('slurm_job_7'));
    expect(safeJobId('x'.repeat(200)).length).toBeLessThan(64);
  });

  it("removeJobSegments removes exactly the job's segments", () => {
    const addon = shmAddon();
    const job = `test${randomBytes(6).toString('hex')}`;
    const other = `test${randomBytes(6).toString('hex')}`;
    for (const name of [`/tccl-${job}-0`, `/tccl-${job}-1`, `/tccl-${other}-0`]) {
      addon.map(name, 4096, true);
      created.push(name);
    }
    expect(removeJobSegments(job).sort()).toEqual([`tccl-${job}-0`, `tccl-${job}-1`]);
    const left = readdirSync('/dev/shm');
    expect(left.filter((n) => n.startsWith(segmentPrefix(job)))).toEqual([]);
    expect(left).toContain(`tccl-${other}-0`);
    expect(removeJobSegments(job)).toEqual([]);
  });
});
