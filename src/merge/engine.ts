// mergeAdapters: in-memory adapters in, merged adapter and report out. The planner checks the inputs, then each
// module is merged on its own (module-step.ts: by the path its method takes, cast to the output dtype, measured
// against the exact weighted sum and described; dispatch.ts runs it in-process or on worker threads); report.ts
// writes it all up. The signal is checked between modules.
import { CancelledError } from '../errors.js';
import type { AdapterConfig, LoraAdapter, LoraModule } from '../formats/peft.js';
import { MatmulKernel, physicalCores, type ComputeOptions } from './kernels/matmul.js';
import { ModuleDispatch } from './dispatch.js';
import { overall, type ModuleDiagnostics, type ModuleTotals } from './diagnostics.js';
import { planMerge, type ModuleWork } from './plan.js';
import type { MergedFactors } from './factors.js';
import type { OutputDtype } from './module-step.js';
import { parseMergeOptions, traitsOf } from './options.js';
import { buildReport, type MergeReport } from './report.js';

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

export async function mergeAdapters(adapters: LoraAdapter[], optionsInput: unknown, hooks: MergeHooks = {}): Promise<MergeResult> {
  const started = performance.now();
  const options = parseMergeOptions(optionsInput);
  const labels = hooks.labels ?? adapters.map((_, i) => `adapter ${i + 1}`);
  const plan = planMerge(adapters, labels, options);
  const dtype = options.dtype ?? commonDtype(adapters);
  const checkCancel = () => {
    if (hooks.signal?.aborted) throw new CancelledError('merge cancelled');
  };
  checkCancel();

  const kernel = new MatmulKernel(hooks.compute);
  let dispatch: ModuleDispatch | null = null;
  try {
    dispatch = await ModuleDispatch.start({
      kernel,
      adapters,
      options,
      method: plan.method,
      modules: plan.modules,
      dtype,
      cacheBytes: hooks.denseCacheBytes ?? 1 << 30,
      workers: hooks.compute?.workers,
      cores: physicalCores(),
      onSelect: (done, total) => {
        checkCancel();
        hooks.onProgress?.({ phase: 'select', done, total });
      },
    });
    const electSigns = traitsOf(plan.method).electSigns;
    const modules = new Map<string, LoraModule>();
    const diagnostics: ModuleDiagnostics[] = [];
    const totals: ModuleTotals[] = [];
    const total = plan.modules.length;
    for (let idx = 0; idx < total; idx++) {
      const work = plan.modules[idx]!;
      hooks.onProgress?.({ phase: 'merge', done: idx, total, module: work.name });
      checkCancel();
      const m = await dispatch.merge(idx);
      diagnostics.push(m.diagnostics);
      totals.push(m.totals);
      modules.set(work.name, outputModule(work, m.merged));
    }
    hooks.onProgress?.({ phase: 'merge', done: total, total });
    checkCancel();

    const adapter = buildAdapter(adapters, modules, plan.baseModel, dtype);
    const report = buildReport({
      options,
      methodRun: plan.method,
      inputs: adapters,
      labels,
      output: adapter,
      dtype,
      diagnostics: { overall: overall(diagnostics, totals, adapters.length, electSigns), modules: diagnostics },
      warnings: plan.warnings,
      device: kernel.activeDevice,
      mergeSeconds: (performance.now() - started) / 1000,
    });
    return { adapter, report };
  } finally {
    await dispatch?.close();
    await kernel.release();
  }
}

/** The merged factors as a module of the output adapter: alpha = rank, so its scaling 1 is baked in. */
function outputModule(work: ModuleWork, merged: MergedFactors): LoraModule {
  const { name, kind, inFeatures, outFeatures } = work;
  return { name, kind, rank: merged.rank, alpha: merged.rank, scaling: 1, inFeatures, outFeatures, A: merged.A.data, B: merged.B.data };
}

function commonDtype(adapters: LoraAdapter[]): OutputDtype {
  const set = new Set(adapters.map((a) => a.dtype));
  const only = set.size === 1 ? [...set][0] : undefined;
  return only === 'F16' || only === 'BF16' ? only : 'F32';
}

/** Config fields a merged adapter must not inherit: its scaling is baked in, and DoRA/bias state is not merged. */
const NOT_INHERITED = ['use_rslora', 'use_dora', 'lora_bias', 'rank_pattern', 'alpha_pattern', 'r', 'lora_alpha', 'target_modules', 'layers_to_transform', 'layers_pattern', 'modules_to_save'];

function buildAdapter(inputs: LoraAdapter[], modules: Map<string, LoraModule>, baseModel: string | null, dtype: OutputDtype): LoraAdapter {
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
