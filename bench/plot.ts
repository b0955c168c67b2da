// Self-contained SVG charts of tcclbench / mpibench results: bus bandwidth and time against
// message size (log x), one line per series, one row of panels per group (e.g. rank count).
//   npx tsx bench/plot.ts out/a.json out/b.json [-o plot.svg] [--title T]
// Each JSON is a document written by -J; its series is named "<implementation>-<transport> n=<ranks>".
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BenchDocument } from './tcclbench/report.js';

export interface PlotPoint { size: number; busbw: number; timeUs: number }
export interface PlotSeries { name: string; points: PlotPoint[]; dashed?: boolean }
export interface PlotGroup { title: string; series: PlotSeries[] }

// Solid cool colours for tccl, dashed warm ones for references.
const SOLID = ['#1f77b4', '#2ca02c', '#9467bd', '#17becf'];
const DASHED = ['#ff7f0e', '#d62728', '#8c564b', '#e377c2'];
const W = 560;
const H = 360;
const M = { left: 64, right: 16, top: 34, bottom: 46 };
const LEGEND_H = 22;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
export const sizeLabel = (b: number) => (b >= 1 << 30 ? `${b / 2 ** 30}G` : b >= 1 << 20 ? `${b / 2 ** 20}M` : b >= 1024 ? `${b / 1024}K` : `${b}`);

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** One chart: log2 x (sizes), y linear (busbw) or log10 (time). */
function panel(x0: number, y0: number, title: string, series: PlotSeries[], colors: Map<string, string>, kind: 'busbw' | 'time'): string {
  const sizes = series.flatMap((s) => s.points.map((p) => p.size)).filter((s) => s > 0);
  if (sizes.length === 0) return '';
  const lx0 = Math.log2(Math.min(...sizes));
  const lx1 = Math.max(lx0 + 1, Math.log2(Math.max(...sizes)));
  const values = series.flatMap((s) => s.points.map((p) => (kind === 'busbw' ? p.busbw : p.timeUs))).filter((v) => v > 0 && Number.isFinite(v));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const X = (size: number) => x0 + M.left + ((Math.log2(size) - lx0) / (lx1 - lx0)) * pw;
  let Y: (v: number) => number;
  const out: string[] = [];
  const grid = (y: number, label: string) => {
    out.push(`<line x1="${x0 + M.left}" x2="${x0 + M.left + pw}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 + M.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${label}</text>`);
  };
  if (kind === 'busbw') {
    const top = niceMax(Math.max(0, ...values));
    Y = (v) => y0 + M.top + ph - (v / top) * ph;
    for (let k = 0; k <= 5; k++) grid(Y((top * k) / 5), String(Number(((top * k) / 5).toPrecision(3))));
  } else {
    const lo = Math.floor(Math.log10(Math.min(...values, 1)));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values, 10))));
    Y = (v) => y0 + M.top + ph - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * ph;
    for (let e = lo; e <= hi; e++) grid(Y(10 ** e), e >= 6 ? `${10 ** (e - 6)} s` : e >= 3 ? `${10 ** (e - 3)} ms` : `${10 ** e} µs`);
  }
  for (let e = Math.ceil(lx0); e <= lx1; e += 2) {
    const x = X(2 ** e);
    out.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${y0 + M.top}" y2="${y0 + M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${y0 + M.top + ph + 16}" text-anchor="middle">${sizeLabel(2 ** e)}</text>`);
  }
  out.push(`<rect x="${x0 + M.left}" y="${y0 + M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${x0 + M.left + pw / 2}" y="${y0 + H - 8}" text-anchor="middle">message size (bytes, log scale)</text>`);
  out.push(`<text transform="translate(${x0 + 14},${y0 + M.top + ph / 2}) rotate(-90)" text-anchor="middle">${kind === 'busbw' ? 'bus bandwidth (GB/s)' : 'time per call (log scale)'}</text>`);
  out.push(`<text x="${x0 + M.left + pw / 2}" y="${y0 + 20}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  for (const s of series) {
    const pts = s.points.filter((p) => p.size > 0).map((p) => `${X(p.size).toFixed(1)},${Y(kind === 'busbw' ? p.busbw : p.timeUs).toFixed(1)}`);
    const color = colors.get(s.name) ?? '#000';
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${pts.join(' ')}"><title>${esc(s.name)}</title></polyline>`);
    for (const p of pts) out.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="2.2" fill="${color}"/>`);
  }
  return out.join('\n');
}

/** A whole figure: per group a busbw panel and a time panel side by side, a shared legend on top. */
export function renderSvg(title: string, groups: PlotGroup[], footnote = ''): string {
  const base = (s: PlotSeries) => s.name.replace(/ n=\d+$/, '');
  const all = groups.flatMap((g) => g.series);
  const solid = [...new Set(all.filter((s) => !s.dashed).map(base))];
  const dashed = [...new Set(all.filter((s) => s.dashed).map(base))];
  const names = [...solid, ...dashed];
  const colorOf = (name: string) => (solid.includes(name) ? SOLID[solid.indexOf(name) % SOLID.length] : DASHED[dashed.indexOf(name) % DASHED.length]);
  const colors = new Map<string, string>();
  for (const s of all) colors.set(s.name, colorOf(base(s)));
  const width = 2 * W;
  const legendRows = Math.ceil(names.length / 4);
  const top = 36 + legendRows * LEGEND_H;
  const height = top + groups.length * H + (footnote ? 24 : 8);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`,
  ];
  names.forEach((name, i) => {
    const x = 20 + (i % 4) * (width / 4);
    const y = 40 + Math.floor(i / 4) * LEGEND_H;
    out.push(`<line x1="${x}" x2="${x + 30}" y1="${y}" y2="${y}" stroke="${colorOf(name)}" stroke-width="3"${dashed.includes(name) ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${x + 36}" y="${y + 4}">${esc(name)}</text>`);
  });
  groups.forEach((g, k) => {
    out.push(panel(0, top + k * H, `${g.title}: bus bandwidth`, g.series, colors, 'busbw'));
    out.push(panel(W, top + k * H, `${g.title}: time per call`, g.series, colors, 'time'));
  });
  if (footnote) out.push(`<text x="12" y="${height - 8}" fill="#555">${esc(footnote)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Series from a -J document: out-of-place, the reported time. */
export function seriesOf(doc: BenchDocument, name = `${doc.implementation}-${doc.transport} n=${doc.nranks}`): PlotSeries {
  return { name, dashed: doc.implementation !== 'tccl', points: doc.results.map((r) => ({ size: r.size, busbw: r.outOfPlace.busbw, timeUs: r.outOfPlace.timeUs })) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const outAt = args.indexOf('-o');
  const titleAt = args.indexOf('--title');
  const out = outAt >= 0 ? args[outAt + 1] : 'plot.svg';
  const files = args.filter((a, i) => !a.startsWith('-') && i !== outAt + 1 && i !== titleAt + 1);
  if (files.length === 0) {
    process.stderr.write('usage: tsx bench/plot.ts result.json [more.json ...] [-o plot.svg] [--title T]\n');
    process.exit(2);
  }
  const docs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as BenchDocument);
  const byRanks = new Map<number, PlotSeries[]>();
  for (const d of docs) byRanks.set(d.nranks, [...(byRanks.get(d.nranks) ?? []), seriesOf(d)]);
  const groups = [...byRanks.entries()].sort((a, b) => a[0] - b[0]).map(([n, series]) => ({ title: `${docs[0].collective}, ${n} ranks`, series }));
  writeFileSync(out, renderSvg(titleAt >= 0 ? args[titleAt + 1] : `${docs[0].collective}: busbw and time vs size`, groups));
  console.log(`wrote ${out}`);
}
