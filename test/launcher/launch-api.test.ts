// The launch() API in-process: result object and output capture without the CLI.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Job, launch } from '../../src/launcher/launcher.js';
import { fixture, isAlive } from './helpers.js';

/** Collects written text; `until` resolves on the write that makes `pred` true. */
class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void) {
    this.text += chunk.toString();
    this.emit('text');
    cb();
  }
  until(pred: (text: string) => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!pred(this.text)) return;
        this.off('text', check);
        resolve();
      };
      this.on('text', check);
      check();
    });
  }
}

describe('launch()', () => {
  it('resolves with exit code 0 and relays prefixed output', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    const r = await launch({ n: 2, script: fixture('store.mjs'), stdout, stderr });
    expect(r.exitCode).toBe(0);
    expect(r.firstFailure).toBeUndefined();
    expect(r.summary).toBeUndefined();
    expect(r.pids).toHaveLength(2);
    expect(stdout.text.split('\n').filter(Boolean).sort()).toEqual(['[0] ws-open', '[1] ws-open']);
    expect(stderr.text).toBe('');
  }, 20_000);

  it('reports the first failure; a second interrupt() kills a SIGTERM-ignoring rank at once', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    // 60 s grace: only the escalation can make this test finish in time.
    const job = new Job({ n: 3, script: fixture('worker.mjs'), scriptArgs: ['stubborn', '0'], stdout, stderr, killGraceMs: 60_000 });
    const result = job.run();
    await stdout.until((t) => t.match(/ready pid=/g)?.length === 3);
    process.kill(Number(stdout.text.match(/\[1\] ready pid=(\d+)/)![1]), 'SIGUSR2');
    await stdout.until((t) => t.includes('[0] ignoring SIGTERM'));
    job.interrupt('SIGINT');
    job.interrupt('SIGINT');
    const r = await result;
    expect(r.exitCode).toBe(1);
    expect(r.firstFailure).toEqual({ rank: 1, code: 1, signal: null });
    expect(r.stopped).toEqual([0, 2]);
    expect(r.summary).toBe('tcclrun: rank 1 failed first (exit code 1); stopped ranks 0,2');
    expect(stderr.text).toContain(r.summary);
    for (const pid of r.pids) expect(isAlive(pid)).toBe(false);
  }, 20_000);
});
