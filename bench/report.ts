/**
 * Turning samples into the ratio table (Markdown) and a bar chart (hand-written SVG).
 *
 * Ratios are "union-nfsd speed / ganesha speed", so above 1.0 means union-nfsd is faster, for
 * every row (for rows measured in seconds the ratio is ganesha seconds / union seconds). The
 * ratio is taken per round (the two servers ran back to back) and the median of those is shown:
 * on a shared, noisy machine that is fairer than a ratio of independent medians.
 */
import type { ServerKind, Sizes } from './workloads.js';

export interface Sample {
  workload: string;
  phase: string;
  server: ServerKind;
  round: number;
  ops: number;
  bytes: number;
  seconds: number;
  verify: string;
  unionCpuSec?: number;
  unionPeakRssMiB?: number;
}

type Column = 'union' | 'plain' | 'overlay' | 'plain0';
const column = (k: ServerKind): Column => (k === 'union20' ? 'union' : k === 'overlay20' ? 'overlay' : k);
/** The ganesha configurations union-nfsd is compared with, the fair ones (default settings) first. */
const PEERS = ['plain', 'overlay', 'plain0'] as const;
type Peer = (typeof PEERS)[number];

interface Metric {
  unit: string;
  higherIsBetter: boolean;
  value(s: Sample): number;
}

function metricFor(phase: string): Metric {
  if (phase.startsWith('calls-')) return { unit: 'µs', higherIsBetter: false, value: (s) => s.seconds * 1e6 };
  if (phase.startsWith('seq')) return { unit: 'MiB/s', higherIsBetter: true, value: (s) => s.bytes / 1048576 / s.seconds };
  if (phase.startsWith('randread')) return { unit: 'IOPS', higherIsBetter: true, value: (s) => s.ops / s.seconds };
  if (phase.startsWith('list') || phase === 'copyup') return { unit: 's', higherIsBetter: false, value: (s) => s.seconds };
  if (phase.startsWith('lookup')) return { unit: 'paths/s', higherIsBetter: true, value: (s) => s.ops / s.seconds };
  return { unit: 'ops/s', higherIsBetter: true, value: (s) => s.ops / s.seconds };
}

export interface Row {
  phase: string;
  workload: string;
  unit: string;
  higherIsBetter: boolean;
  values: Record<Column, number[]>;
  ratio: Record<Peer, number[]>;
  unionCpuSec: number[];
  unionPeakRssMiB: number[];
  failures: string[];
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
}

export function summarize(samples: Sample[]): Row[] {
  const rows = new Map<string, Row>();
  for (const s of samples) {
    let row = rows.get(s.phase);
    if (!row) {
      const m = metricFor(s.phase);
      row = { phase: s.phase, workload: s.workload, unit: m.unit, higherIsBetter: m.higherIsBetter,
        values: { union: [], plain: [], overlay: [], plain0: [] }, ratio: { plain: [], overlay: [], plain0: [] }, unionCpuSec: [], unionPeakRssMiB: [], failures: [] };
      rows.set(s.phase, row);
    }
    if (s.verify !== 'ok') {
      row.failures.push(`${s.server}#${s.round}: ${s.verify}`);
      continue;
    }
    row.values[column(s.server)].push(metricFor(s.phase).value(s));
    if (s.unionCpuSec !== undefined) {
      row.unionCpuSec.push(s.unionCpuSec);
      row.unionPeakRssMiB.push(s.unionPeakRssMiB ?? NaN);
    }
  }
  // per-round ratios
  for (const row of rows.values()) {
    const m = metricFor(row.phase);
    const byRound = new Map<number, Partial<Record<Column, number>>>();
    for (const s of samples) {
      if (s.phase !== row.phase || s.verify !== 'ok') continue;
      const r = byRound.get(s.round) ?? {};
      r[column(s.server)] = m.value(s);
      byRound.set(s.round, r);
    }
    for (const r of byRound.values()) {
      for (const peer of PEERS) {
        const u = r.union;
        const g = r[peer];
        if (u === undefined || g === undefined || !(u > 0) || !(g > 0)) continue;
        row.ratio[peer].push(m.higherIsBetter ? u / g : g / u);
      }
    }
  }
  return [...rows.values()];
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

function cell(xs: number[]): string {
  const v = xs.filter(Number.isFinite);
  if (!v.length) return '–';
  return `${fmt(median(v))} (${fmt(Math.min(...v))}–${fmt(Math.max(...v))})`;
}

function ratioCell(xs: number[]): string {
  if (!xs.length) return '–';
  const m = median(xs);
  return `**${m.toFixed(2)}x** (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
}

export interface ReportMeta {
  command: string;
  machine: Record<string, string | number>;
  elapsedSec: number;
  rounds: number;
  quick: boolean;
  sizes: Sizes;
  fsKind: string;
  unionPeakMiB: number;
  date: string;
}

export function renderMarkdown(rows: Row[], meta: ReportMeta): string {
  const s = meta.sizes;
  const out: string[] = [];
  out.push(`## Benchmark: union-nfsd vs nfs-ganesha (${meta.quick ? 'quick' : 'full'} run)`);
  out.push('');
  out.push(`Command: \`${meta.command}\` (as root) — ${meta.rounds} interleaved rounds, ${Math.round(meta.elapsedSec)} s in all, ${meta.date}.`);
  out.push('');
  const m = meta.machine;
  out.push(`Machine: ${m['nproc']} CPUs (${m['cpu']}), ${m['ramGiB']} GiB RAM, Linux ${m['kernel']}, Node ${m['node']}, ` +
    `nfs-ganesha ${m['ganesha']} (FSAL VFS), client libnfs ${m['libnfs']}; layers on ${meta.fsKind}; everything over loopback.`);
  out.push('');
  out.push('Ratios are union-nfsd speed / ganesha speed per round (median, min–max): **above 1.0 union-nfsd is faster** ' +
    '(for latencies, ganesha µs / union-nfsd µs). "plain" = ganesha exporting a plain directory with the merged content; ' +
    '"overlayfs" = ganesha exporting a kernel overlayfs (index=on,nfs_export=on) of the same layers; both at ganesha\'s ' +
    'default settings (attributes cached for 60 s), as it is deployed. "plain, attrs 0" = a second ganesha over the plain ' +
    'directory with `Attr_Expiration_Time = 0` (every call re-reads attributes), the configuration of earlier runs. ' +
    'Values: median (min–max) over rounds. `calls-*` rows: one call in flight, each timed, p50 and p99.');
  out.push('');
  out.push('| workload | unit | union-nfsd | ganesha plain | ganesha overlayfs | union/plain | union/overlayfs | ganesha plain, attrs 0 | union/plain attrs 0 | union CPU s | union peak RSS MiB | checks |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    out.push(`| ${r.phase} | ${r.unit}${r.higherIsBetter ? '' : ' (lower is better)'} | ${cell(r.values.union)} | ${cell(r.values.plain)} | ` +
      `${cell(r.values.overlay)} | ${ratioCell(r.ratio.plain)} | ${ratioCell(r.ratio.overlay)} | ${cell(r.values.plain0)} | ${ratioCell(r.ratio.plain0)} | ` +
      `${cell(r.unionCpuSec)} | ${cell(r.unionPeakRssMiB)} | ${r.failures.length ? `FAILED ${r.failures.length}` : 'ok'} |`);
  }
  out.push('');
  out.push(`union-nfsd peak RSS over the whole run: **${fmt(meta.unionPeakMiB)} MiB** (VmHWM; per-workload peaks reset through /proc/PID/clear_refs). ` +
    'CPU seconds are union-nfsd utime+stime during the workload (for meta: all four phases together).');
  out.push('');
  out.push(`Sizes: sequential ${s.seq / 1048576} MiB in ${s.req / 1024} KiB requests; random 4 KiB reads on a ${s.rand / 1048576} MiB file ` +
    `(${s.qd1Count} at 1 in flight, ${s.qd16Count} at 16, each capped at ${s.randMaxSec} s); ${s.meta} files create/stat/list/unlink; ` +
    `a ${s.list}-entry directory merged from 3 layers (plus shadowed copies and whiteouts); copy-up of a ${s.copyup / 1048576} MiB lower file ` +
    `(open + 4 KiB write + COMMIT); ${s.lookupCount} path lookups ${s.depth} components deep through 3 and 20 layers; ` +
    `${s.mixedClients} clients for ${s.mixedSec} s mixing reads, writes and metadata. Every read is checked against the known pattern, every count checked.`);
  const failures = rows.flatMap((r) => r.failures.map((f) => `${r.phase} ${f}`));
  if (failures.length) {
    out.push('');
    out.push('Failed samples (excluded from the table):');
    for (const f of failures.slice(0, 40)) out.push(`- ${f}`);
  }
  return out.join('\n') + '\n';
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Horizontal bars: per workload, the union/plain and union/overlayfs ratio, with 1.0 and 0.8 marks. */
export function renderSvg(rows: Row[], opts: { title: string }): string {
  const shown = rows.filter((r) => r.ratio.plain.length || r.ratio.overlay.length);
  const labelW = 230;
  const plotW = 520;
  const barH = 11;
  const rowH = 2 * barH + 12;
  const top = 58;
  const height = top + shown.length * rowH + 40;
  const width = labelW + plotW + 90;
  const maxRatio = Math.min(4, Math.max(2, ...shown.flatMap((r) => [median(r.ratio.plain), median(r.ratio.overlay)]).filter(Number.isFinite)));
  const x = (v: number): number => labelW + (Math.min(v, maxRatio) / maxRatio) * plotW;
  const colors = { plain: '#3b6fb6', overlay: '#e08a2c' };
  const p: string[] = [];
  p.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  p.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  p.push(`<text x="10" y="20" font-size="14" font-weight="bold">${esc(opts.title)}</text>`);
  p.push(`<text x="10" y="38" fill="#444">union-nfsd speed / ganesha speed (median of per-round ratios; right of 1.0 = union-nfsd faster)</text>`);
  p.push(`<rect x="${labelW}" y="44" width="10" height="10" fill="${colors.plain}"/><text x="${labelW + 14}" y="53">vs ganesha, plain directory</text>`);
  p.push(`<rect x="${labelW + 200}" y="44" width="10" height="10" fill="${colors.overlay}"/><text x="${labelW + 214}" y="53">vs ganesha, kernel overlayfs</text>`);
  for (let t = 0; t <= maxRatio + 1e-9; t += 0.5) {
    const xx = x(t);
    p.push(`<line x1="${xx}" y1="${top - 2}" x2="${xx}" y2="${top + shown.length * rowH}" stroke="#ddd"/>`);
    p.push(`<text x="${xx}" y="${top + shown.length * rowH + 14}" text-anchor="middle" fill="#444">${t.toFixed(1)}</text>`);
  }
  p.push(`<line x1="${x(0.8)}" y1="${top - 2}" x2="${x(0.8)}" y2="${top + shown.length * rowH}" stroke="#c33" stroke-dasharray="4 3"/>`);
  p.push(`<line x1="${x(1)}" y1="${top - 2}" x2="${x(1)}" y2="${top + shown.length * rowH}" stroke="#000"/>`);
  shown.forEach((r, i) => {
    const y0 = top + i * rowH;
    p.push(`<text x="${labelW - 8}" y="${y0 + barH + 4}" text-anchor="end">${esc(r.phase)}</text>`);
    (['plain', 'overlay'] as const).forEach((peer, j) => {
      const xs = r.ratio[peer];
      if (!xs.length) return;
      const med = median(xs);
      const y = y0 + j * barH;
      p.push(`<rect x="${labelW}" y="${y}" width="${Math.max(1, x(med) - labelW)}" height="${barH - 2}" fill="${colors[peer]}"/>`);
      const lo = Math.min(...xs);
      const hi = Math.max(...xs);
      p.push(`<line x1="${x(lo)}" y1="${y + (barH - 2) / 2}" x2="${x(hi)}" y2="${y + (barH - 2) / 2}" stroke="#222" stroke-width="1"/>`);
      p.push(`<text x="${Math.max(x(med), x(hi)) + 4}" y="${y + barH - 2}" font-size="10">${med.toFixed(2)}x${med > maxRatio ? ' (clipped)' : ''}</text>`);
    });
  });
  p.push(`<text x="${labelW}" y="${height - 8}" fill="#666" font-size="10">dashed red: 0.8x (the target for I/O); black: 1.0x (the target for metadata and listing). Whiskers: min–max over rounds.</text>`);
  p.push('</svg>');
  return p.join('\n') + '\n';
}

/** Per workload (nfsbench's `calls-*` lines), per side: the p50 and p99 of each round, in µs. */
export interface RoundLatencies {
  p50: Record<string, Record<string, number[]>>;
  p99: Record<string, Record<string, number[]>>;
}

/**
 * Runs `once(side)` for every side in `rounds` rounds (the order alternating per round, as the
 * machine is noisy) and collects the p50/p99 of the nfsbench JSON lines it prints.
 */
export async function latencyRounds<S extends { tag: string }>(sides: readonly S[], rounds: number, once: (s: S) => Promise<string>,
  onRound: (round: number) => void = () => undefined): Promise<RoundLatencies> {
  const out: RoundLatencies = { p50: {}, p99: {} };
  for (let round = 1; round <= rounds; round++) {
    for (const s of round % 2 ? sides : [...sides].reverse()) {
      for (const l of (await once(s)).split('\n').filter((x) => x.startsWith('{'))) {
        const d = JSON.parse(l) as { workload: string; p50_us: number; p99_us: number };
        ((out.p50[d.workload] ??= {})[s.tag] ??= []).push(d.p50_us);
        ((out.p99[d.workload] ??= {})[s.tag] ??= []).push(d.p99_us);
      }
    }
    onRound(round);
  }
  return out;
}

/**
 * A markdown table of `l`: per procedure, the median over rounds of `base`'s and `other`'s p50
 * and p99, and the median of the per-round ratios other/base.
 */
export function latencyTable(l: RoundLatencies, base: string, other: string): string {
  const rows = [`| procedure | ${base} p50 µs | ${other} p50 µs | ${other}/${base} p50 | ${base} p99 µs | ${other} p99 µs | ${other}/${base} p99 |`,
    '| --- | --- | --- | --- | --- | --- | --- |'];
  for (const w of Object.keys(l.p50)) {
    const r = (q: Record<string, Record<string, number[]>>): string => median(q[w]![base]!.map((a, i) => q[w]![other]![i]! / a)).toFixed(2);
    rows.push(`| ${w.replace('calls-', '')} | ${median(l.p50[w]![base]!).toFixed(1)} | ${median(l.p50[w]![other]!).toFixed(1)} | ${r(l.p50)} | ` +
      `${median(l.p99[w]![base]!).toFixed(1)} | ${median(l.p99[w]![other]!).toFixed(1)} | ${r(l.p99)} |`);
  }
  return rows.join('\n');
}
