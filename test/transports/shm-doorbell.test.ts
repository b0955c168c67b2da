// Doorbell sockets are abstract unix sockets (no file, so no permission bits): a hello must
// quote the token stored in the 0600 segment it connects to. Strangers are cut off and the
// job goes on.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { initLocalWorld, type Communicator } from '../../src/index.js';
import { engineOf } from './helpers.js';

let open: Communicator[] = [];
afterEach(async () => {
  await Promise.allSettled(open.map((c) => c.close()));
  open = [];
});

/** Connect to rank `rank`'s doorbell, send `line`, resolve when the other side closes it. */
const strangerHello = (job: string, rank: number, line: string) => new Promise<void>((resolve, reject) => {
  const s = net.connect(`\0tccl-${job}-${rank}`, () => s.write(line));
  s.on('error', reject);
  s.on('close', () => resolve());
  s.resume();
});

describe('shm doorbell', () => {
  it('hellos with a wrong token, another job, or for a rank already linked are refused; the links keep working', async () => {
    const w = (open = await initLocalWorld(2, { transport: 'shm', timeoutMs: 10_000 }));
    const { job, token } = engineOf(w[0]).transport as unknown as { job: string; token: Buffer };
    await strangerHello(job, 0, `${job} 1 0 ${'00'.repeat(16)}\n`);
    await strangerHello(job, 0, `other-job 1 0 ${'00'.repeat(16)}\n`);
    // Even the right token does not let a second connection take over rank 1's doorbell.
    await strangerHello(job, 0, `${job} 1 0 ${token.toString('hex')}\n`);
    await strangerHello(job, 1, 'no newline at all, just a long line '.repeat(10));
    const got = new Float64Array(3);
    await Promise.all([w[1].send(Float64Array.of(1, 2, 3), 0, { tag: 4 }), w[0].recv(got, 1, { tag: 4 })]);
    expect([...got]).toEqual([1, 2, 3]);
  });
});
