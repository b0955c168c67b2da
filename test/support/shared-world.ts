/** In-process worlds whose collectives go through shared memory, with a count of their steps. */
import { expect, vi } from 'vitest';
import { initLocalWorld, type Communicator } from '../../src/index.js';
import type { SharedTeam } from '../../src/transport.js';
import { engineOf } from '../transports/helpers.js';

export interface SharedWorld {
  label: string;
  comms: Communicator[];
  teams: SharedTeam[];
  slotBytes: number;
  /** team.arrive calls (shared-memory steps) per rank since the last reset. */
  steps(): number[];
  resetSteps(): void;
}

/** An n-rank shm or thread world with slots of `slotBytes` (TCCL_SHM_SLOT_BYTES, restored after). */
export async function openSharedWorld(transport: 'shm' | 'threads', n: number, slotBytes: number): Promise<SharedWorld> {
  const saved = process.env.TCCL_SHM_SLOT_BYTES;
  process.env.TCCL_SHM_SLOT_BYTES = String(slotBytes);
  let comms: Communicator[];
  try {
    comms = await initLocalWorld(n, { transport, timeoutMs: 60_000 });
  } finally {
    if (saved === undefined) delete process.env.TCCL_SHM_SLOT_BYTES;
    else process.env.TCCL_SHM_SLOT_BYTES = saved;
  }
  const teams = comms.map((c) => engineOf(c).transport.sharedTeam?.() ?? null);
  for (const [r, t] of teams.entries()) {
    expect(t, `${transport} rank ${r} has a team`).not.toBeNull();
    expect(t!.slotBytes).toBe(slotBytes);
    expect(t!.rank).toBe(r);
    expect(t!.size).toBe(n);
    // Every rank of an in-process world shares this thread: its waits must not block.
    expect(t!.blocking).toBe(false);
  }
  const spies = (teams as SharedTeam[]).map((t) => vi.spyOn(t, 'arrive'));
  return {
    label: `${transport} n=${n} slot=${slotBytes}`,
    comms,
    teams: teams as SharedTeam[],
    slotBytes,
    steps: () => spies.map((s) => s.mock.calls.length),
    resetSteps: () => spies.forEach((s) => s.mockClear()),
  };
}
