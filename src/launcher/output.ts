/**
 * Per-rank output relay: splits a child's byte stream into lines, prefixes them with the
 * rank and writes whole lines to a shared sink, so ranks never interleave mid-line.
 */
import type { Readable, Writable } from 'node:stream';

const NL = 0x0a;
/** A line longer than this is emitted in pieces rather than buffered without bound. */
const MAX_PENDING = 1 << 20;

/**
 * A destination shared by many sources. When the sink reports backpressure every source
 * pauses until 'drain'; a broken sink (EPIPE: reader went away) drops output instead of
 * crashing the launcher or stalling the children.
 */
export class SharedSink {
  private readonly paused = new Set<Readable>();
  private waiting = false;
  private broken = false;

  constructor(private readonly out: Writable) {
    out.on('error', () => {
      this.broken = true;
      this.resumeAll();
    });
  }

  /** True while waiting for 'drain' (sources paused). */
  get busy(): boolean {
    return this.waiting;
  }

  write(buf: Buffer, source?: Readable): void {
    if (this.broken || buf.length === 0) return;
    let ok: boolean;
    try {
      ok = this.out.write(buf);
    } catch {
      this.broken = true;
      return;
    }
    if (ok || source === undefined) return;
    source.pause();
    this.paused.add(source);
    if (!this.waiting) {
      this.waiting = true;
      this.out.once('drain', () => {
        this.waiting = false;
        this.resumeAll();
      });
    }
  }

  /** Resolves once everything written so far has been handed to the OS. */
  flush(): Promise<void> {
    if (this.broken) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        this.out.write('', () => resolve());
      } catch {
        resolve();
      }
    });
  }

  private resumeAll(): void {
    for (const s of this.paused) s.resume();
    this.paused.clear();
  }
}

/**
 * Relays `source` into `sink` line by line. Resolves when the source has ended (or been
 * destroyed), after flushing a trailing partial line.
 */
export function relayLines(source: Readable, sink: SharedSink, prefix: string): Promise<void> {
  const pre = Buffer.from(prefix);
  let pending: Buffer[] = [];
  let pendingLen = 0;

  const emit = (parts: Buffer[]) => sink.write(parts.length === 1 ? parts[0] : Buffer.concat(parts), source);

  source.on('data', (chunk: Buffer) => {
    const out: Buffer[] = [];
    let start = 0;
    // Bytes are split on 0x0a directly: it never occurs inside a UTF-8 multibyte sequence.
    for (let nl = chunk.indexOf(NL, start); nl !== -1; nl = chunk.indexOf(NL, start)) {
      if (pre.length) out.push(pre);
      if (pendingLen) {
        out.push(...pending);
        pending = [];
        pendingLen = 0;
      }
      out.push(chunk.subarray(start, nl + 1));
      start = nl + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingLen += chunk.length - start;
      if (pendingLen >= MAX_PENDING) {
        if (pre.length) out.push(pre);
        out.push(...pending, Buffer.from('\n'));
        pending = [];
        pendingLen = 0;
      }
    }
    if (out.length) emit(out);
  });

  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (pendingLen) {
        // Terminate the partial line so the next rank's output starts on its own line.
        emit(pre.length ? [pre, ...pending, Buffer.from('\n')] : [...pending, Buffer.from('\n')]);
        pending = [];
        pendingLen = 0;
      }
      resolve();
    };
    source.once('end', finish);
    source.once('close', finish);
    source.once('error', finish);
  });
}
