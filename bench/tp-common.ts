// Shared by bench/tp-*.ts: flags, medians, and the end of a rank's run.
import type { Communicator } from '../src/comm/communicator.js';

const argv = process.argv.slice(2);
export const flag = (name: string, fallback: string): string => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback);

export const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Send every rank's numbers to rank 0, then close only once every rank is done. Point-to-point
 * on purpose: since 6dfd97a a rank that leaves a collective first and closes fails the other
 * ranks' still-pending receives of that collective (TCCL_ERR_PEER_LOST), so the job must not
 * end on a collective. Rank 0 releases the others after it has heard from all of them.
 */
export async function reportAndClose(comm: Communicator, mine: Float64Array): Promise<Float64Array[] | undefined> {
  const TAG = 0x7cc1;
  let all: Float64Array[] | undefined;
  if (comm.rank === 0) {
    all = [mine];
    for (let r = 1; r < comm.size; r++) {
      const buf = new Float64Array(mine.length);
      await comm.recv(buf, r, { tag: TAG });
      all.push(buf);
    }
    for (let r = 1; r < comm.size; r++) await comm.send(new Uint8Array(1), r, { tag: TAG });
  } else {
    await comm.send(mine, 0, { tag: TAG });
    await comm.recv(new Uint8Array(1), 0, { tag: TAG });
  }
  await comm.close();
  return all;
}
