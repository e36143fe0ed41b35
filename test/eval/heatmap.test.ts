import { describe, expect, it } from 'vitest';
import { renderPng } from '../../src/arena/chart.js';
import { heatmapSvg, retentionColor } from '../../src/eval/heatmap.js';

describe('retention heat map', () => {
  const input = {
    title: 'Merge sweep',
    subtitle: 'code + shell',
    columns: ['code', 'linux-commands'],
    rows: [
      { label: 'ties d=0.3 w=0.5', values: [0.9, 0.62], worst: 0.62, mean: 0.76 },
      { label: 'linear w=0.25 & <escaped>', values: [0.3, null], worst: 0.3, mean: 0.3 },
    ],
  };

  it('colours red at 0 and below, amber at 0.5, green at 1 and above', () => {
    expect(retentionColor(-3)).toBe(retentionColor(0));
    expect(retentionColor(0)).toBe('rgb(220,38,38)');
    expect(retentionColor(0.5)).toBe('rgb(245,180,60)');
    expect(retentionColor(1)).toBe('rgb(22,163,74)');
    expect(retentionColor(7)).toBe(retentionColor(1));
  });

  it('labels every cell with its value, n/a where retention is undefined, and escapes text', () => {
    const svg = heatmapSvg(input);
    for (const label of ['0.90', '0.62', '0.76', '0.30', 'n/a', 'worst', 'mean', 'linux-commands']) expect(svg).toContain(`>${label}<`);
    expect(svg).toContain('&lt;escaped&gt;');
    expect(svg).toContain('1. ties d=0.3 w=0.5');
    expect(heatmapSvg({ ...input, maxRows: 1 })).toContain('1 more rows not shown');
  });

  it('renders to a PNG of the SVG size with the arena chart renderer', async () => {
    const png = await renderPng(heatmapSvg(input));
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const width = png.readUInt32BE(16);
    const height = png.readUInt32BE(20);
    expect(width).toBe(20 * 2 + 250 + 4 * 112);
    expect(height).toBe(96 + 2 * 26 + 44);
  });
});
