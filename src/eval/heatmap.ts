// The retention heat map as SVG: one row per model or sweep recipe (in ranking order), one column per category,
// then the worst and the mean; each cell coloured by retention (red below 0, amber around 0.5, green at 1 and above)
// and labelled with its value. Undefined retention is a grey "n/a". The API renders it to PNG with the same
// renderer as the arena's leaderboard chart.
import { clip } from '../errors.js';

export interface HeatmapRow {
  label: string;
  /** one per column; null = undefined retention */
  values: Array<number | null>;
  worst: number | null;
  mean: number | null;
}

export interface HeatmapInput {
  title: string;
  subtitle?: string;
  columns: string[];
  rows: HeatmapRow[];
  /** rows beyond this are left out, and the footer says how many */
  maxRows?: number;
}

const FONT = 'DejaVu Sans';
const CELL_W = 112;
const CELL_H = 26;
const LABEL_W = 250;
const TOP = 96;
const MARGIN = 20;

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

function text(x: number, y: number, body: string, attrs: string): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="${FONT}" ${attrs}>${escapeXml(body)}</text>`;
}

const lerp = (a: number, b: number, t: number) => Math.round(a + (b - a) * t);

/** Red (≤ 0) → amber (0.5) → green (≥ 1), as an rgb() string. */
export function retentionColor(value: number): string {
  const red = [220, 38, 38];
  const amber = [245, 180, 60];
  const green = [22, 163, 74];
  const v = Math.max(0, Math.min(1, value));
  const [from, to, t] = v < 0.5 ? [red, amber, v / 0.5] : [amber, green, (v - 0.5) / 0.5];
  return `rgb(${lerp(from[0]!, to[0]!, t)},${lerp(from[1]!, to[1]!, t)},${lerp(from[2]!, to[2]!, t)})`;
}

function cell(x: number, y: number, value: number | null, bold: boolean): string {
  const fill = value === null ? '#e5e7eb' : retentionColor(value);
  const label = value === null ? 'n/a' : value.toFixed(2);
  const ink = value === null ? '#6b7280' : '#111827';
  return (
    `<rect x="${x}" y="${y}" width="${CELL_W - 2}" height="${CELL_H - 2}" rx="3" fill="${fill}"/>` +
    text(x + (CELL_W - 2) / 2, y + CELL_H / 2 + 3, label, `font-size="12" fill="${ink}" text-anchor="middle"${bold ? ' font-weight="bold"' : ''}`)
  );
}

export function heatmapSvg(input: HeatmapInput): string {
  const maxRows = input.maxRows ?? 40;
  const rows = input.rows.slice(0, maxRows);
  const columns = [...input.columns, 'worst', 'mean'];
  const width = MARGIN * 2 + LABEL_W + columns.length * CELL_W;
  const height = TOP + Math.max(1, rows.length) * CELL_H + 44;
  const parts: string[] = [`<rect width="${width}" height="${height}" fill="#ffffff"/>`];
  parts.push(text(MARGIN, 32, input.title, 'font-size="20" font-weight="bold" fill="#111827"'));
  if (input.subtitle) parts.push(text(MARGIN, 54, input.subtitle, 'font-size="13" fill="#4b5563"'));
  columns.forEach((c, j) => {
    const x = MARGIN + LABEL_W + j * CELL_W + (CELL_W - 2) / 2;
    const weight = j >= input.columns.length ? ' font-weight="bold"' : '';
    parts.push(text(x, TOP - 10, clip(c, 18), `font-size="12" fill="#374151" text-anchor="middle"${weight}`));
  });
  if (rows.length === 0) parts.push(text(MARGIN, TOP + 18, 'Nothing scored yet.', 'font-size="14" fill="#374151"'));
  rows.forEach((row, i) => {
    const y = TOP + i * CELL_H;
    parts.push(text(MARGIN, y + CELL_H / 2 + 4, clip(`${i + 1}. ${row.label}`, 34), 'font-size="13" fill="#111827"'));
    [...row.values, row.worst, row.mean].forEach((v, j) => {
      parts.push(cell(MARGIN + LABEL_W + j * CELL_W, y, v, j >= row.values.length));
    });
  });
  const notes = ['retention = (ppl_base − ppl) / (ppl_base − ppl_expert): 1 keeps the skill, 0 lost it'];
  if (input.rows.length > rows.length) notes.push(`${input.rows.length - rows.length} more rows not shown`);
  parts.push(text(MARGIN, height - 14, notes.join(' · '), 'font-size="11" fill="#6b7280"'));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${parts.join('')}</svg>`;
}
