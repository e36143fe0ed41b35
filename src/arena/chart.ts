// The leaderboard as a picture: an SVG "forest plot" (one row per adapter, its rating as a dot on its 95%
// interval) rendered to PNG with resvg. The font is DejaVu Sans from the dejavu-fonts-ttf package, loaded by
// path with system fonts off, so the chart looks the same on every machine, fonts installed or not.
import { createRequire } from 'node:module';
import { renderAsync } from '@resvg/resvg-js';
import type { Leaderboard } from './types.js';
import { clip } from '../errors.js';

const require = createRequire(import.meta.url);
const FONT_FILES = ['dejavu-fonts-ttf/ttf/DejaVuSans.ttf', 'dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf'].map((f) => require.resolve(f));
const FONT = 'DejaVu Sans';

const WIDTH = 960;
const ROW = 26;
const TOP = 78;
const LEFT = 250;
const RIGHT = 230;
const AXIS = 34;

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** Ticks at 1, 2 or 5 × 10^k covering [lo, hi], about six of them. */
function ticks(lo: number, hi: number): number[] {
  const raw = (hi - lo) / 6;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(Math.round(t * 1e6) / 1e6);
  return out;
}

function text(x: number, y: number, body: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="${FONT}" ${attrs}>${escapeXml(body)}</text>`;
}

export function leaderboardSvg(board: Leaderboard): string {
  const rows = board.entries;
  const plotLeft = LEFT;
  const plotRight = WIDTH - RIGHT;
  const height = TOP + Math.max(1, rows.length) * ROW + AXIS + 40;
  const parts: string[] = [`<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`];
  const title = `Arena leaderboard${board.category ? ` · ${board.category}` : ''}`;
  parts.push(text(20, 32, title, 'font-size="20" font-weight="bold" fill="#111827"'));
  const anchor = board.method.anchor.adapter
    ? `${board.method.anchor.adapter} fixed at ${board.method.anchor.rating}`
    : `mean fixed at ${board.method.anchor.rating}`;
  const intervals = board.method.bootstrapRounds > 0 ? `95% intervals from ${board.method.bootstrapRounds} bootstrap rounds` : 'no intervals';
  parts.push(
    text(20, 54, `${board.votes} votes · Bradley–Terry ratings, ${intervals} · ${anchor}`, 'font-size="13" fill="#4b5563"'),
  );

  if (rows.length === 0) {
    parts.push(text(20, TOP + 18, 'No adapter has enough counted votes yet.', 'font-size="15" fill="#374151"'));
  } else {
    const lo = Math.min(...rows.map((r) => r.lower));
    const hi = Math.max(...rows.map((r) => r.upper));
    const pad = Math.max(10, (hi - lo) * 0.06);
    const axisTicks = ticks(lo - pad, hi + pad);
    const min = Math.min(lo - pad, axisTicks[0]!);
    const max = Math.max(hi + pad, axisTicks[axisTicks.length - 1]!);
    const x = (v: number) => plotLeft + ((v - min) / (max - min)) * (plotRight - plotLeft);
    const bottom = TOP + rows.length * ROW;

    rows.forEach((_, i) => {
      if (i % 2 === 0) parts.push(`<rect x="10" y="${TOP + i * ROW}" width="${WIDTH - 20}" height="${ROW}" fill="#f3f4f6"/>`);
    });
    for (const t of axisTicks) {
      parts.push(`<line x1="${x(t).toFixed(1)}" y1="${TOP}" x2="${x(t).toFixed(1)}" y2="${bottom}" stroke="#d1d5db" stroke-width="1"/>`);
      parts.push(text(x(t), bottom + 18, String(t), 'font-size="12" fill="#4b5563" text-anchor="middle"'));
    }
    parts.push(`<line x1="${plotLeft}" y1="${bottom}" x2="${plotRight}" y2="${bottom}" stroke="#6b7280" stroke-width="1"/>`);
    parts.push(text((plotLeft + plotRight) / 2, bottom + 36, 'rating', 'font-size="12" fill="#4b5563" text-anchor="middle"'));

    rows.forEach((r, i) => {
      const cy = TOP + i * ROW + ROW / 2;
      const base = cy + 5;
      parts.push(text(22, base, String(r.rank), 'font-size="14" font-weight="bold" fill="#111827"'));
      parts.push(text(58, base, clip(r.name, 24), 'font-size="14" fill="#111827"'));
      const [x1, x2, xc] = [x(r.lower), x(r.upper), x(r.rating)];
      parts.push(`<line x1="${x1.toFixed(1)}" y1="${cy}" x2="${x2.toFixed(1)}" y2="${cy}" stroke="#2563eb" stroke-width="3" stroke-linecap="round"/>`);
      for (const end of [x1, x2]) {
        parts.push(`<line x1="${end.toFixed(1)}" y1="${cy - 6}" x2="${end.toFixed(1)}" y2="${cy + 6}" stroke="#2563eb" stroke-width="2"/>`);
      }
      parts.push(`<circle cx="${xc.toFixed(1)}" cy="${cy}" r="5" fill="#1e3a8a"/>`);
      const spread = `+${Math.round(r.upper - r.rating)}/−${Math.round(r.rating - r.lower)}`;
      parts.push(text(plotRight + 14, base, String(Math.round(r.rating)), 'font-size="14" font-weight="bold" fill="#111827"'));
      parts.push(text(plotRight + 56, base, spread, 'font-size="12" fill="#4b5563"'));
      parts.push(text(WIDTH - 22, base, `${r.votes} votes`, 'font-size="12" fill="#4b5563" text-anchor="end"'));
    });
  }

  const notes: string[] = [];
  if (board.hidden.length > 0) {
    notes.push(`${board.hidden.length} adapter${board.hidden.length === 1 ? '' : 's'} with fewer than ${board.method.minVotes} votes not shown`);
  }
  notes.push(`rank: 1 + adapters whose interval lies wholly above · ${board.computedAt.slice(0, 16).replace('T', ' ')} UTC`);
  parts.push(text(20, height - 12, notes.join(' · '), 'font-size="11" fill="#6b7280"'));

  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">${parts.join('')}</svg>`;
}

/** SVG to PNG; parsing (text to outlines: most of the time) and drawing run on libuv's pool, off the event loop. */
export async function renderPng(svg: string): Promise<Buffer> {
  const image = await renderAsync(svg, { font: { fontFiles: FONT_FILES, loadSystemFonts: false, defaultFontFamily: FONT } });
  return image.asPng();
}

export function leaderboardPng(board: Leaderboard): Promise<Buffer> {
  return renderPng(leaderboardSvg(board));
}
