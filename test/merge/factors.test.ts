// Factors space against hand-computed PEFT expectations (peft/utils/merge_utils.py and add_weighted_adapter).
import { describe, expect, it } from 'vitest';
import { mergeAdapters } from '../../src/merge/engine.js';
import { InvalidInputError } from '../../src/errors.js';
import { makeAdapter } from './adapters.js';

const Q = 'model.layers.0.self_attn.q_proj';

/** two rank-1 adapters on a 2×2 module: A is 1×2, B is 2×1 */
function pair(a1: number[], b1: number[], a2: number[], b2: number[], alpha = [1, 1]) {
  return [
    makeAdapter([{ name: Q, out: 2, inn: 2, r: 1, alpha: alpha[0], A: a1, B: b1 }]),
    makeAdapter([{ name: Q, out: 2, inn: 2, r: 1, alpha: alpha[1], A: a2, B: b2 }]),
  ];
}

const moduleOf = (res: Awaited<ReturnType<typeof mergeAdapters>>) => res.adapter.modules.get(Q)!;
const arr = (x: Float32Array) => [...x].map((v) => Number(v.toFixed(6)));

describe('factors space (PEFT add_weighted_adapter)', () => {
  it('linear: A gets sign(c)·√|c|, B gets √|c|, c = w·s', async () => {
    const [a, b] = pair([1, 2], [3, 4], [5, 6], [7, 8], [2, 1]); // s = 2 and 1
    const res = await mergeAdapters([a!, b!], { method: 'linear', space: 'factors', weights: [0.5, -4] });
    // c = [1, -4]: a = [1, -2], b = [1, 2]
    const m = moduleOf(res);
    expect(arr(m.A)).toEqual([1 * 1 - 2 * 5, 1 * 2 - 2 * 6]);
    expect(arr(m.B)).toEqual([1 * 3 + 2 * 7, 1 * 4 + 2 * 8]);
    expect(m.rank).toBe(1);
    expect(m.scaling).toBe(1);
    // cross terms make it inexact, and the report says so
    expect(res.report.diagnostics.overall.relError!).toBeGreaterThan(0.1);
  });

  it('ties: top-k per tensor, sign elected on unweighted values, disjoint mean counts a zero weight', async () => {
    // rank 2, 2×2: A and B have 4 entries, density 0.5 keeps 2 per tensor
    const a1 = makeAdapter([{ name: Q, out: 2, inn: 2, r: 2, alpha: 2, A: [4, -1, 3, 0.5], B: [1, 2, 3, 4] }]);
    const a2 = makeAdapter([{ name: Q, out: 2, inn: 2, r: 2, alpha: 2, A: [2, 5, -6, 0.1], B: [-1, -2, 5, 6] }]);
    const res = await mergeAdapters([a1, a2], { method: 'ties', space: 'factors', weights: [1, 0], density: 0.5 });
    // A: trimmed a1 = [4,0,3,0], a2 = [0,5,-6,0]; votes: [4,5,-3,0] → signs [+,+,-,+]
    //   agreeing: e0 {a1}, e1 {a2}, e2 {a2}, e3 {} ; weights (√|w·s|, s=1) = [1, 0]
    //   → [1·4/1, 0·5/1, 0·(-6)/1, 0] = [4, 0, 0, 0]
    // B: trimmed b1 = [0,0,3,4], b2 = [0,0,5,6]; both agree on e2,e3 → count 2 even though w2 = 0:
    //   → [0, 0, (1·3 + 0·5)/2, (1·4 + 0·6)/2] = [0, 0, 1.5, 2]
    const m = moduleOf(res);
    expect(arr(m.A)).toEqual([4, 0, 0, 0]);
    expect(arr(m.B)).toEqual([0, 0, 1.5, 2]);
  });

  it('ties: a zero vote sum elects +', async () => {
    const [a, b] = pair([1, -2], [1, 1], [-1, 2], [1, 1]);
    const res = await mergeAdapters([a!, b!], { method: 'ties', space: 'factors', weights: [1, 1], density: 1 });
    // A votes: [0, 0] → +: keep only positive entries, each alone: [1/1, 2/1]
    expect(arr(moduleOf(res).A)).toEqual([1, 2]);
    expect(arr(moduleOf(res).B)).toEqual([1, 1]); // both agree: (1+1)/2
  });

  it("ties with majority_sign_method 'frequency' counts signs, not magnitudes", async () => {
    const a1 = makeAdapter([{ name: Q, out: 1, inn: 1, r: 1, A: [10], B: [1] }]);
    const a2 = makeAdapter([{ name: Q, out: 1, inn: 1, r: 1, A: [-1], B: [1] }]);
    const a3 = makeAdapter([{ name: Q, out: 1, inn: 1, r: 1, A: [-2], B: [1] }]);
    const total = await mergeAdapters([a1, a2, a3], { method: 'ties', space: 'factors', weights: [1, 1, 1], density: 1 });
    const freq = await mergeAdapters([a1, a2, a3], { method: 'ties', space: 'factors', weights: [1, 1, 1], density: 1, majoritySignMethod: 'frequency' });
    expect(arr(moduleOf(total).A)).toEqual([10]);
    expect(arr(moduleOf(freq).A)).toEqual([-1.5]);
  });

  it('magnitude_prune: density 0 gives zeros, density >= 1 keeps everything (= linear)', async () => {
    const [a, b] = pair([1, 2], [3, 4], [5, 6], [7, 8]);
    const zero = await mergeAdapters([a!, b!], { method: 'magnitude_prune', space: 'factors', weights: [1, 1], density: 0 });
    expect(arr(moduleOf(zero).A)).toEqual([0, 0]);
    const all = await mergeAdapters([a!, b!], { method: 'magnitude_prune', space: 'factors', weights: [1, 1], density: 1.5 });
    const lin = await mergeAdapters([a!, b!], { method: 'linear', space: 'factors', weights: [1, 1] });
    expect(arr(moduleOf(all).A)).toEqual(arr(moduleOf(lin).A));
    expect(all.report.warnings.some((w) => /keeps every entry/.test(w))).toBe(true);
  });

  it('magnitude_prune keeps floor(density·numel) entries per tensor', async () => {
    const a1 = makeAdapter([{ name: Q, out: 2, inn: 3, r: 1, A: [1, -5, 3], B: [2, -1] }]);
    const res = await mergeAdapters([a1, a1], { method: 'magnitude_prune', space: 'factors', weights: [1, 1], density: 0.5 });
    // k = floor(0.5·3) = 1 on A, floor(0.5·2) = 1 on B; weights √1 = 1 each, summed twice
    expect(arr(moduleOf(res).A)).toEqual([0, -10, 0]);
    expect(arr(moduleOf(res).B)).toEqual([4, 0]);
  });

  it('dare: density 0 gives zeros (never NaN); one seed gives one mask', async () => {
    const [a, b] = pair([1, 2], [3, 4], [5, 6], [7, 8]);
    for (const method of ['dare_linear', 'dare_ties'] as const) {
      const res = await mergeAdapters([a!, b!], { method, space: 'factors', weights: [1, 1], density: 0 });
      expect([...moduleOf(res).A, ...moduleOf(res).B].every((v) => v === 0)).toBe(true);
    }
    const big = [
      makeAdapter([{ name: Q, out: 16, inn: 16, r: 4, seed: 1 }]),
      makeAdapter([{ name: Q, out: 16, inn: 16, r: 4, seed: 2 }]),
    ];
    const run = (seed: number) => mergeAdapters(big, { method: 'dare_linear', space: 'factors', weights: [1, 1], density: 0.5, seed });
    const [x, y, z] = [await run(1), await run(1), await run(2)];
    expect(moduleOf(x).A).toEqual(moduleOf(y).A);
    expect(moduleOf(x).A).not.toEqual(moduleOf(z).A);
    // survivors are rescaled by 1/density
    const kept = [...moduleOf(x).A].filter((v) => v !== 0).length;
    expect(kept).toBeGreaterThan(0);
  });

  it('cat is exact and needs no equal ranks; linear/ties refuse different ranks', async () => {
    const a1 = makeAdapter([{ name: Q, out: 4, inn: 3, r: 1, seed: 3 }]);
    const a2 = makeAdapter([{ name: Q, out: 4, inn: 3, r: 2, seed: 4 }]);
    const cat = await mergeAdapters([a1, a2], { method: 'cat', space: 'factors', weights: [0.5, 2] });
    expect(moduleOf(cat).rank).toBe(3);
    expect(cat.report.diagnostics.overall.relError!).toBeLessThan(1e-6);
    await expect(mergeAdapters([a1, a2], { method: 'linear', space: 'factors', weights: [1, 1] })).rejects.toThrow(InvalidInputError);
    await expect(mergeAdapters([a1, a2], { method: 'ties', space: 'factors', weights: [1, 1], density: 0.5 })).rejects.toThrow(/equal ranks.*r=1.*r=2/);
  });

  it('svd: rank max r_i by default, singular values in B, scaling applied once', async () => {
    const a1 = makeAdapter([{ name: Q, out: 6, inn: 5, r: 2, alpha: 8, seed: 5 }]);
    const a2 = makeAdapter([{ name: Q, out: 6, inn: 5, r: 2, alpha: 8, seed: 6 }]);
    const res = await mergeAdapters([a1, a2], { method: 'svd', space: 'factors', weights: [1, 1] });
    const m = moduleOf(res);
    expect(m.rank).toBe(2);
    // A' = V_kᵀ has orthonormal rows
    let dot = 0, n0 = 0;
    for (let j = 0; j < 5; j++) {
      dot += m.A[j]! * m.A[5 + j]!;
      n0 += m.A[j]! ** 2;
    }
    expect(dot).toBeCloseTo(0, 5);
    expect(n0).toBeCloseTo(1, 5);
    // rank 2 of a rank-4 sum: error is the truncation, not a 4× (s = 4 twice) scale error
    expect(res.report.diagnostics.overall.relError!).toBeLessThan(0.9);
    const full = await mergeAdapters([a1, a2], { method: 'svd', space: 'factors', weights: [1, 1], rank: 4 });
    expect(full.report.diagnostics.overall.relError!).toBeLessThan(1e-5);
  });

  it('missing modules: an adapter without the module is skipped there, weights not renormalised', async () => {
    const K = 'model.layers.0.self_attn.k_proj';
    const a1 = makeAdapter([
      { name: Q, out: 2, inn: 2, r: 1, A: [1, 2], B: [1, 1] },
      { name: K, out: 2, inn: 2, r: 1, A: [3, 4], B: [1, 1] },
    ]);
    const a2 = makeAdapter([{ name: Q, out: 2, inn: 2, r: 1, A: [5, 6], B: [1, 1] }]);
    const res = await mergeAdapters([a1, a2], { method: 'linear', space: 'factors', weights: [0.25, 0.25] });
    expect(arr(res.adapter.modules.get(K)!.A)).toEqual([1.5, 2]); // √0.25 · [3, 4]
    expect(res.report.warnings.some((w) => /missing from some adapters/.test(w))).toBe(true);
    expect(res.report.diagnostics.modules.find((m) => m.module === K)!.adapters).toEqual([0]);
  });

  it('a single adapter is merged linearly, as PEFT does', async () => {
    const [a] = pair([1, 2], [3, 4], [5, 6], [7, 8]);
    const res = await mergeAdapters([a!], { method: 'ties', space: 'factors', weights: [1], density: 0.1 });
    expect(res.report.recipe.methodRun).toBe('linear');
    expect(arr(moduleOf(res).A)).toEqual([1, 2]);
  });
});
