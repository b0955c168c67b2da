// Communicators made by split() and dup() get shared memory of their own across real process
// ranks (tcclrun --transport shm): 'shm' is accepted on them, every collective gives exact
// results, world and sub-communicator collectives run in flight at once, and no segment name
// of theirs stays in /dev/shm. Thread ranks (--threads) keep messages for them. A member whose
// segment cannot be created fails split for every member of its communicator, at once.
// Fixture: fixtures/shm-split.ts. Needs `npm run build` (the fixture imports 'tccl').
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = 'test/multiprocess/fixtures/shm-split.ts';

interface Run { code: number | null; stdout: string; stderr: string }
const run = (n: number, where: 'shm' | 'threads', mode = '') =>
  new Promise<Run>((resolve) => {
    const args = ['bin/tcclrun.js', '--timeout', '60', '-n', String(n), ...(where === 'threads' ? ['--threads'] : ['--transport', 'shm']), FIXTURE, where === 'threads' ? 'threads' : mode];
    execFile(process.execPath, args, { cwd: root, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });

/** `KEY rank=R rest` lines: rest by rank. */
function lines(r: Run, key: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of r.stdout.matchAll(new RegExp(`^(?:\\[\\d+\\] )?${key} rank=(\\d+) ?(.*)$`, 'gm'))) out.set(Number(m[1]), m[2]);
  return out;
}

const ranks = (n: number) => Array.from({ length: n }, (_, r) => r);
const jobOf = (r: Run) => /JOB (\w+)/.exec(r.stdout)?.[1];
const jobSegments = (jobId: string) => readdirSync('/dev/shm').filter((name) => name.startsWith(`tccl-${jobId}-`));

/** What each rank's COMM lines must say: the split by parity (key -rank), its dup, the world's dup. */
function expectedComms(n: number, me: number, shm: string): string[] {
  const half = ranks(n).filter((r) => r % 2 === me % 2).reverse();
  return [
    `name=half ranks=${half.indexOf(me)},${half.length} members=${half.join(',')} shm=${shm}`,
    `name=halfDup ranks=${half.indexOf(me)},${half.length} members=${half.join(',')} shm=${shm}`,
    `name=worldDup ranks=${me},${n} members=${ranks(n).join(',')} shm=${shm}`,
  ];
}

function expectRun(r: Run, n: number, shm: string, checks: number): void {
  expect(r.code, r.stderr + r.stdout).toBe(0);
  const comms = new Map<number, string[]>();
  for (const m of r.stdout.matchAll(/^(?:\[\d+\] )?COMM rank=(\d+) (.*)$/gm)) comms.set(Number(m[1]), [...(comms.get(Number(m[1])) ?? []), m[2]]);
  expect([...comms.keys()].sort()).toEqual(ranks(n));
  for (const [me, got] of comms) expect(got).toEqual(expectedComms(n, me, shm));
  const done = lines(r, 'DONE');
  expect([...done.keys()].sort()).toEqual(ranks(n));
  for (const d of done.values()) expect(d).toBe(`ok=${checks} wrong=0`);
  expect(r.stdout).not.toContain('WRONG');
  const left = lines(r, 'LEFT');
  expect([...left.keys()].sort()).toEqual(ranks(n));
  for (const l of left.values()) expect(l).toBe('names=');
}

describe('split/dup communicators over process shm', () => {
  for (const n of [4, 5]) {
    it(`-n ${n}: each has a team ('shm' accepted), exact collectives, interleaved with the world's; nothing left in /dev/shm`, async () => {
      const r = await run(n, 'shm');
      expectRun(r, n, 'accepted', 33);
      const job = jobOf(r);
      expect(job, r.stdout).toBeTruthy();
      expect(jobSegments(job!)).toEqual([]);
    }, 60_000);
  }

  it('--threads -n 4: split and dup work over messages; \'shm\' is refused on them', async () => {
    const r = await run(4, 'threads');
    expectRun(r, 4, 'refused:TCCL_ERR_INVALID_ARGUMENT', 30);
  }, 60_000);

  it('a member whose segment cannot be created: split fails on every member of that communicator, naming op split and the member; the other half gets its team', async () => {
    const r = await run(4, 'shm', 'collide');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const split = lines(r, 'SPLIT');
    expect([...split.keys()].sort()).toEqual(ranks(4));
    expect(split.get(0)).toBe('code=none shm=accepted');
    expect(split.get(2)).toBe('code=none shm=accepted');
    const job = jobOf(r)!;
    const name = `/tccl-${job}-t`;
    expect(split.get(1)).toMatch(/^code=TCCL_ERR_INTERNAL op=split peer=null /);
    expect(split.get(1)).toContain(`split: cannot set up shared memory for the new communicator of ranks [1,3]: cannot create shared memory ${name}`);
    expect(split.get(1)).toContain('File exists');
    expect(split.get(1)).toContain('(rank 1, op split)');
    expect(split.get(3)).toMatch(/^code=TCCL_ERR_INTERNAL op=split peer=1 /);
    expect(split.get(3)).toContain('rank 1 failed to set up its shared memory: cannot create shared memory');
    expect(split.get(3)).toContain('(rank 3, peer 1, op split)');
    for (const l of lines(r, 'LEFT').values()) expect(l).toBe('names=');
    expect(jobSegments(job)).toEqual([]);
  }, 60_000);
});
