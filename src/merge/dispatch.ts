// Module dispatch: which of the three paths merges a module (factors space; delta space exact low-rank; delta space
// dense), decided from the method's traits (options.ts METHODS), and the dense path's setup: per-adapter trim
// thresholds and the worker threads with the modules sent ahead of the one being merged.
import type { LoraAdapter } from '../formats/peft.js';
import type { MatmulKernel } from './kernels/matmul.js';
import { innerProducts, lowRankSvd, stackedGrams, stackFactors, weightedNormSq, type Grams, type Stacked } from './kernels/lowrank-svd.js';
import { TopKFilter } from './kernels/select.js';
import { catFactors, mergeFactorsSpace, type MergedFactors, type ModuleInput } from './factors.js';
import { adapterThresholds, DeltaTiles, mergeDenseModule, TileArena, type DenseModuleJob, type DenseModuleResult } from './dense.js';
import { DensePool } from './dense-pool.js';
import { moduleWeights } from './layer-groups.js';
import { traitsOf, type MergeMethod, type MergeOptions } from './options.js';
import type { ModuleWork } from './plan.js';

/** One module merged, with what measuring it needs. */
export interface DispatchedModule {
  work: ModuleWork;
  inputs: ModuleInput[];
  weights: number[];
  merged: MergedFactors;
  /** Σσ² kept by a rank cut, and the total; null when no SVD ran */
  energy: { kept: number; total: number } | null;
  stacked: Stacked;
  grams: Grams;
  /** the inputs' Gram inner products ⟨ΔW_i, ΔW_j⟩ and ‖ΔW*‖² (float64 Grams when an exact SVD used them) */
  inner: Float64Array;
  targetNormSq: number;
  /** the result is the stacked factors themselves: exact up to round-off */
  catForm: boolean;
  /** the result is an exact SVD of the weighted sum (its cut energy is its error) */
  exactSvd: boolean;
}

export interface DispatchSetup {
  kernel: MatmulKernel;
  adapters: LoraAdapter[];
  options: MergeOptions;
  /** the method that runs (the plan's) */
  method: MergeMethod;
  modules: ModuleWork[];
  /** memory for one module's dense ΔW tiles */
  cacheBytes: number;
  /** threads for the dense path (undefined: one per core when the merge is large) */
  workers?: number;
  cores: number;
  /** per-adapter threshold selection progress (trimScope 'adapter'); may throw to cancel */
  onSelect?(done: number, total: number): void;
}

export class ModuleDispatch {
  private readonly arena = new TileArena();
  private readonly ahead = new Map<number, Promise<DenseModuleResult>>();
  private adapterFilters: TopKFilter[] | null = null;
  private pool: DensePool | null = null;
  private readonly dense: boolean;
  /** adapter i's weight in a module: w_i, times its layer group's weight when the recipe has layerWeights */
  private readonly weightOf: (module: string, adapter: number) => number;

  private constructor(private readonly s: DispatchSetup) {
    this.dense = s.options.space === 'delta' && !traitsOf(s.method).exact;
    this.weightOf = moduleWeights(s.options, s.modules.map((w) => w.name));
  }

  /** Prepares the dense path: per-adapter thresholds (two passes over every module) or the worker threads. */
  static async start(s: DispatchSetup): Promise<ModuleDispatch> {
    const d = new ModuleDispatch(s);
    const { options, kernel } = s;
    if (d.dense && traitsOf(s.method).sparsify === 'magnitude' && options.trimScope === 'adapter') {
      const mods = s.modules.map((w) => ({ inputs: d.inputsOf(w), tiles: () => new DeltaTiles(kernel, d.inputsOf(w), s.cacheBytes, d.arena) }));
      const thresholds = await adapterThresholds(mods, s.adapters.length, options.density!, (pass, done) =>
        s.onSelect?.((pass - 1) * mods.length + done, 2 * mods.length),
      );
      d.adapterFilters = thresholds.map((t) => new TopKFilter(t));
    }
    // per-tensor dense merges go to worker threads (per-adapter trims carry tie counts from module to module)
    const workers = d.dense && !d.adapterFilters && kernel.activeDevice === 'cpu' ? (s.workers ?? defaultWorkers(s.modules, s.cores)) : 0;
    d.pool = workers > 1 ? new DensePool(workers, kernel.activeDevice) : null;
    return d;
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }

  inputsOf(work: ModuleWork): ModuleInput[] {
    return work.present.map((i) => ({ adapter: i, module: this.s.adapters[i]!.modules.get(work.name)!, weight: this.weightOf(work.name, i) }));
  }

  /** Merges module `idx` of the plan. */
  async merge(idx: number): Promise<DispatchedModule> {
    const { kernel, options, method } = this.s;
    const traits = traitsOf(method);
    const work = this.s.modules[idx]!;
    const inputs = this.inputsOf(work);
    const weights = inputs.map((x) => x.weight);
    const stacked = stackFactors(
      inputs.map(({ module: m }) => ({ B: { data: m.B, rows: m.outFeatures, cols: m.rank }, A: { data: m.A, rows: m.rank, cols: m.inFeatures }, scale: m.scaling })),
    );
    const sumRank = stacked.B.cols;
    const catForm =
      traits.factors === 'stack' ||
      (options.space === 'delta' && traits.factors === 'sum' && options.energy === undefined && (options.rank ?? sumRank) >= sumRank);
    // methods whose result is (or truncates) the exact sum: their Grams feed an SVD and a near-zero error
    const exactSum = traits.exact && (options.space === 'delta' || traits.factors !== 'sum' || this.s.adapters.length === 1);
    const exactSvd = exactSum && !catForm;
    const grams = await stackedGrams(kernel, stacked, exactSvd ? 'f64' : 'f32');
    const inner = innerProducts(grams, stacked);
    const targetNormSq = weightedNormSq(inner, weights);

    let merged: MergedFactors;
    let energy: { kept: number; total: number } | null = null;
    if (options.space === 'factors') {
      merged = await mergeFactorsSpace(kernel, method, work.name, inputs, options, stacked, grams);
    } else if (catForm) {
      merged = catFactors(inputs);
    } else if (traits.exact) {
      const res = await lowRankSvd(kernel, stacked, grams, weights, { cap: options.rank ?? sumRank, energy: options.energy, split: 'balanced' });
      merged = { B: res.B, A: res.A, rank: res.rank, retainedEnergy: null, stats: null };
      energy = { kept: res.keptEnergy, total: res.totalEnergy };
    } else {
      const res = this.pool ? await this.inFlight(idx) : await mergeDenseModule(kernel, this.arena, this.denseJob(work), this.filtersOf(inputs));
      merged = { B: res.B, A: res.A, rank: res.rank, retainedEnergy: null, stats: res.stats };
      energy = res.energy;
    }
    if (merged.retainedEnergy !== null && energy === null) energy = { kept: merged.retainedEnergy, total: 1 };
    return { work, inputs, weights, merged, energy, stacked, grams, inner, targetNormSq, catForm, exactSvd };
  }

  private filtersOf(inputs: ModuleInput[]): TopKFilter[] | null {
    return this.adapterFilters && inputs.map((x) => this.adapterFilters![x.adapter]!);
  }

  private denseJob(work: ModuleWork): DenseModuleJob {
    const { options, adapters } = this.s;
    return {
      name: work.name,
      inputs: this.inputsOf(work),
      options: { method: this.s.method, density: options.density!, signMethod: options.majoritySignMethod, seed: options.seed, cacheBytes: this.s.cacheBytes },
      rank: options.rank ?? Math.max(...work.present.map((i) => adapters[i]!.modules.get(work.name)!.rank)),
      energy: options.energy,
    };
  }

  /** Module idx's result from the threads, with the next modules sent ahead so that no thread waits. */
  private inFlight(idx: number): Promise<DenseModuleResult> {
    const pool = this.pool!;
    const modules = this.s.modules;
    for (let j = idx; j <= Math.min(modules.length - 1, idx + pool.size); j++) {
      if (this.ahead.has(j)) continue;
      const p = pool.run(this.denseJob(modules[j]!));
      p.catch(() => undefined); // awaited in turn; a failure ahead must not count as unhandled
      this.ahead.set(j, p);
    }
    const p = this.ahead.get(idx)!;
    this.ahead.delete(idx);
    return p;
  }
}

/**
 * Threads for a dense merge: one per core when the merge is large enough to repay starting them (a thread takes
 * a fraction of a second to load the engine; 2^26 ΔW entries take seconds), else none.
 */
function defaultWorkers(modules: ModuleWork[], cores: number): number {
  const entries = modules.reduce((s, w) => s + w.present.length * w.outFeatures * w.inFeatures, 0);
  return entries >= 2 ** 26 ? cores : 0;
}
