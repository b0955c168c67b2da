/**
 * Remembers the last error a rank printed on stderr (an uncaught TcclError, a flight-recorder
 * header, any `...Error: ...` line), so the launcher can say why the first failing rank failed.
 */
import type { Readable } from 'node:stream';

const MAX_LINE = 400;
const TCCL_LINE = /\bTCCL_ERR_[A-Z_]+: /;
const ERROR_LINE = /^\s*(?:[A-Z]\w*Error|Error)\b.*?:\s/;

export class LastError {
  private partial = '';
  private tccl: string | undefined;
  private other: string | undefined;

  watch(stream: Readable): void {
    stream.on('data', (chunk: Buffer) => this.feed(chunk.toString('utf8')));
  }

  /** The newest tccl error line, else the newest other error line. */
  get line(): string | undefined {
    return this.tccl ?? this.other;
  }

  private feed(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = (lines.pop() ?? '').slice(-MAX_LINE);
    for (const raw of lines) {
      const line = raw.trim();
      // Node's inspect output repeats the error as `[cause]: ...` and `detail: '...'` lines.
      if (line.startsWith('[cause]') || line.startsWith('at ')) continue;
      if (TCCL_LINE.test(line)) this.tccl = clip(line.replace(/^tccl ERROR rank \d+: /, ''));
      else if (ERROR_LINE.test(line)) this.other = clip(line);
    }
  }
}

const clip = (line: string): string => (line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);

/** True when `pid` is stopped (SIGSTOP / SIGTSTP): state T in /proc (Linux; false elsewhere). */
export async function isStopped(pid: number | undefined): Promise<boolean> {
  if (pid === undefined) return false;
  try {
    const { readFile } = await import('node:fs/promises');
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name (which may itself hold spaces).
    return /^[Tt]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]);
  } catch {
    return false;
  }
}
