/**
 * TCCL_DEBUG logging to stderr: WARN (default) for refused connections and wildcard binds,
 * INFO for setup, connections, algorithms and timings, DETAIL adds the cross-rank desync
 * check before every collective. NONE silences everything.
 */
export type DebugLevel = 'NONE' | 'WARN' | 'INFO' | 'DETAIL';
const ORDER: Record<DebugLevel, number> = { NONE: 0, WARN: 1, INFO: 2, DETAIL: 3 };

function parseLevel(value: string | undefined): DebugLevel {
  const v = (value ?? '').trim().toUpperCase();
  if (v === 'TRACE') return 'DETAIL';
  return v in ORDER ? (v as DebugLevel) : 'WARN';
}

let level: DebugLevel = parseLevel(process.env.TCCL_DEBUG);
/** ORDER[level], kept with it: the collectives ask on every call. */
let order = ORDER[level];
let sink: (line: string) => void = (line) => process.stderr.write(line);

/** Current level (read once from TCCL_DEBUG; tests may override). */
export const debugLevel = (): DebugLevel => level;
export const setDebugLevel = (l: DebugLevel | string): void => {
  level = parseLevel(l);
  order = ORDER[level];
};
/** Redirect log lines (tests); returns the previous sink. */
export function setLogSink(next: (line: string) => void): (line: string) => void {
  const prev = sink;
  sink = next;
  return prev;
}

export const infoEnabled = (): boolean => order >= ORDER.INFO;
export const detailEnabled = (): boolean => order >= ORDER.DETAIL;

function emit(tag: string, rank: number | undefined, message: string): void {
  const who = rank === undefined ? '' : ` rank ${rank}`;
  sink(`tccl ${tag}${who}: ${message}\n`);
}

export function info(rank: number | undefined, message: string): void {
  if (order >= ORDER.INFO) emit('INFO', rank, message);
}

export function warn(rank: number | undefined, message: string): void {
  if (order >= ORDER.WARN) emit('WARN', rank, message);
}

/** Always printed (unless NONE): fatal diagnostics such as the flight recorder on a timeout. */
export function error(rank: number | undefined, message: string): void {
  if (level !== 'NONE') emit('ERROR', rank, message);
}

const WARN_BURST = 5;
const WARN_SUMMARY_MS = 5000;
const limited = new Map<string, { printed: number; suppressed: number; timer: NodeJS.Timeout | null }>();

/**
 * A warning that may repeat at network speed (refused connections under a port scan or fuzzer):
 * the first few per `key` are printed, later ones are counted and summarised every few seconds.
 */
export function warnLimited(key: string, rank: number | undefined, message: string): void {
  let entry = limited.get(key);
  if (!entry) limited.set(key, (entry = { printed: 0, suppressed: 0, timer: null }));
  if (entry.printed < WARN_BURST) {
    entry.printed++;
    warn(rank, message);
    return;
  }
  entry.suppressed++;
  if (entry.timer) return;
  const e = entry;
  e.timer = setTimeout(() => {
    e.timer = null;
    if (e.suppressed) warn(rank, `${e.suppressed} more like this (${key}) in the last ${WARN_SUMMARY_MS / 1000} s; last: ${message}`);
    e.suppressed = 0;
  }, WARN_SUMMARY_MS);
  e.timer.unref();
}
