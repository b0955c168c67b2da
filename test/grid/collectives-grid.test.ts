/**
 * Conformance grid through the real Communicator (argument checks, sequencing, algorithm
 * selection and transports included): memory, tcp, webrtc, shm and thread worlds from
 * initLocalWorld × world sizes × counts × dtypes × ops, bit-exact against locally computed
 * references. Over shm and threads the default allreduce is the shared-memory one ('shm';
 * in one process its waits return to the event loop instead of blocking).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initLocalWorld } from '../../src/comm/init.js';
import type { Communicator } from '../../src/comm/communicator.js';
import type { DType } from '../../src/dtype.js';
import type { ReduceOpName } from '../../src/kernels/reduce.js';
import { DTYPES, Tally, barrierRound, movementRound, opsFor, reductionRound } from './common.js';

const COUNTS = [0, 1, 7, 1000];
const BIG = 2 ** 20 + 3;

interface Plan {
  transport: 'memory' | 'tcp' | 'webrtc' | 'shm' | 'threads';
  sizes: number[];
  /** (dtype, ops) pairs for the reduction grid. */
  reductions: [DType, ReduceOpName[]][];
  movementDtypes: DType[];
  bigSizes: number[];
}

const PLANS: Plan[] = [
  {
    transport: 'memory',
    sizes: [1, 2, 3, 4, 5, 8],
    reductions: DTYPES.map((d) => [d, opsFor(d)]),
    movementDtypes: DTYPES,
    bigSizes: [2, 5],
  },
  {
    // The full grid runs over real loopback sockets too: it is fast enough (a few seconds).
    transport: 'tcp',
    sizes: [1, 2, 3, 4, 5, 8],
    reductions: DTYPES.map((d) => [d, opsFor(d)]),
    movementDtypes: DTYPES,
    bigSizes: [2, 5],
  },
  {
    // Shared memory in one process: rings for messages, the team's slots for allreduce.
    transport: 'shm',
    sizes: [1, 2, 3, 4, 5, 8],
    reductions: DTYPES.map((d) => [d, opsFor(d)]),
    movementDtypes: DTYPES,
    bigSizes: [2, 3, 5],
  },
  {
    transport: 'threads',
    sizes: [1, 2, 3, 4, 5, 8],
    reductions: DTYPES.map((d) => [d, opsFor(d)]),
    movementDtypes: DTYPES,
    bigSizes: [4],
  },
  {
    // Data channels over loopback UDP (DTLS + SCTP): the full grid for sizes 1..5; the big
    // allreduce at n=2 and n=5 only, as SCTP moves ~60 MB/s here.
    transport: 'webrtc',
    sizes: [1, 2, 3, 4, 5],
    reductions: DTYPES.map((d) => [d, opsFor(d)]),
    movementDtypes: DTYPES,
    bigSizes: [2, 5],
  },
];

for (const plan of PLANS) {
  describe(`grid over ${plan.transport}`, () => {
    for (const size of plan.sizes) {
      describe(`n=${size}`, () => {
        let comms: Communicator[] = [];
        beforeAll(async () => {
          comms = await initLocalWorld(size, { transport: plan.transport, timeoutMs: 30_000 });
        });
        afterAll(async () => {
          await Promise.all(comms.map((c) => c.close()));
        });
        const label = `${plan.transport} n=${size}`;

        for (const [dtype, ops] of plan.reductions) {
          it(`reductions ${dtype} [${ops.join(',')}] counts ${COUNTS.join(',')}`, async () => {
            const t = new Tally();
            for (const count of COUNTS) for (const op of ops) await reductionRound(comms, dtype, op, count, t, label);
            // per (count, op): 2·n allreduce + n src check + n reduceScatter + reduce checks
            expect(t.checks).toBeGreaterThanOrEqual(COUNTS.length * ops.length * size * 4);
          });
        }

        const shared = plan.transport === 'shm' || plan.transport === 'threads';
        const algorithms = ['ring', 'rd', 'rabenseifner', ...(shared ? ['shm'] : [])];
        it(`every allreduce algorithm forced (${algorithms.join(', ')}; int32, all ops; float32 sum)`, async () => {
          const t = new Tally();
          for (const algorithm of algorithms) {
            for (const count of COUNTS) {
              for (const op of opsFor('int32')) await reductionRound(comms, 'int32', op, count, t, label, algorithm);
              await reductionRound(comms, 'float32', 'sum', count, t, label, algorithm);
            }
          }
          expect(t.checks).toBe(algorithms.length * COUNTS.length * 9 * size * 3);
        });

        it(`movement collectives ${plan.movementDtypes.join(',')} counts ${COUNTS.join(',')}`, async () => {
          const t = new Tally();
          for (const dtype of plan.movementDtypes) for (const count of COUNTS) await movementRound(comms, dtype, count, t, `${label} ${dtype} count=${count}`);
          expect(t.checks).toBeGreaterThanOrEqual(plan.movementDtypes.length * COUNTS.length * (size * 6 + 1));
        });

        it('barrier', async () => {
          const t = new Tally();
          for (let i = 0; i < 5; i++) await barrierRound(comms, t, label);
          expect(t.checks).toBe(5);
        });

        if (plan.bigSizes.includes(size)) {
          it(`float32 sum allreduce of 2^20+3 elements, every algorithm`, async () => {
            const t = new Tally();
            for (const algorithm of [undefined, ...algorithms]) {
              await reductionRound(comms, 'float32', 'sum', BIG, t, label, algorithm ?? 'auto');
            }
            expect(t.checks).toBe((1 + algorithms.length) * size * 3);
          }, 120_000);
        }
      });
    }
  });
}
