// Per-layer-group weights: every exact method and space gives Σ_i w_i·g_{i,group(m)}·ΔW_i per module, the pruning
// methods see exactly those per-module weights, and recipes that cannot honour them are refused with what to use.
import { afterAll, describe, expect, it } from 'vitest';
import { mergeAdapters } from '../../src/merge/engine.js';
import { parseMergeOptions } from '../../src/merge/options.js';
import { groupOf, layerIndex } from '../../src/merge/layer-groups.js';
import { MatmulKernel } from '../../src/merge/kernels/matmul.js';
import { InvalidInputError } from '../../src/errors.js';
import { recipeHash } from '../../src/queue/types.js';
import type { LoraAdapter } from '../../src/formats/peft.js';
import { denseDelta, makeAdapter } from './adapters.js';
import { relError } from './reference.js';

const kernel = new MatmulKernel({ threads: 1 });
afterAll(() => kernel.release());

const LAYERS = 6;
const name = (l: number) => `model.layers.${l}.self_attn.q_proj`;
const HEAD = 'lm_head';
const adapterOf = (seed: number, r: number, alpha: number) =>
  makeAdapter([...Array.from({ length: LAYERS }, (_, l) => ({ name: name(l), out: 12, inn: 10, r, alpha, seed: seed * 100 + l })), { name: HEAD, out: 12, inn: 10, r, alpha, seed: seed * 100 + 99 }]);
const inputs = [adapterOf(1, 2, 4), adapterOf(2, 3, 3), adapterOf(3, 4, 16)];
const weights = [0.5, -0.25, 0.3];
const groups = [
  [1, 0.5, 2],
  [0, 1, -1],
  [0.25, 1.5, 1],
];

/** Plain reference: Σ_i w_i·g_{i,k}·s_i·B_i·A_i in float64, with k given per block. */
function reference(module: string, groupOfLayer: (l: number) => number): Float64Array {
  const l = layerIndex(module);
  return inputs
    .map((a, i) => denseDelta(a.modules.get(module)!, weights[i]! * (l === null ? 1 : groups[i]![groupOfLayer(l)]!)))
    .reduce((acc, p) => acc.map((x, j) => x + p[j]!));
}

function product(adapter: LoraAdapter, module: string): Float64Array {
  const m = adapter.modules.get(module)!;
  return denseDelta(m, 1);
}

const thirds = (l: number) => Math.floor((l * 3) / LAYERS);
const modules = [...Array.from({ length: LAYERS }, (_, l) => name(l)), HEAD];

describe('per-layer-group weights', () => {
  it.each([
    ['linear', 'delta'],
    ['cat', 'delta'],
    ['svd', 'delta'],
    ['cat', 'factors'],
    ['svd', 'factors'],
  ] as const)('%s in %s space equals the exact per-group weighted sum', async (method, space) => {
    const rank = method === 'svd' ? 9 : undefined; // Σr_i = 9 ≤ min(out, in): nothing cut
    const res = await mergeAdapters(inputs, { method, space, weights, rank, layerWeights: { weights: groups } });
    for (const m of modules) expect(relError(product(res.adapter, m), reference(m, thirds))).toBeLessThan(1e-5);
    expect(res.report.diagnostics.overall.relError!).toBeLessThan(1e-5);
  });

  it('explicit group starts put the blocks where they say', async () => {
    const starts = [1, 4];
    const res = await mergeAdapters(inputs, { method: 'linear', weights, layerWeights: { weights: groups, starts } });
    const byStarts = (l: number) => (l < 1 ? 0 : l < 4 ? 1 : 2);
    for (const m of modules) expect(relError(product(res.adapter, m), reference(m, byStarts))).toBeLessThan(1e-5);
  });

  it('a pruning method merges each module with the per-group weights', async () => {
    const res = await mergeAdapters(inputs, { method: 'ties', weights, density: 0.5, layerWeights: { weights: groups } });
    for (const l of [0, 3, 5]) {
      // the same module merged alone with the plain weights w_i·g
      const alone = inputs.map((a) => makeSingle(a, name(l)));
      const w = weights.map((wi, i) => wi * groups[i]![thirds(l)]!);
      const plain = await mergeAdapters(alone, { method: 'ties', weights: w, density: 0.5 });
      expect(relError(product(res.adapter, name(l)), product(plain.adapter, name(l)))).toBeLessThan(1e-6);
    }
  });

  it('group weights of 1 give the plain merge, and are part of the recipe hash', async () => {
    const ones = groups.map((row) => row.map(() => 1));
    const a = await mergeAdapters(inputs, { method: 'linear', weights, layerWeights: { weights: ones } });
    const b = await mergeAdapters(inputs, { method: 'linear', weights });
    for (const m of modules) expect(relError(product(a.adapter, m), product(b.adapter, m))).toBeLessThan(1e-6);
    const ins = [{ sha256: 'a' }, { sha256: 'b' }, { sha256: 'c' }];
    const plain = recipeHash(ins, parseMergeOptions({ method: 'linear', weights }));
    const tuned = recipeHash(ins, parseMergeOptions({ method: 'linear', weights, layerWeights: { weights: groups } }));
    const tuned2 = recipeHash(ins, parseMergeOptions({ method: 'linear', weights, layerWeights: { weights: ones } }));
    expect(new Set([plain, tuned, tuned2]).size).toBe(3);
  });

  it('refuses what cannot be honoured, saying what to use', () => {
    const refuse = (o: object) => {
      try {
        parseMergeOptions(o);
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidInputError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refuse({ method: 'linear', space: 'factors', weights, layerWeights: { weights: groups } })).toMatch(/factors space linear .*use delta space/);
    expect(refuse({ method: 'ties', space: 'factors', weights, layerWeights: { weights: groups } })).toMatch(/layerWeights: .*use delta space/);
    expect(refuse({ method: 'linear', weights, layerWeights: { weights: groups.slice(1) } })).toMatch(/one row of group weights per adapter \(3\), got 2/);
    expect(refuse({ method: 'linear', weights, layerWeights: { weights: [[1, 2], [1], [1, 2]] } })).toMatch(/same number of group weights/);
    expect(refuse({ method: 'linear', weights, layerWeights: { weights: groups, starts: [4, 1] } })).toMatch(/ascending/);
    expect(refuse({ method: 'linear', weights, layerWeights: { weights: groups, starts: [2] } })).toMatch(/2 number\(s\) for 3 groups/);
  });

  it('finds block indices and splits the range into equal groups', () => {
    expect(layerIndex('base_model.model.model.layers.12.mlp.down_proj')).toBe(12);
    expect(layerIndex('transformer.h.3.attn.c_attn')).toBe(3);
    expect(layerIndex('lm_head')).toBeNull();
    expect(Array.from({ length: 30 }, (_, l) => groupOf(l, 3, { min: 0, max: 29 }))).toEqual([...Array(10).fill(0), ...Array(10).fill(1), ...Array(10).fill(2)]);
  });
});

function makeSingle(a: LoraAdapter, module: string): LoraAdapter {
  return { ...a, modules: new Map([[module, a.modules.get(module)!]]) };
}

describe('warnings read the per-group weights', () => {
  it('weights 1 with group weights 0.25 are as strong as weights 0.25; a strong group is flagged', async () => {
    const { mergeWarnings } = await import('../../src/merge/warnings.js');
    const quarter = { weights: [[0.25, 0.25, 0.25], [0.25, 0.25, 0.25], [0.25, 0.25, 0.25]] };
    expect(mergeWarnings({ method: 'linear', weights: [1, 1, 1], layerWeights: quarter })).toEqual([]);
    expect(mergeWarnings({ method: 'linear', weights: [1, 1, 1], layerWeights: { weights: [[0.25, 1], [0.25, 1], [0.25, 1]] } })[0]).toMatch(/summing to 3 /);
    const plain = await mergeAdapters(inputs, { method: 'linear', weights: [1, 1, 1], layerWeights: quarter });
    expect(plain.report.warnings.join(' ')).not.toMatch(/overshoot/);
    const strong = await mergeAdapters(inputs, { method: 'linear', weights: [1, 1, 1], layerWeights: { weights: [[0.25, 1], [0.25, 1], [0.25, 1]] } });
    expect(strong.report.warnings.join(' ')).toMatch(/the weights sum to 3: linear will likely overshoot/);
  });
});
