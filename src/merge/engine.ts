// mergeAdapters: in-memory adapters in, merged adapter and report out. The planner checks the inputs, then each
// module is merged on its own (factors space, delta-space exact low-rank, or delta-space dense), cast to the output
// dtype, and measured against the exact weighted sum. The signal is checked between modules.
import { CancelledError } from '../errors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../formats/dtype.js';
import type { AdapterConfig, LoraAdapter, LoraModule } from '../formats/peft.js';
import { MatmulKernel, physicalCores, type ComputeOptions } from './kernels/matmul.js';
import { innerProducts, lowRankSvd, stackFactors, stackedGrams, weightedNormSq } from './kernels/lowrank-svd.js';
import { TopKFilter } from './kernels/select.js';
import { catFactors, mergeFactorsSpace, type MergedFactors, type ModuleInput } from './factors.js';
import { adapterThresholds, DeltaTiles, mergeDenseModule, TileArena, type DenseMethod, type DenseModuleJob, type DenseModuleResult } from './dense.js';
import { DensePool } from './dense-pool.js';
import { catRoundoffSq, cosines, distanceSq, overall, round, type ModuleDiagnostics, type ModuleTotals } from './diagnostics.js';
import { planMerge, type ModuleWork } from './plan.js';
import { parseMergeOptions } from './options.js';
import type { MergeReport } from './report.js';

export interface MergeProgress {
  phase: 'read' | 'select' | 'merge' | 'write';
  done: number;
  total: number;
  /** the module being merged */
  module?: string;
}

export interface MergeHooks {
  onProgress?(p: MergeProgress): void;
  signal?: AbortSignal;
  /** names of the inputs for messages and the report (default "adapter 1", …) */
  labels?: string[];
  /** where and how the matrix products run */
  compute?: ComputeOptions;
  /** memory for one module's dense ΔW tiles in the pruning methods (default 1 GiB) */
  denseCacheBytes?: number;
}

export interface MergeResult {
  adapter: LoraAdapter;
  report: MergeReport;
}

const DENSE: ReadonlySet<string> = new Set(['ties', 'dare_linear', 'dare_ties', 'magnitude_prune']);

export async function mergeAdapters(adapters: LoraAdapter[], optionsInput: unknown, hooks: MergeHooks = {}): Promise<MergeResult> {
  const started = performance.now();
  const options = parseMergeOptions(optionsInput);
  const labels = hooks.labels ?? adapters.map((_, i) => `adapter ${i + 1}`);
  const plan = planMerge(adapters, labels, options);
  const method = plan.method;
  const dtype = options.dtype ?? commonDtype(adapters);
  const checkCancel = () => {
    if (hooks.signal?.aborted) throw new CancelledError('merge cancelled');
  };
  checkCancel();

  const kernel = new MatmulKernel(hooks.compute);
  let pool: DensePool | null = null;
  try {
    const inputsOf = (work: ModuleWork): ModuleInput[] =>
      work.present.map((i) => ({ adapter: i, module: adapters[i]!.modules.get(work.name)!, weight: options.weights[i]! }));
    const cacheBytes = hooks.denseCacheBytes ?? 1 << 30;
    const arena = new TileArena();
    const dense = options.space === 'delta' && DENSE.has(method);
    // methods whose result is (or truncates) the exact sum: their Grams feed an SVD and a near-zero error
    const exact = method === 'cat' || method === 'svd' || (method === 'linear' && (options.space === 'delta' || adapters.length === 1));
    const trims = method === 'ties' || method === 'magnitude_prune';

    let adapterFilters: TopKFilter[] | null = null;
    if (dense && trims && options.trimScope === 'adapter') {
      const mods = plan.modules.map((w) => ({ inputs: inputsOf(w), tiles: () => new DeltaTiles(kernel, inputsOf(w), cacheBytes, arena) }));
      const thresholds = await adapterThresholds(mods, adapters.length, options.density!, (pass, done) => {
        checkCancel();
        hooks.onProgress?.({ phase: 'select', done: (pass - 1) * mods.length + done, total: 2 * mods.length });
      });
      adapterFilters = thresholds.map((t) => new TopKFilter(t));
    }

    const denseJob = (work: ModuleWork): DenseModuleJob => ({
      name: work.name,
      inputs: inputsOf(work),
      options: { method: method as DenseMethod, density: options.density!, signMethod: options.majoritySignMethod, seed: options.seed, cacheBytes },
      rank: options.rank ?? Math.max(...work.present.map((i) => adapters[i]!.modules.get(work.name)!.rank)),
      energy: options.energy,
    });
    // per-tensor dense merges go to worker threads (per-adapter trims carry tie counts from module to module)
    const workers = dense && !adapterFilters && kernel.activeDevice === 'cpu' ? (hooks.compute?.workers ?? defaultWorkers(plan.modules, physicalCores())) : 0;
    pool = workers > 1 ? new DensePool(workers, kernel.activeDevice) : null;
    const ahead = new Map<number, Promise<DenseModuleResult>>();
    /** module idx's result, with the next modules sent ahead so that no thread waits */
    const inFlight = (idx: number): Promise<DenseModuleResult> => {
      for (let j = idx; j <= Math.min(plan.modules.length - 1, idx + pool!.size); j++) {
        if (ahead.has(j)) continue;
        const p = pool!.run(denseJob(plan.modules[j]!));
        p.catch(() => undefined); // awaited in turn; a failure ahead must not count as unhandled
        ahead.set(j, p);
      }
      const p = ahead.get(idx)!;
      ahead.delete(idx);
      return p;
    };

    const modules = new Map<string, LoraModule>();
    const diagnostics: ModuleDiagnostics[] = [];
    const totals: ModuleTotals[] = [];
    const total = plan.modules.length;
    for (let idx = 0; idx < total; idx++) {
      const work = plan.modules[idx]!;
      hooks.onProgress?.({ phase: 'merge', done: idx, total, module: work.name });
      checkCancel();
      const t0 = performance.now();
      const inputs = inputsOf(work);
      const weights = inputs.map((x) => x.weight);
      const stacked = stackFactors(
        inputs.map(({ module: m }) => ({ B: { data: m.B, rows: m.outFeatures, cols: m.rank }, A: { data: m.A, rows: m.rank, cols: m.inFeatures }, scale: m.scaling })),
      );
      const sumRank = stacked.B.cols;
      // the stacked factors themselves are the result: exact up to round-off
      const catForm = method === 'cat' || (options.space === 'delta' && method === 'linear' && options.energy === undefined && (options.rank ?? sumRank) >= sumRank);
      const svdFollows = exact && !catForm;
      let grams = await stackedGrams(kernel, stacked, svdFollows ? 'f64' : 'f32');
      let inner = innerProducts(grams, stacked);
      let targetNormSq = weightedNormSq(inner, weights);

      let merged: MergedFactors;
      let energy: { kept: number; total: number } | null = null;
      if (options.space === 'factors') {
        merged = await mergeFactorsSpace(kernel, method, work.name, inputs, options, stacked, grams);
      } else if (catForm) {
        merged = catFactors(inputs);
      } else if (method === 'linear' || method === 'svd') {
        const res = await lowRankSvd(kernel, stacked, grams, weights, { cap: options.rank ?? sumRank, energy: options.energy, split: 'balanced' });
        merged = { B: res.B, A: res.A, rank: res.rank, retainedEnergy: null, stats: null };
        energy = { kept: res.keptEnergy, total: res.totalEnergy };
      } else {
        const res = pool
          ? await inFlight(idx)
          : await mergeDenseModule(kernel, arena, denseJob(work), adapterFilters && inputs.map((x) => adapterFilters![x.adapter]!));
        merged = { B: res.B, A: res.A, rank: res.rank, retainedEnergy: null, stats: res.stats };
        energy = res.energy;
      }
      if (merged.retainedEnergy !== null && energy === null) energy = { kept: merged.retainedEnergy, total: 1 };

      roundTo(merged.B.data, dtype);
      roundTo(merged.A.data, dtype);
      let errSq: number;
      let mergedNormSq: number;
      // an exact SVD says its error (the energy it cut): when that is small, measure in float64 straight away
      const small = (e: number) => e < 1e-4 * targetNormSq;
      const knownSmall = svdFollows && energy !== null && small(energy.total - energy.kept);
      if (catForm) {
        errSq = await catRoundoffSq(kernel, inputs, merged);
        mergedNormSq = targetNormSq; // equal up to round-off
      } else {
        ({ errSq, mergedNormSq } = await distanceSq(kernel, merged, stacked, weights, targetNormSq, knownSmall ? 'f64' : 'f32'));
      }
      if (!catForm && !knownSmall && small(errSq)) {
        // a small error is below float32's cancellation noise: measure it again in float64
        if (!svdFollows) {
          grams = await stackedGrams(kernel, stacked, 'f64');
          inner = innerProducts(grams, stacked);
          targetNormSq = weightedNormSq(inner, weights);
        }
        ({ errSq, mergedNormSq } = await distanceSq(kernel, merged, stacked, weights, targetNormSq, 'f64'));
      }
      const entries = merged.stats
        ? inputs.length * (options.space === 'factors' ? inputs[0]!.module.A.length + inputs[0]!.module.B.length : work.outFeatures * work.inFeatures)
        : 0;
      const electing = method === 'ties' || method === 'dare_ties';
      diagnostics.push({
        module: work.name,
        rank: merged.rank,
        adapters: work.present,
        relError: targetNormSq > 0 ? round(Math.sqrt(errSq / targetNormSq)) : null,
        retainedEnergy: energy ? round(energy.total > 0 ? energy.kept / energy.total : 1) : null,
        norm: round(Math.sqrt(targetNormSq)),
        mergedNorm: round(Math.sqrt(mergedNormSq)),
        interference: cosines(inner, inputs.length),
        keptFraction: merged.stats && entries > 0 ? round(merged.stats.kept / entries) : null,
        signConflict: merged.stats && electing ? round(merged.stats.contested > 0 ? merged.stats.conflicts / merged.stats.contested : 0) : null,
        seconds: round((performance.now() - t0) / 1000),
      });
      totals.push({ errSq, normSq: targetNormSq, keptEnergy: energy?.kept ?? null, totalEnergy: energy?.total ?? null, inner, adapters: work.present, stats: merged.stats, entries });
      modules.set(work.name, {
        name: work.name,
        kind: work.kind,
        rank: merged.rank,
        alpha: merged.rank,
        scaling: 1,
        inFeatures: work.inFeatures,
        outFeatures: work.outFeatures,
        A: merged.A.data,
        B: merged.B.data,
      });
    }
    hooks.onProgress?.({ phase: 'merge', done: total, total });
    checkCancel();

    const adapter = buildAdapter(adapters, modules, plan.baseModel, dtype);
    const mergeSeconds = (performance.now() - started) / 1000;
    const report: MergeReport = {
      format: 'loraforge-merge-report',
      version: 1,
      createdAt: new Date().toISOString(),
      recipe: { ...options, methodRun: method },
      inputs: adapters.map((a, i) => ({
        label: labels[i]!,
        baseModel: a.config.baseModel,
        rank: Math.max(...[...a.modules.values()].map((m) => m.rank)),
        dtype: a.dtype,
        modules: a.modules.size,
      })),
      output: {
        baseModel: plan.baseModel,
        rank: adapter.config.r,
        dtype,
        modules: modules.size,
        parameters: [...modules.values()].reduce((s, m) => s + m.A.length + m.B.length, 0),
      },
      diagnostics: { overall: overall(diagnostics, totals, adapters.length, method === 'ties' || method === 'dare_ties'), modules: diagnostics },
      warnings: [...plan.warnings, ...adapters.flatMap((a, i) => (a.warnings ?? []).map((w) => `${labels[i]}: ${w}`))],
      device: kernel.activeDevice,
      timings: { mergeSeconds: round(mergeSeconds), secondsPerModule: round(mergeSeconds / total) },
    };
    return { adapter, report };
  } finally {
    await pool?.close();
    await kernel.release();
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

function commonDtype(adapters: LoraAdapter[]): 'F32' | 'F16' | 'BF16' {
  const set = new Set(adapters.map((a) => a.dtype));
  const only = set.size === 1 ? [...set][0] : undefined;
  return only === 'F16' || only === 'BF16' ? only : 'F32';
}

/** Rounds float32 values to what the output dtype will store, so the diagnostics describe the written file. */
function roundTo(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): void {
  if (dtype === 'F16') f16ToF32(f32ToF16(values), values);
  else if (dtype === 'BF16') bf16ToF32(f32ToBf16(values), values);
}

/** Config fields a merged adapter must not inherit: its scaling is baked in, and DoRA/bias state is not merged. */
const NOT_INHERITED = ['use_rslora', 'use_dora', 'lora_bias', 'rank_pattern', 'alpha_pattern', 'r', 'lora_alpha', 'target_modules', 'layers_to_transform', 'layers_pattern', 'modules_to_save'];

function buildAdapter(inputs: LoraAdapter[], modules: Map<string, LoraModule>, baseModel: string | null, dtype: 'F32' | 'F16' | 'BF16'): LoraAdapter {
  const ranks = [...modules.values()].map((m) => m.rank);
  const r = Math.max(...ranks);
  const rankPattern: Record<string, number> = {};
  for (const m of modules.values()) if (m.rank !== r) rankPattern[m.name] = m.rank;
  const savedModules = new Map(inputs.flatMap((a) => [...a.savedModules]));
  const toSave = [...new Set(inputs.flatMap((a) => (a.savedModules.size > 0 ? (a.config.modulesToSave ?? []) : [])))];
  const raw = Object.fromEntries(Object.entries(inputs[0]!.config.raw).filter(([k]) => !NOT_INHERITED.includes(k)));
  const config: AdapterConfig = {
    baseModel,
    r,
    loraAlpha: r,
    targetModules: targetModules(inputs, [...modules.keys()]),
    useRslora: false,
    fanInFanOut: inputs.some((a) => a.config.fanInFanOut),
    rankPattern,
    alphaPattern: { ...rankPattern },
    modulesToSave: toSave.length > 0 ? toSave : null,
    layersToTransform: null,
    layersPattern: null,
    taskType: inputs.find((a) => a.config.taskType)?.config.taskType ?? null,
    raw,
  };
  return { config, modules, savedModules, dtype, warnings: [] };
}

/**
 * The union of the inputs' target module names when they are all plain lists covering whole models; otherwise
 * (a regex or layers_to_transform in some input) a regex matching exactly the merged modules, so PEFT creates
 * LoRA layers only where there are weights.
 */
function targetModules(inputs: LoraAdapter[], names: string[]): string[] | string {
  const plain = inputs.every((a) => Array.isArray(a.config.targetModules) && a.config.layersToTransform == null);
  if (plain) return [...new Set(inputs.flatMap((a) => a.config.targetModules as string[]))].sort();
  return `^(${names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`;
}
