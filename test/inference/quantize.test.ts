import { describe, expect, it } from 'vitest';
import { dequantizeInt4, quantizeInt4 } from '../../src/inference/builder/quantize.js';
import { SeededRandom } from '../../src/inference/rng.js';

/** The MLAS rule written out plainly, one value at a time. */
function plainNibble(v: number, block: number[]): number {
  let extreme = 0;
  for (const x of block) if (Math.abs(x) > Math.abs(extreme)) extreme = x;
  const scale = Math.fround(extreme / -8);
  const r = scale === 0 ? 0 : Math.fround(v * Math.fround(1 / scale));
  const rounded = Math.sign(r) * Math.floor(Math.abs(r) + 0.5);
  return Math.min(15, Math.max(0, rounded + 8));
}

describe('quantizeInt4 (MatMulNBits layout, MLAS symmetric round-to-nearest)', () => {
  it('packs each block as the plain rule says: even k in the low nibble, the extreme at -8', () => {
    const rng = new SeededRandom(5);
    const n = 3;
    const k = 80; // two full blocks and a partial one
    const w = rng.normals(n * k);
    const q = quantizeInt4(w, n, k, 32);
    expect(q.blocksPerRow).toBe(3);
    expect(q.qweight.length).toBe(n * 3 * 16);
    for (let row = 0; row < n; row++) {
      for (let i = 0; i < 96; i++) {
        const b = Math.floor(i / 32);
        const block = Array.from(w.subarray(row * k + b * 32, row * k + Math.min(b * 32 + 32, k)));
        const expected = i < k ? plainNibble(w[row * k + i]!, block) : 8;
        const byte = q.qweight[(row * 3 + b) * 16 + ((i % 32) >> 1)]!;
        expect(i % 2 === 0 ? byte & 15 : byte >> 4).toBe(expected);
      }
    }
  });

  it('rounds halves away from zero and maps a zero block to zero', () => {
    // extreme -8 → scale 1: values are their own nibble offsets
    const block = [-8, 2.5, -2.5, 0.5, -0.5, 7, 7.6, ...new Array<number>(25).fill(0)];
    const q = quantizeInt4(Float32Array.from(block), 1, 32);
    expect(q.scales[0]).toBe(1);
    const deq = dequantizeInt4(q);
    expect(Array.from(deq.subarray(0, 7))).toEqual([-8, 3, -3, 1, -1, 7, 7]);
    const zero = quantizeInt4(new Float32Array(32), 1, 32);
    expect(Math.abs(zero.scales[0]!)).toBe(0);
    expect(Array.from(dequantizeInt4(zero), Math.abs)).toEqual(new Array(32).fill(0));
  });

  it('dequantizes within half a step (one step where the value opposite the extreme is clipped at 7)', () => {
    const rng = new SeededRandom(9);
    const w = rng.normals(64 * 96, 0.05);
    const q = quantizeInt4(w, 64, 96);
    const deq = dequantizeInt4(q);
    for (let i = 0; i < w.length; i++) {
      const step = Math.abs(q.scales[Math.floor(i / 96) * 3 + Math.floor((i % 96) / 32)]!);
      const clipped = Math.abs(w[i]!) > 7.5 * step;
      expect(Math.abs(deq[i]! - w[i]!)).toBeLessThanOrEqual((clipped ? step : step / 2) + 1e-9);
    }
  });
});
