// Delta space: exact methods reproduce ΔW* = Σ w_i s_i B_i A_i; the dense path follows PEFT's rules on ΔW.
import { afterAll, describe, expect, it } from 'vitest';
import { mergeAdapters } from '../../src/merge/engine.js';
import { parseMergeOptions } from '../../src/merge/options.js';
import { DeltaTiles, denseMerge, tensorThresholds } from '../../src/merge/dense.js';
import { MatmulKernel } from '../../src/merge/kernels/matmul.js';
import { TopKFilter } from '../../src/merge/kernels/select.js';
import { electAndMerge, magnitudePrune, weightedSum } from '../../src/merge/primitives.js';
import { CancelledError, InvalidInputError } from '../../src/errors.js';
import type { ModuleInput } from '../../src/merge/factors.js';
import type { LoraAdapter } from '../../src/formats/peft.js';
import { denseDelta, makeAdapter } from './adapters.js';
import { relError, singularValues } from './reference.js';

const Q = 'model.layers.0.self_attn.q_proj';
const V = 'model.layers.0.self_attn.v_proj';
const kernel = new MatmulKernel({ threads: 1 });
afterAll(() => kernel.release());

function exactSum(adapters: LoraAdapter[], weights: number[], name: string): Float64Array {
  const parts = adapters.filter((a) => a.modules.has(name)).map((a) => denseDelta(a.modules.get(name)!, weights[adapters.indexOf(a)]));
  return parts.reduce((acc, p) => acc.map((x, i) => x + p[i]!));
}

function product(adapter: LoraAdapter, name: string): Float64Array {
  const m = adapter.modules.get(name)!;
  return denseDelta(m, 1 / m.scaling).map((x) => x * m.scaling);
}

// three adapters of different ranks, alphas and rslora
const inputs = [
  makeAdapter([{ name: Q, out: 24, inn: 20, r: 2, alpha: 4, seed: 1 }, { name: V, out: 8, inn: 20, r: 2, alpha: 4, seed: 2 }]),
  makeAdapter([{ name: Q, out: 24, inn: 20, r: 5, alpha: 5, seed: 3 }, { name: V, out: 8, inn: 20, r: 5, alpha: 5, seed: 4 }]),
  makeAdapter([{ name: Q, out: 24, inn: 20, r: 3, alpha: 16, seed: 5 }, { name: V, out: 8, inn: 20, r: 3, alpha: 16, seed: 6 }], { rslora: true }),
];
const weights = [0.5, -0.25, 0.3];

describe('delta space, exact methods', () => {
  it.each(['linear', 'cat', 'svd'] as const)('%s reproduces ΔW* to < 1e-5 with different ranks', async (method) => {
    const res = await mergeAdapters(inputs, { method, weights });
    for (const name of [Q, V]) {
      const got = product(res.adapter, name);
      expect(relError(got, exactSum(inputs, weights, name))).toBeLessThan(1e-5);
      const m = res.adapter.modules.get(name)!;
      expect(m.rank).toBe(method === 'svd' ? Math.min(10, m.outFeatures) : 10); // svd caps at min(out, in)
    }
    expect(res.report.diagnostics.overall.relError!).toBeLessThan(1e-5);
    expect(res.adapter.config.useRslora).toBe(false);
    expect(res.adapter.config.r).toBe(res.adapter.config.loraAlpha);
  });

  it('svd truncation error equals the dropped singular values', async () => {
    const res = await mergeAdapters(inputs, { method: 'svd', weights, rank: 4 });
    const ref = exactSum(inputs, weights, Q);
    const sv = singularValues(ref, 24, 20);
    const dropped = Math.sqrt(sv.slice(4).reduce((s, x) => s + x * x, 0));
    const norm = Math.sqrt(sv.reduce((s, x) => s + x * x, 0));
    const got = product(res.adapter, Q);
    expect(relError(got, ref)).toBeCloseTo(dropped / norm, 5);
    const diag = res.report.diagnostics.modules.find((m) => m.module === Q)!;
    expect(diag.relError!).toBeCloseTo(dropped / norm, 4);
    expect(diag.retainedEnergy!).toBeCloseTo(1 - (dropped / norm) ** 2, 5);
  });

  it('energy writes a per-module rank', async () => {
    const res = await mergeAdapters(inputs, { method: 'svd', weights, energy: 0.8 });
    for (const d of res.report.diagnostics.modules) expect(d.retainedEnergy!).toBeGreaterThanOrEqual(0.8);
    const ranks = [...res.adapter.modules.values()].map((m) => m.rank);
    expect(Math.max(...ranks)).toBe(res.adapter.config.r);
    for (const m of res.adapter.modules.values()) if (m.rank !== res.adapter.config.r) expect(res.adapter.config.rankPattern[m.name]).toBe(m.rank);
  });

  it('reports interference cosines that match dense ones', async () => {
    const res = await mergeAdapters(inputs, { method: 'cat', weights });
    const d0 = product(inputs[0]!, Q).map((x) => x);
    const d1 = product(inputs[1]!, Q);
    const cos = d0.reduce((s, x, i) => s + x * d1[i]!, 0) / Math.sqrt(d0.reduce((s, x) => s + x * x, 0) * d1.reduce((s, x) => s + x * x, 0));
    const diag = res.report.diagnostics.modules.find((m) => m.module === Q)!;
    expect(diag.interference[0]![1]).toBeCloseTo(cos, 5);
    expect(diag.interference[1]![1]).toBe(1);
  });

  it('writes F16/BF16 and measures the error of what is written', async () => {
    const res = await mergeAdapters(inputs, { method: 'cat', weights, dtype: 'BF16' });
    const err = res.report.diagnostics.overall.relError!;
    expect(err).toBeGreaterThan(1e-4);
    expect(err).toBeLessThan(2e-2);
    expect(relError(product(res.adapter, Q), exactSum(inputs, weights, Q))).toBeCloseTo(res.report.diagnostics.modules[0]!.relError!, 3);
  });
});

/** small-integer factors: every ΔW entry is exact in float32, so the reference sees the very same values */
function integerAdapter(seed: number, out = 12, inn = 10, r = 3): LoraAdapter {
  let s = seed;
  const next = () => ((s = (s * 48271) % 2147483647) % 7) - 3;
  return makeAdapter([{ name: Q, out, inn, r, A: Array.from({ length: r * inn }, next), B: Array.from({ length: out * r }, next) }]);
}

function moduleInputs(adapters: LoraAdapter[], w: number[]): ModuleInput[] {
  return adapters.map((a, i) => ({ adapter: i, module: a.modules.get(Q)!, weight: w[i]! }));
}

describe('delta space, dense path', () => {
  const ints = [integerAdapter(11), integerAdapter(12), integerAdapter(13)];
  const w = [1, 0.5, 0];

  it.each([
    ['ties', 'total'],
    ['ties', 'frequency'],
    ['magnitude_prune', 'total'],
  ] as const)('%s (%s) on ΔW follows the PEFT primitives exactly, tiled or not', async (method, sign) => {
    const dense = ints.map((a) => Float32Array.from(denseDelta(a.modules.get(Q)!)));
    const pruned = dense.map((d) => {
      const p = Float32Array.from(d);
      magnitudePrune(p, 0.3);
      return p;
    });
    const ref = new Float32Array(dense[0]!.length);
    if (method === 'ties') electAndMerge(pruned, w, sign, ref);
    else weightedSum(pruned, w, ref);
    for (const cacheBytes of [1 << 20, 3 * 10 * 4 * 5]) {
      const tiles = new DeltaTiles(kernel, moduleInputs(ints, w), cacheBytes);
      expect(tiles.cached).toBe(cacheBytes === 1 << 20);
      const filters = (await tensorThresholds(tiles, 3, 0.3)).map((t) => new TopKFilter(t));
      const res = await denseMerge(tiles, Q, moduleInputs(ints, w), { method, density: 0.3, signMethod: sign, seed: 0, cacheBytes }, filters);
      expect([...res.merged.data]).toEqual([...ref]);
    }
  });

  it('DARE: identical for one seed, different for another, unbiased on average, independent of tiling', async () => {
    const ins = moduleInputs(ints, [1, 1, 1]);
    const run = async (seed: number, cacheBytes = 1 << 20) =>
      (await denseMerge(new DeltaTiles(kernel, ins, cacheBytes), Q, ins, { method: 'dare_linear', density: 0.4, signMethod: 'total', seed, cacheBytes }, null)).merged.data;
    const a = await run(7);
    expect(await run(7)).toEqual(a);
    expect(await run(7, 200)).toEqual(a);
    expect(await run(8)).not.toEqual(a);
    const exact = Float32Array.from(exactSum(ints, [1, 1, 1], Q));
    const mean = new Float64Array(exact.length);
    const runs = 400;
    for (let seed = 0; seed < runs; seed++) (await run(seed)).forEach((x, i) => (mean[i] = mean[i]! + x / runs));
    // one run is far off (drops 60%); the average over seeds converges to ΔW* like 1/√runs
    expect(relError(a, exact)).toBeGreaterThan(0.5);
    expect(relError(mean, exact)).toBeLessThan(0.1);
  });

  it('ties merges through the randomized SVD and reports its error against ΔW*', async () => {
    const adapters = [1, 2, 3, 4].map((s) => makeAdapter([{ name: Q, out: 40, inn: 30, r: 4, seed: s }]));
    const res = await mergeAdapters(adapters, { method: 'ties', weights: [1, 1, 1, 1], density: 0.5, rank: 30 });
    const m = res.adapter.modules.get(Q)!;
    expect(m.rank).toBe(30);
    const diag = res.report.diagnostics.modules[0]!;
    expect(relError(product(res.adapter, Q), exactSum(adapters, [0.25, 0.25, 0.25, 0.25], Q).map((x) => x * 4))).toBeCloseTo(diag.relError!, 4);
    expect(diag.retainedEnergy!).toBeCloseTo(1, 5); // rank 30 = full rank: nothing cut
    expect(diag.keptFraction!).toBeGreaterThan(0.2);
    expect(diag.keptFraction!).toBeLessThanOrEqual(0.5);
    expect(diag.signConflict!).toBeGreaterThan(0);
    expect(res.report.warnings.some((x) => /overshoot/.test(x))).toBe(false); // ties averages: scale ≈ max weight
  });

  it('merges the same in worker threads as in-process, on every path, module order kept, and stops when aborted', async () => {
    const adapters = [1, 2, 3].map((s) =>
      makeAdapter([
        { name: Q, out: 40, inn: 30, r: 4, seed: s },
        { name: V, out: 20, inn: 30, r: 3, seed: s + 10 },
      ]),
    );
    // the dense path, the exact low-rank paths (svd, the cat form, a truncated linear), factors space, and F16 output
    const recipes = [
      ...(['ties', 'dare_ties', 'magnitude_prune'] as const).map((method) => ({ method, weights: [1, 0.5, 1], density: 0.4, rank: 6 })),
      { method: 'svd', weights: [0.3, 0.5, 0.2] },
      { method: 'linear', weights: [0.3, 0.5, 0.2] },
      { method: 'linear', weights: [0.3, 0.5, 0.2], rank: 5, dtype: 'F16' },
      { method: 'ties', space: 'factors', weights: [1, 1, 1], density: 0.5 },
      { method: 'svd', space: 'factors', weights: [1, 1, 1] },
    ];
    for (const recipe of recipes) {
      const inProcess = await mergeAdapters(adapters, recipe, { compute: { workers: 0 } });
      const threaded = await mergeAdapters(adapters, recipe, { compute: { workers: 2 } });
      for (const name of [Q, V]) {
        expect(threaded.adapter.modules.get(name)!.A).toEqual(inProcess.adapter.modules.get(name)!.A);
        expect(threaded.adapter.modules.get(name)!.B).toEqual(inProcess.adapter.modules.get(name)!.B);
      }
      const noTimes = (r: typeof inProcess) => r.report.diagnostics.modules.map(({ seconds: _s, ...d }) => d);
      expect(noTimes(threaded)).toEqual(noTimes(inProcess));
    }
    const ctl = new AbortController();
    const run = mergeAdapters(adapters, { method: 'ties', weights: [1, 1, 1] }, { compute: { workers: 2 }, signal: ctl.signal, onProgress: (p) => p.done === 1 && ctl.abort() });
    await expect(run).rejects.toThrow(CancelledError);
  });

  it('trimScope adapter uses one threshold over all modules of an adapter', async () => {
    const two = [0, 1].map((i) =>
      makeAdapter([
        { name: Q, out: 10, inn: 8, r: 2, seed: 20 + i },
        { name: V, out: 6, inn: 8, r: 2, seed: 30 + i, alpha: 8 },
      ]),
    );
    const res = await mergeAdapters(two, { method: 'magnitude_prune', weights: [1, 1], density: 0.25, trimScope: 'adapter', rank: 6 });
    // reference: per adapter, the top 25% of |ΔW| over both modules together
    const expected = new Map<string, Float64Array>();
    const parts = two.map((a) => [Q, V].map((n) => denseDelta(a.modules.get(n)!)));
    parts.forEach((p) => {
      const all = [...p[0]!, ...p[1]!].map(Math.abs).sort((x, y) => y - x);
      const t = all[Math.floor(0.25 * all.length) - 1]!;
      [Q, V].forEach((n, k) => {
        const kept = p[k]!.map((x) => (Math.abs(x) >= t ? x : 0));
        expected.set(n, (expected.get(n) ?? new Float64Array(kept.length)).map((x, i) => x + kept[i]!));
      });
    });
    for (const n of [Q, V]) expect(relError(product(res.adapter, n), expected.get(n)!)).toBeLessThan(1e-5);
  });
});

describe('inputs, warnings, progress and cancellation', () => {
  it('refuses adapters of different base models, naming them', async () => {
    const a = makeAdapter([{ name: Q, out: 4, inn: 4, r: 1 }], { base: 'meta-llama/Llama-3.1-8B' });
    const b = makeAdapter([{ name: Q, out: 4, inn: 4, r: 1 }], { base: 'Qwen/Qwen2.5-7B' });
    await expect(mergeAdapters([a, b], { method: 'cat', weights: [1, 1] }, { labels: ['./a', './b'] })).rejects.toThrow(/different base models.*\.\/a \(meta-llama.*\.\/b \(Qwen/);
    // the same model under an org prefix or a local path is accepted
    const c = makeAdapter([{ name: Q, out: 4, inn: 4, r: 1 }], { base: '/models/Llama-3.1-8B/' });
    await expect(mergeAdapters([a, c], { method: 'cat', weights: [1, 1] })).resolves.toBeDefined();
  });

  it('refuses disagreeing shapes with the module name', async () => {
    const a = makeAdapter([{ name: Q, out: 4, inn: 4, r: 1 }]);
    const b = makeAdapter([{ name: Q, out: 4, inn: 6, r: 1 }]);
    await expect(mergeAdapters([a, b], { method: 'cat', weights: [1, 1] })).rejects.toThrow(new RegExp(`module ${Q.replace(/\./g, '\\.')} has different shapes`));
  });

  it('gives the pruning methods density 0.2 when none is asked for, written into the recipe', () => {
    const plain = parseMergeOptions({ method: 'ties', weights: [1, 1] });
    expect(plain.density).toBe(0.2);
    expect(plain).toEqual(parseMergeOptions({ method: 'ties', weights: [1, 1], density: 0.2 }));
    expect(parseMergeOptions({ method: 'dare_linear', weights: [1], density: 0.7 }).density).toBe(0.7);
    expect(parseMergeOptions({ method: 'linear', weights: [1] }).density).toBeUndefined();
  });

  it('refuses bad options with what to fix', async () => {
    const a = makeAdapter([{ name: Q, out: 4, inn: 4, r: 1 }]);
    await expect(mergeAdapters([a, a], { method: 'linear', weights: [1, 1], density: 0.5 })).rejects.toThrow(/linear keeps every entry and takes no density/);
    await expect(mergeAdapters([a, a], { method: 'linear', weights: [1] })).rejects.toThrow(/1 weight\(s\) for 2 adapter/);
    await expect(mergeAdapters([a, a], { method: 'ties', weights: [1, 1], density: -1 })).rejects.toThrow(InvalidInputError);
    await expect(mergeAdapters([a, a], { method: 'nope', weights: [1, 1] })).rejects.toThrow(/method/);
  });

  it('warns when weights sum well above 1 in delta space', async () => {
    const a = makeAdapter([{ name: Q, out: 4, inn: 4, r: 1 }]);
    const res = await mergeAdapters([a, a, a, a], { method: 'linear', weights: [1, 1, 1, 1] });
    expect(res.report.warnings.find((x) => /sum to 4.*overshoot/.test(x))).toBeDefined();
  });

  it('reports progress per module and stops between modules when aborted', async () => {
    const a = makeAdapter([{ name: Q, out: 4, inn: 4, r: 1 }, { name: V, out: 4, inn: 4, r: 1 }]);
    const seen: string[] = [];
    await mergeAdapters([a, a], { method: 'svd', weights: [0.5, 0.5] }, { onProgress: (p) => seen.push(`${p.phase} ${p.done}/${p.total}`) });
    expect(seen).toEqual(['merge 0/2', 'merge 1/2', 'merge 2/2']);
    // factor space runs the next module ahead: the abort waits for it before releasing the kernel
    for (const recipe of [{ method: 'svd', weights: [0.5, 0.5] }, { method: 'ties', space: 'factors', weights: [1, 1], density: 0.5 }]) {
      const ctl = new AbortController();
      const run = mergeAdapters([a, a], recipe, { signal: ctl.signal, onProgress: (p) => p.done === 1 && ctl.abort() });
      await expect(run).rejects.toThrow(CancelledError);
    }
  });
});
