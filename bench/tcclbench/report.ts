/**
 * The results table (nccl-tests' columns and number formats) and the JSON document that
 * -J writes. bench/mpi/mpibench.c prints the same table and JSON, so compare.ts and people
 * read both alike.
 */

export interface PlacementResult {
  /** The reported time: per-iteration mean on each rank, combined over ranks by -a. */
  timeUs: number;
  /** Per-iteration median on each rank, combined the same way (robust to noise spikes). */
  medianUs: number;
  algbw: number;
  busbw: number;
  /** Wrong elements over all ranks and check runs; null when -c 0. */
  wrong: number | null;
  /** Timed iterations behind the figures (fewer than -n at large sizes with --iter-bytes). */
  iters: number;
}

export interface SizeResult {
  size: number;
  count: number;
  type: string;
  redop: string;
  root: number;
  outOfPlace: PlacementResult;
  /** null where the call has no in-place form (barrier). */
  inPlace: PlacementResult | null;
}

export interface BenchDocument {
  tool: 'tcclbench' | 'mpibench';
  /** 'tccl' or 'openmpi'. */
  implementation: string;
  version: string;
  /** tccl transport, or the Open MPI btl list. */
  transport: string;
  collective: string;
  nranks: number;
  iters: number;
  warmup: number;
  check: number;
  average: string;
  /** --iter-bytes (0 = off). */
  iterBytes: number;
  /** --jit-warmup: untimed out-of-place calls at the smallest size before the sweep; absent when 0. */
  jitWarmup?: number;
  minBytes: number;
  maxBytes: number;
  stepBytes: number;
  stepFactor: number;
  host: string;
  date: string;
  results: SizeResult[];
  avgBusbw: number;
  /** Sum of #wrong over every row (null when -c 0). */
  wrong: number | null;
}

/** nccl-tests' time format: 7 wide, fewer decimals as it grows. */
export function formatTime(us: number): string {
  if (us >= 10000) return us.toFixed(0).padStart(7);
  if (us >= 100) return us.toFixed(1).padStart(7);
  return us.toFixed(2).padStart(7);
}

const bw = (x: number) => x.toFixed(2).padStart(6);
const wrongCol = (w: number | null) => (w === null ? 'N/A' : String(w)).padStart(6);

export function tableHeader(): string[] {
  const left = `# ${'size'.padStart(10)}  ${'count'.padStart(12)}  ${'type'.padStart(8)}  ${'redop'.padStart(6)}  ${'root'.padStart(6)}`;
  const cols = `  ${'time'.padStart(7)}  ${'algbw'.padStart(6)}  ${'busbw'.padStart(6)}  ${'#wrong'.padStart(6)}`;
  const units = `  ${'(us)'.padStart(7)}  ${'(GB/s)'.padStart(6)}  ${'(GB/s)'.padStart(6)}  ${''.padStart(6)}`;
  return [
    `# ${''.padStart(10)}  ${''.padStart(12)}  ${''.padStart(8)}  ${''.padStart(6)}  ${''.padStart(6)}  ${'out-of-place'.padStart(23).padEnd(31)}  ${'in-place'.padStart(19).padEnd(31)}`,
    left + cols + cols,
    `# ${'(B)'.padStart(10)}  ${'(elements)'.padStart(12)}  ${''.padStart(8)}  ${''.padStart(6)}  ${''.padStart(6)}` + units + units,
  ];
}

export function tableRow(r: SizeResult): string {
  const p = (x: PlacementResult | null) => (x === null
    ? `  ${'N/A'.padStart(7)}  ${'N/A'.padStart(6)}  ${'N/A'.padStart(6)}  ${'N/A'.padStart(6)}`
    : `  ${formatTime(x.timeUs)}  ${bw(x.algbw)}  ${bw(x.busbw)}  ${wrongCol(x.wrong)}`);
  return `  ${String(r.size).padStart(10)}  ${String(r.count).padStart(12)}  ${r.type.padStart(8)}  ${r.redop.padStart(6)}  ${String(r.root).padStart(6)}` + p(r.outOfPlace) + p(r.inPlace);
}

export function tableFooter(doc: Pick<BenchDocument, 'wrong' | 'avgBusbw'>): string[] {
  const bad = doc.wrong ?? 0;
  return [
    `# Out of bounds values : ${bad} ${bad === 0 ? 'OK' : 'FAILED'}`,
    `# Avg bus bandwidth    : ${Number(doc.avgBusbw.toPrecision(6))}`,
    '#',
  ];
}

/** Mean busbw over every row and placement (nccl-tests' "Avg bus bandwidth"). */
export function averageBusbw(results: readonly SizeResult[]): number {
  const all = results.flatMap((r) => (r.inPlace ? [r.outOfPlace, r.inPlace] : [r.outOfPlace]));
  return all.length === 0 ? 0 : all.reduce((a, p) => a + p.busbw, 0) / all.length;
}

/** Total #wrong, or null when nothing was checked. */
export function totalWrong(results: readonly SizeResult[]): number | null {
  let total: number | null = null;
  for (const r of results) for (const w of [r.outOfPlace.wrong, r.inPlace?.wrong ?? null]) if (w !== null) total = (total ?? 0) + w;
  return total;
}
