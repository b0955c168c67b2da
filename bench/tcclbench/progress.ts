/**
 * Progress bar for long sweeps, on stderr, only where a person watches a terminal.
 * Under tcclrun a rank's stderr is a pipe the launcher relays line by line, so a bar drawn
 * with '\r' would never show: rank 0 then draws on the launcher's own stderr when that is a
 * terminal (/proc/<launcher>/fd/2 on Linux). Forced on without a terminal (--progress or
 * TCCL_BENCH_PROGRESS=1) it prints one plain line per step instead.
 */
import { closeSync, openSync, readlinkSync, writeSync } from 'node:fs';

/** How long a sweep runs before the bar appears: short runs stay clean. */
const SHOW_AFTER_MS = 1000;
const REDRAW_MS = 250;

type Sink = { kind: 'tty'; fd: number; owned: boolean } | { kind: 'lines' } | { kind: 'none' };

function launcherTerminal(): string | undefined {
  const pid = process.env.TCCL_LAUNCHER_PID;
  if (!pid || !/^\d+$/.test(pid)) return undefined;
  try {
    const target = readlinkSync(`/proc/${pid}/fd/2`);
    return /^\/dev\/(pts\/\d+|tty\w*)$/.test(target) ? target : undefined;
  } catch {
    return undefined; // not Linux, or not allowed to look: no bar
  }
}

function chooseSink(force: boolean | undefined): Sink {
  if (force === false) return { kind: 'none' };
  if (process.stderr.isTTY) return { kind: 'tty', fd: 2, owned: false };
  const term = launcherTerminal();
  if (term) {
    try {
      return { kind: 'tty', fd: openSync(term, 'a'), owned: true };
    } catch {
      // fall through
    }
  }
  return force ? { kind: 'lines' } : { kind: 'none' };
}

export class Progress {
  private readonly sink: Sink;
  private readonly started = performance.now();
  private done = 0;
  private doneWeight = 0;
  private label = '';
  private drawn = false;
  private timer?: ReturnType<typeof setInterval>;

  /** `total` steps whose expected durations add up to `totalWeight` (any unit). */
  constructor(private readonly total: number, private readonly totalWeight: number, force: boolean | undefined) {
    this.sink = chooseSink(force ?? (process.env.TCCL_BENCH_PROGRESS === '1' ? true : undefined));
    if (this.sink.kind === 'tty') {
      this.timer = setInterval(() => this.draw(), REDRAW_MS);
      this.timer.unref();
    }
  }

  /** A step is starting; `label` says which. */
  step(label: string): void {
    this.label = label;
    if (this.sink.kind === 'lines' && this.total > 1) {
      process.stderr.write(`tcclbench: ${this.done + 1}/${this.total} ${label} (${this.eta()})\n`);
    }
  }

  /** A step of `weight` finished. */
  advance(weight: number): void {
    this.done++;
    this.doneWeight += weight;
  }

  /** Remove the bar before a table line is printed, so the two never share a line. */
  clear(): void {
    if (this.sink.kind !== 'tty' || !this.drawn) return;
    this.write('\r\x1b[K');
    this.drawn = false;
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.clear();
    if (this.sink.kind === 'tty' && this.sink.owned) closeSync(this.sink.fd);
  }

  private eta(): string {
    const elapsed = (performance.now() - this.started) / 1000;
    if (this.doneWeight === 0) return `${elapsed.toFixed(0)} s elapsed`;
    const left = (elapsed / this.doneWeight) * (this.totalWeight - this.doneWeight);
    return `${elapsed.toFixed(0)} s elapsed, ~${left.toFixed(0)} s left`;
  }

  private draw(): void {
    if (performance.now() - this.started < SHOW_AFTER_MS || this.total <= 1) return;
    const width = 30;
    const filled = Math.round((width * this.doneWeight) / this.totalWeight);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total} ${this.label} ${this.eta()}`;
    this.write(`\r\x1b[K${bar}`);
    this.drawn = true;
  }

  private write(text: string): void {
    if (this.sink.kind !== 'tty') return;
    try {
      writeSync(this.sink.fd, text);
    } catch {
      // a closed terminal must not fail the benchmark
    }
  }
}
