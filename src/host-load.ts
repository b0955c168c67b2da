import os from 'node:os';

let cpus: number | undefined;

/**
 * CPUs this process may use, as first seen: a rank bound to one CPU (tcclrun --bind-to core)
 * binds only its main thread, after init read this, so the count stays the host's.
 */
export function hostCpuCount(): number {
  return (cpus ??= os.availableParallelism());
}

let checkedAt = -Infinity;
let idle = true;

/**
 * Polling only pays when a core is free for the peer: with more runnable threads than cores
 * (other jobs, oversubscribed ranks) the peer we wait for is often not running while we poll
 * (measured: 8 B allreduce 250 us polling vs 60 us sleeping at load 6 on 2 cores). Checked
 * against the 1-minute load average (which counts our own polling ranks) once a second.
 */
export function hostHasIdleCores(): boolean {
  const now = performance.now();
  if (now - checkedAt > 1000) {
    checkedAt = now;
    idle = os.loadavg()[0] <= hostCpuCount() + 0.5;
  }
  return idle;
}
