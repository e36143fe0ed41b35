// One module of a merge, from its inputs to its written factors and diagnostics: the path its method takes
// (factors space; delta-space exact low-rank; delta-space dense), the cast to the output dtype, the error against
// the exact weighted sum (measure.ts) and the module's diagnostics. A pure function of the job, so it runs the
// same in-process or in a worker thread of the module pool (module-pool.ts).
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../formats/dtype.js';
import type { MatmulKernel } from './kernels/matmul.js';
import { innerProducts, lowRankSvd, stackedGrams, stackFactors, weightedNormSq, type Grams, type Stacked } from './kernels/lowrank-svd.js';
import type { TopKFilter } from './kernels/select.js';
import { catFactors, mergeFactorsSpace, type MergedFactors, type ModuleInput } from './factors.js';
import { mergeDenseModule, type TileArena } from './dense.js';
import { measureModule } from './measure.js';
import { moduleDiagnostics, type ModuleDiagnostics, type ModuleTotals } from './diagnostics.js';
import { traitsOf, type MergeMethod, type MergeOptions } from './options.js';
import type { ModuleWork } from './plan.js';

export type OutputDtype = 'F32' | 'F16' | 'BF16';

/** Everything one module's merge needs: its inputs (each adapter's factors and weight) and the recipe. */
export interface ModuleJob {
  work: ModuleWork;
  inputs: ModuleInput[];
  /** the method that runs (the plan's) */
  method: MergeMethod;
  options: MergeOptions;
  /** adapters in the whole merge (PEFT merges a single adapter's factors exactly) */
  adapterCount: number;
  dtype: OutputDtype;
  /** memory for the module's dense ΔW tiles in the pruning methods */
  cacheBytes: number;
}

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

export interface ModuleOutcome {
  /** the factors as written (rounded to the output dtype) */
  merged: MergedFactors;
  diagnostics: ModuleDiagnostics;
  totals: ModuleTotals;
}

/**
 * Merges, rounds, measures and describes one module. `filters` carry per-adapter trims of the dense path
 * (trimScope 'adapter', whose tie counts run from module to module: those merges stay in-process).
 */
export async function mergeModule(kernel: MatmulKernel, arena: TileArena, job: ModuleJob, filters: TopKFilter[] | null): Promise<ModuleOutcome> {
  const t0 = performance.now();
  const m = await dispatchModule(kernel, arena, job, filters);
  roundTo(m.merged.B.data, job.dtype);
  roundTo(m.merged.A.data, job.dtype);
  const error = await measureModule(kernel, m);
  const { options, method } = job;
  const d = moduleDiagnostics(m, error, options.space, traitsOf(method).electSigns, (performance.now() - t0) / 1000);
  return { merged: m.merged, ...d };
}

async function dispatchModule(kernel: MatmulKernel, arena: TileArena, job: ModuleJob, filters: TopKFilter[] | null): Promise<DispatchedModule> {
  const { work, inputs, options, method } = job;
  const traits = traitsOf(method);
  const weights = inputs.map((x) => x.weight);
  const stacked = stackFactors(
    inputs.map(({ module: m }) => ({ B: { data: m.B, rows: m.outFeatures, cols: m.rank }, A: { data: m.A, rows: m.rank, cols: m.inFeatures }, scale: m.scaling })),
    (which, length) => arena.get(`stack.${which}`, length), // read only while this module is merged and measured
  );
  const sumRank = stacked.B.cols;
  const catForm =
    traits.factors === 'stack' ||
    (options.space === 'delta' && traits.factors === 'sum' && options.energy === undefined && (options.rank ?? sumRank) >= sumRank);
  // methods whose result is (or truncates) the exact sum: their Grams feed an SVD and a near-zero error
  const exactSum = traits.exact && (options.space === 'delta' || traits.factors !== 'sum' || job.adapterCount === 1);
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
    const rank = options.rank ?? Math.max(...inputs.map((x) => x.module.rank));
    const denseOptions = { method, density: options.density!, signMethod: options.majoritySignMethod, seed: options.seed, cacheBytes: job.cacheBytes };
    const res = await mergeDenseModule(kernel, arena, { name: work.name, inputs, options: denseOptions, rank, energy: options.energy }, filters);
    merged = { B: res.B, A: res.A, rank: res.rank, retainedEnergy: null, stats: res.stats };
    energy = res.energy;
  }
  if (merged.retainedEnergy !== null && energy === null) energy = { kept: merged.retainedEnergy, total: 1 };
  return { work, inputs, weights, merged, energy, stacked, grams, inner, targetNormSq, catForm, exactSvd };
}

/** Rounds float32 values to what the output dtype will store, so the diagnostics describe the written file. */
function roundTo(values: Float32Array, dtype: OutputDtype): void {
  if (dtype === 'F16') f16ToF32(f32ToF16(values), values);
  else if (dtype === 'BF16') bf16ToF32(f32ToBf16(values), values);
}
