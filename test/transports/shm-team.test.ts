// The waiting under the shared-memory collectives: the addon's futex (futexWait / futexWake /
// yieldCpu, build/Release/tccl_shm.node) on /dev/shm mappings, woken from another thread and
// another process, and ShmTeam (transports/shm/team.ts): step words that wrap at 2^31, the
// sleeper handshake between waitFor and arrive, timeouts, and non-blocking teams.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { shmAddon } from '../../transports/shm/native.js';
import { atomicsFutex, DEFAULT_SLOT_BYTES, ShmTeam, TEAM_CONTROL_BYTES, teamRegionBytes, teamSlotBytes, type Futex, type ShmTeamOptions } from '../../transports/shm/team.js';

const addonPath = new URL('../../build/Release/tccl_shm.node', import.meta.url).pathname;
const created: string[] = [];
const fresh = () => {
  const name = `/tccl-test${randomBytes(6).toString('hex')}-futex`;
  created.push(name);
  return name;
};
afterEach(() => {
  for (const name of created.splice(0)) shmAddon().unlink(name);
});

/** Resolves once `attempt` returns true, trying on every turn of the event loop (bounded). */
async function until(attempt: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const end = performance.now() + limitMs;
  while (!attempt()) {
    if (performance.now() > end) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('addon futex', () => {
  it('returns 2 at once when the word already differs, 1 on timeout (also for a 0, negative or NaN timeout)', () => {
    const i32 = new Int32Array(shmAddon().map(fresh(), 4096, true));
    i32[3] = 7;
    expect(shmAddon().futexWait(i32, 3, 6, 10_000)).toBe(2);
    expect(shmAddon().futexWait(i32, 3, 7, 5)).toBe(1);
    expect(shmAddon().futexWait(i32, 3, 7, 0)).toBe(1);
    expect(shmAddon().futexWait(i32, 3, 7, -1)).toBe(1);
    expect(shmAddon().futexWait(i32, 3, 7, Number.NaN)).toBe(1);
    // Nobody sleeps: waking wakes none.
    expect(shmAddon().futexWake(i32, 3)).toBe(0);
    // A view's offset counts: index 0 of a view at byte 12 is word 3.
    expect(shmAddon().futexWait(new Int32Array(i32.buffer, 12, 1), 0, 6, 10_000)).toBe(2);
  });

  it('works on ordinary and shared (SharedArrayBuffer) memory too', () => {
    expect(shmAddon().futexWait(new Int32Array(4), 1, 1, 10_000)).toBe(2);
    expect(shmAddon().futexWait(new Int32Array(new SharedArrayBuffer(16)), 1, 0, 1)).toBe(1);
  });

  it('rejects what is not an Int32Array word: TypeError for the array or missing arguments, RangeError for the index', () => {
    const a = shmAddon();
    const i32 = new Int32Array(8);
    const wait = a.futexWait as (...args: unknown[]) => unknown;
    const wake = a.futexWake as (...args: unknown[]) => unknown;
    for (const bad of [new Uint32Array(8), new Float32Array(8), new Int16Array(8), new DataView(new ArrayBuffer(32)), new ArrayBuffer(32), [0, 0], null, 5]) {
      expect(() => wait(bad, 0, 0, 1), String(bad)).toThrow(TypeError);
      expect(() => wake(bad, 0), String(bad)).toThrow(TypeError);
    }
    expect(() => wait(i32, 0, 0)).toThrow(TypeError);
    expect(() => wait(i32, 0, 0)).toThrow(/takes 4 arguments/);
    expect(() => wake(i32)).toThrow(/takes 2 arguments/);
    for (const index of [-1, 8, 1e9, '1', undefined, null]) {
      expect(() => wait(i32, index, 0, 1), String(index)).toThrow(RangeError);
      expect(() => wake(i32, index), String(index)).toThrow(RangeError);
    }
    expect(() => wait(i32, 8, 0, 1)).toThrow(/futex word index out of range/);
    // The last word is in range.
    expect(wait(i32, 7, 1, 1)).toBe(2);
  });

  it('yieldCpu returns undefined', () => {
    expect(shmAddon().yieldCpu()).toBeUndefined();
  });

  it('a worker thread sleeping on a word through its own mapping of the segment is woken from here', async () => {
    const name = fresh();
    const i32 = new Int32Array(shmAddon().map(name, 4096, true));
    // The worker maps the segment by name (an external ArrayBuffer cannot be transferred), so
    // the word sits at another address than ours: only a shared (not private) futex wakes it.
    const worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.addonPath);
      const i32 = new Int32Array(addon.map(workerData.name, 4096, false));
      parentPort.postMessage('mapped');
      parentPort.postMessage(addon.futexWait(i32, 5, 0, 20000));
    `, { eval: true, workerData: { addonPath, name } });
    try {
      const messages: unknown[] = [];
      worker.on('message', (m) => messages.push(m));
      await until(() => messages.length > 0, 'the worker mapped the segment');
      expect(messages[0]).toBe('mapped');
      // Wake until the kernel reports one sleeper woken: the worker was asleep on the word.
      await until(() => shmAddon().futexWake(i32, 5) === 1, 'a sleeper to wake');
      await until(() => messages.length > 1, 'the worker woke');
      expect(messages[1]).toBe(0); // woken, not timed out, and the word never changed
      expect(i32[5]).toBe(0);
    } finally {
      await worker.terminate();
    }
  });

  it('another process sleeping on the word wakes when this one changes it and wakes it', async () => {
    const name = fresh();
    const i32 = new Int32Array(shmAddon().map(name, 4096, true));
    const child = spawn(process.execPath, ['-e', `
      const addon = require(${JSON.stringify(addonPath)});
      const i32 = new Int32Array(addon.map(${JSON.stringify(name)}, 4096, false));
      console.log('mapped');
      const rc = addon.futexWait(i32, 9, 0, 20000);
      console.log(rc + ' ' + Atomics.load(i32, 9));
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    try {
      expect((await lines.next()).value).toBe('mapped');
      // Until the child sleeps a wake finds no one; then store and wake as ShmTeam.arrive does.
      await until(() => shmAddon().futexWake(i32, 9) === 1, 'the child to sleep');
      Atomics.store(i32, 9, 42);
      shmAddon().futexWake(i32, 9);
      expect((await lines.next()).value).toMatch(/^0 (0|42)$/); // woken by the first wake
    } finally {
      child.kill();
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});

// ---- ShmTeam -----------------------------------------------------------------------------

const SLOT = 256;
const STEP_WORD = 0;

/** A team of `size` over one SharedArrayBuffer, one region per rank, as rank `rank` sees it. */
function teamOver(sab: SharedArrayBuffer, size: number, rank: number, opts: Partial<ShmTeamOptions> = {}): ShmTeam {
  return new ShmTeam({
    rank, size, slotBytes: SLOT, futex: atomicsFutex, blocking: true, spinMicros: 0, yieldMicros: 0,
    regions: Array.from({ length: size }, (_, r) => ({ buffer: sab, offset: 64 + r * teamRegionBytes(SLOT) })),
    ...opts,
  });
}
const worldBuffer = (size: number) => new SharedArrayBuffer(64 + size * teamRegionBytes(SLOT));
/** Rank `r`'s control words (step word first). */
const controlOf = (sab: SharedArrayBuffer, r: number) => new Int32Array(sab, 64 + r * teamRegionBytes(SLOT), TEAM_CONTROL_BYTES / 4);

/** A Futex that records its calls; `onWait` runs in place of sleeping. */
function recordingFutex(onWait: (i32: Int32Array, index: number, expected: number, ms: number) => void = () => undefined) {
  const calls = { wait: [] as { index: number; expected: number; ms: number; sleepers: number }[], wake: [] as number[], yields: 0 };
  const futex: Futex = {
    wait: (i32, index, expected, ms) => {
      calls.wait.push({ index, expected, ms, sleepers: i32.reduce((s, v, k) => (k === index ? s : s + v), 0) });
      onWait(i32, index, expected, ms);
    },
    wake: (_i32, index) => { calls.wake.push(index); },
    yieldCpu: () => { calls.yields++; },
  };
  return { futex, calls };
}

describe('ShmTeam', () => {
  it('slot size from TCCL_SHM_SLOT_BYTES: whole cache lines, at least 4096 B, else the 1 MiB default', () => {
    const saved = process.env.TCCL_SHM_SLOT_BYTES;
    const withEnv = (v: string | undefined) => {
      if (v === undefined) delete process.env.TCCL_SHM_SLOT_BYTES;
      else process.env.TCCL_SHM_SLOT_BYTES = v;
      return teamSlotBytes();
    };
    try {
      expect(DEFAULT_SLOT_BYTES).toBe(1 << 20);
      expect(withEnv(undefined)).toBe(DEFAULT_SLOT_BYTES);
      expect(withEnv('4096')).toBe(4096);
      expect(withEnv('262144')).toBe(262144);
      expect(withEnv('4100')).toBe(4096); // rounded down to a cache line
      expect(withEnv('')).toBe(DEFAULT_SLOT_BYTES);
      for (const bad of ['abc', '-4096', '100', 'Infinity']) {
        expect(() => withEnv(bad), bad).toThrow(expect.objectContaining({ code: 'TCCL_ERR_INVALID_ARGUMENT', message: expect.stringContaining(`TCCL_SHM_SLOT_BYTES='${bad}'`) }));
      }
    } finally {
      withEnv(saved);
    }
    expect(teamRegionBytes(4096)).toBe(TEAM_CONTROL_BYTES + 2 * 4096);
  });

  it('rejects a region count, slot size or offset that does not fit', () => {
    const sab = worldBuffer(2);
    expect(() => teamOver(sab, 2, 0, { regions: [{ buffer: sab, offset: 64 }] })).toThrow(/a team of 2 needs 2 regions, got 1/);
    expect(() => teamOver(sab, 2, 0, { slotBytes: 100 })).toThrow(/slot size 100 is not a multiple of 64/);
    expect(() => teamOver(sab, 2, 0, { regions: [{ buffer: sab, offset: 64 }, { buffer: sab, offset: 96 }] })).toThrow(/offset 96 is not cache-line aligned/);
  });

  it("slots: each rank's two halves, the same memory seen from every rank, after the control block", () => {
    const sab = worldBuffer(3);
    const teams = [0, 1, 2].map((r) => teamOver(sab, 3, r));
    for (let r = 0; r < 3; r++) {
      for (const half of [0, 1]) {
        const s = teams[0].slot(r, half);
        expect(s.byteLength).toBe(SLOT);
        expect(s.byteOffset).toBe(64 + r * teamRegionBytes(SLOT) + TEAM_CONTROL_BYTES + half * SLOT);
        s.fill(10 * r + half + 1);
      }
    }
    for (const t of teams) for (let r = 0; r < 3; r++) for (const half of [0, 1]) expect(t.slot(r, half).every((b) => b === 10 * r + half + 1)).toBe(true);
    // Slot data never touches a step word.
    expect(controlOf(sab, 1)[STEP_WORD]).toBe(0);
  });

  it('reached compares steps modulo 2^32: arrival is seen across the wrap from 2^31-1 to -2^31', () => {
    const sab = worldBuffer(2);
    const [a, b] = [teamOver(sab, 2, 0), teamOver(sab, 2, 1)];
    expect(b.reached(0, 0)).toBe(true); // nothing arrived yet: step 0
    expect(b.reached(0, 1)).toBe(false);
    const max = 2 ** 31 - 1;
    const wrapped = (max + 1) | 0; // what SharedState's (step + 1) | 0 gives next
    expect(wrapped).toBe(-(2 ** 31));
    a.arrive(max - 1);
    expect([b.reached(0, max - 2), b.reached(0, max - 1), b.reached(0, max), b.reached(0, wrapped)]).toEqual([true, true, false, false]);
    a.arrive(max);
    expect([b.reached(0, max - 1), b.reached(0, max), b.reached(0, wrapped)]).toEqual([true, true, false]);
    a.arrive(wrapped);
    expect([b.reached(0, max), b.reached(0, wrapped), b.reached(0, wrapped + 1)]).toEqual([true, true, false]);
    expect(controlOf(sab, 0)[STEP_WORD]).toBe(wrapped);
    a.arrive(wrapped + 1);
    expect(b.reached(0, wrapped + 1)).toBe(true);
    // And through zero.
    a.arrive(-1);
    expect([b.reached(0, -2), b.reached(0, -1), b.reached(0, 0)]).toEqual([true, true, false]);
    a.arrive(0);
    expect([b.reached(0, -1), b.reached(0, 0), b.reached(0, 1)]).toEqual([true, true, false]);
    // Only the owner's word moves.
    expect(controlOf(sab, 1)[STEP_WORD]).toBe(0);
  });

  it('waitFor is true at once when the peer already arrived, touching no futex', () => {
    const sab = worldBuffer(2);
    const { futex, calls } = recordingFutex();
    const b = teamOver(sab, 2, 1, { futex, spinMicros: 1000, yieldMicros: 1000 });
    teamOver(sab, 2, 0).arrive(5);
    expect(b.waitFor(0, 5, 1000, true)).toBe(true);
    expect(b.waitFor(0, 4, 1000, false)).toBe(true);
    expect(calls).toEqual({ wait: [], wake: [], yields: 0 });
  });

  it('a non-blocking team (ranks sharing one thread) answers false at once instead of waiting', () => {
    const sab = worldBuffer(2);
    const { futex, calls } = recordingFutex();
    const b = teamOver(sab, 2, 1, { futex, blocking: false, spinMicros: 1000, yieldMicros: 1000 });
    expect(b.waitFor(0, 1, 60_000, true)).toBe(false);
    expect(calls).toEqual({ wait: [], wake: [], yields: 0 });
    teamOver(sab, 2, 0).arrive(1);
    expect(b.waitFor(0, 1, 60_000, true)).toBe(true);
  });

  it('a blocking waitFor for a peer that never arrives returns false after its time, leaving no sleeper counted', () => {
    const sab = worldBuffer(2);
    const b = teamOver(sab, 2, 1); // Atomics.wait on this thread
    const before = [...controlOf(sab, 0)];
    expect(b.waitFor(0, 1, 5, true)).toBe(false);
    expect(b.waitFor(0, 1, 5, false)).toBe(false);
    expect([...controlOf(sab, 0)]).toEqual(before);
  });

  it('eager waits yield the core first (where the futex can); later waits go straight to sleep', () => {
    const sab = worldBuffer(2);
    const eager = recordingFutex();
    expect(teamOver(sab, 2, 1, { futex: eager.futex, yieldMicros: 1000 }).waitFor(0, 1, 50, true)).toBe(false);
    expect(eager.calls.yields).toBeGreaterThan(0);
    const later = recordingFutex();
    expect(teamOver(sab, 2, 1, { futex: later.futex, yieldMicros: 1000 }).waitFor(0, 1, 50, false)).toBe(false);
    expect(later.calls.yields).toBe(0);
    expect(later.calls.wait.length).toBeGreaterThan(0);
    // No yielding at all when the futex cannot (atomicsFutex has no yieldCpu): nothing to count, but it must not throw.
    expect(teamOver(sab, 2, 1, { yieldMicros: 1000 }).waitFor(0, 1, 2, true)).toBe(false);
  });

  it('a peer that arrives only once this rank yields shares its core: later waits yield at once, and every 64th polls briefly to check', () => {
    const sab = worldBuffer(2);
    const peer = controlOf(sab, 0);
    // Yielding lets the "peer" run: it arrives at the step awaited after `after` yields.
    let awaited = 0;
    let after = 1;
    let yieldsThisWait = 0;
    const futex: Futex = {
      wait: () => undefined,
      wake: () => undefined,
      yieldCpu: () => { if (++yieldsThisWait >= after) Atomics.store(peer, STEP_WORD, awaited); },
    };
    const b = teamOver(sab, 2, 1, { futex, spinMicros: 200, yieldMicros: 100_000 });
    const looks = vi.spyOn(b, 'reached');
    /** Wait for the next step; how many looks at the peer's word it took before the first yield. */
    const wait = (): number => {
      awaited++;
      yieldsThisWait = 0;
      looks.mockClear();
      let beforeYield = -1;
      const yieldCpu = futex.yieldCpu!;
      futex.yieldCpu = () => { if (beforeYield < 0) beforeYield = looks.mock.calls.length; yieldCpu(); };
      try {
        expect(b.waitFor(0, awaited, 10_000, true)).toBe(true);
      } finally {
        futex.yieldCpu = yieldCpu;
      }
      return beforeYield;
    };
    expect(wait()).toBeGreaterThan(64); // polled its budget out first
    for (let i = 1; i < 64; i++) expect(wait(), `wait ${i}`).toBe(2); // the first look, then one in the yield loop
    expect(wait()).toBeGreaterThan(64); // the 64th: a short poll, which found nothing
    expect(wait()).toBe(2); // so it still yields at once
    // A peer on another core that is merely late (several yields) does not turn polling off.
    const c = teamOver(sab, 2, 1, { futex, spinMicros: 200, yieldMicros: 100_000 });
    const cLooks = vi.spyOn(c, 'reached');
    after = 5;
    for (let i = 0; i < 3; i++) {
      awaited++;
      yieldsThisWait = 0;
      cLooks.mockClear();
      expect(c.waitFor(0, awaited, 10_000, true)).toBe(true);
      expect(cLooks.mock.calls.length, `late peer, wait ${i}`).toBeGreaterThan(64);
    }
  });

  it("sleeper handshake: waitFor counts itself on the peer's control block before sleeping on its step word; the peer's arrive then wakes it", () => {
    const sab = worldBuffer(2);
    // Rank 0's futex records whether arrive wakes; rank 1 sleeps through a futex that lets rank 0 arrive instead.
    const wakes: number[] = [];
    const a2 = teamOver(sab, 2, 0, { futex: { wait: () => undefined, wake: (_i32, index) => { wakes.push(index); } } });
    a2.arrive(3);
    expect(wakes).toEqual([]); // nobody asleep: no wake-up call
    const { futex, calls } = recordingFutex((i32, index, expected) => {
      expect(i32.buffer).toBe(sab);
      expect(i32.byteOffset).toBe(64); // rank 0's control block
      expect(Atomics.load(i32, index)).toBe(expected);
      a2.arrive(4); // the peer arrives while we "sleep"
    });
    const b = teamOver(sab, 2, 1, { futex });
    expect(b.waitFor(0, 4, 10_000, false)).toBe(true);
    expect(calls.wait).toHaveLength(1);
    expect(calls.wait[0]).toMatchObject({ index: STEP_WORD, expected: 3, sleepers: 1 });
    expect(calls.wait[0].ms).toBeGreaterThan(0);
    expect(calls.wait[0].ms).toBeLessThanOrEqual(10_000);
    expect(wakes).toEqual([STEP_WORD]); // arrive saw the sleeper and woke the step word
    // The sleeper count is back to zero: the next arrive makes no system call.
    a2.arrive(5);
    expect(wakes).toEqual([STEP_WORD]);
    expect([...controlOf(sab, 0)].filter((v, k) => k !== STEP_WORD)).toEqual(Array(TEAM_CONTROL_BYTES / 4 - 1).fill(0));
  });

  it("a blocking waitFor on this thread is woken by a worker thread's arrive (real Atomics.wait / notify)", async () => {
    const sab = worldBuffer(2);
    // The worker runs the real team.ts (through tsx) as rank 0; it arrives once it sees us asleep.
    const tsxPkg = createRequire(import.meta.url).resolve('tsx/package.json');
    const tsxApi = pathToFileURL(path.join(path.dirname(tsxPkg), 'dist/esm/api/index.mjs')).href;
    const teamUrl = new URL('../../transports/shm/team.ts', import.meta.url).href;
    const worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(teamUrl)}); }).then(({ ShmTeam, atomicsFutex, teamRegionBytes }) => {
        const { sab, slot } = workerData;
        const team = new ShmTeam({ rank: 0, size: 2, slotBytes: slot, futex: atomicsFutex, blocking: true, spinMicros: 0, yieldMicros: 0,
          regions: [0, 1].map((r) => ({ buffer: sab, offset: 64 + r * teamRegionBytes(slot) })) });
        parentPort.postMessage('ready');
        const ctl = new Int32Array(sab, 64, 32);
        // Rank 1 (the main thread) counts itself as a sleeper on our control block, then sleeps.
        const end = Date.now() + 20000;
        const asleep = () => { for (let k = 1; k < 32; k++) if (Atomics.load(ctl, k) !== 0) return true; return false; };
        while (!asleep() && Date.now() < end);
        team.arrive(1);
        parentPort.postMessage('arrived');
      });
    `, { eval: true, workerData: { sab, slot: SLOT } });
    try {
      const messages: string[] = [];
      worker.on('message', (m: string) => messages.push(m));
      await until(() => messages.includes('ready'), 'the worker to load team.ts');
      const results: string[] = [];
      const recording: Futex = {
        wait: (i32, index, expected, ms) => { results.push(Atomics.wait(i32, index, expected, ms)); },
        wake: (i32, index) => { Atomics.notify(i32, index); },
      };
      const me = teamOver(sab, 2, 1, { futex: recording });
      expect(me.waitFor(0, 1, 20_000, true)).toBe(true);
      // Woken ('ok'), or the step landed between our count and our sleep ('not-equal'); never a timeout.
      expect(results.length).toBeGreaterThan(0);
      expect(results.every((r) => r === 'ok' || r === 'not-equal'), results.join()).toBe(true);
      await until(() => messages.includes('arrived'), 'the worker to finish');
    } finally {
      await worker.terminate();
    }
  });
});
