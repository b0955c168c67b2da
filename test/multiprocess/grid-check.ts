import { expect } from 'vitest';

/** The collectives-grid fixture's verdict: a clean exit, no stderr, and `GRID ok=N wrong=0` with enough checks. */
export function expectGrid(r: { code: number | null; stdout: string; stderr: string }, n: number): void {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const m = /GRID ok=(\d+) wrong=(\d+)/.exec(r.stdout);
  expect(m, r.stdout).not.toBeNull();
  expect(Number(m![2])).toBe(0);
  expect(Number(m![1])).toBeGreaterThan(700 * n);
}
