/**
 * Rabenseifner allreduce: recursive-halving reduce-scatter, then recursive-doubling allgather.
 * log2(p) rounds each way and 2(p-1)/p of the buffer sent per rank: good for medium messages.
 *
 * The p active ranks split the buffer into p blocks (first count % p one element longer; any
 * count works, empty blocks are simply not sent). Halving with mask = p/2 … 1: the rank whose
 * `mask` bit is clear keeps the lower half of its current range, so virtual rank v ends owning
 * block v. The allgather replays the rounds in reverse. Non-power-of-two n uses the same fold as
 * recursive doubling (even ranks < 2·rem hand their data to the odd rank above, get the result last).
 */
import type { DType, TypedArray } from '../dtype.js';
import { getReducer, type ReduceOp } from '../kernels/reduce.js';
import type { CollectiveP2P } from './p2p.js';
import { allocLike, bytesAt, evenBlocks, foldToPow2, pow2Floor, sendrecv, sub, unfoldedRank, unfoldFromPow2 } from './util.js';

export async function allreduceRabenseifner(p2p: CollectiveP2P, buf: TypedArray, dtype: DType, op: ReduceOp): Promise<void> {
  const n = p2p.size;
  const count = buf.length;
  if (n === 1 || count === 0) return;
  const reduce = getReducer(dtype, op);
  const p = pow2Floor(n);
  const rem = n - p;
  const { displs } = evenBlocks(count, p);
  // The fold may need a whole buffer of scratch; the halving never more than the larger half.
  let tmp: TypedArray | null = null;
  const vr = await foldToPow2(p2p, buf, reduce, () => (tmp = allocLike(buf, count)));
  if (vr < 0) return;
  const scratch: TypedArray = tmp ?? allocLike(buf, displs[p >> 1]);
  const real = (v: number) => unfoldedRank(v, rem);

  // Reduce-scatter by recursive halving; remember each round for the allgather.
  const rounds: { peer: number; keepLo: number; keepHi: number; sendLo: number; sendHi: number }[] = [];
  let lo = 0;
  let hi = p;
  for (let mask = p >> 1; mask > 0; mask >>= 1) {
    const peer = real(vr ^ mask);
    const mid = lo + mask;
    const lower = (vr & mask) === 0;
    const round = lower
      ? { peer, keepLo: lo, keepHi: mid, sendLo: mid, sendHi: hi }
      : { peer, keepLo: mid, keepHi: hi, sendLo: lo, sendHi: mid };
    const keepOff = displs[round.keepLo];
    const keepLen = displs[round.keepHi] - keepOff;
    const sendOff = displs[round.sendLo];
    const sendLen = displs[round.sendHi] - sendOff;
    await sendrecv(p2p, peer, bytesAt(buf, sendOff, sendLen), peer, bytesAt(scratch, 0, keepLen));
    reduce(sub(buf, keepOff, keepLen), sub(scratch, 0, keepLen));
    rounds.push(round);
    lo = round.keepLo;
    hi = round.keepHi;
  }

  // Allgather by recursive doubling: send what we own, receive what the partner owns.
  for (let i = rounds.length - 1; i >= 0; i--) {
    const { peer, keepLo, keepHi, sendLo, sendHi } = rounds[i];
    await sendrecv(
      p2p,
      peer, bytesAt(buf, displs[keepLo], displs[keepHi] - displs[keepLo]),
      peer, bytesAt(buf, displs[sendLo], displs[sendHi] - displs[sendLo]),
    );
  }

  await unfoldFromPow2(p2p, buf);
}
