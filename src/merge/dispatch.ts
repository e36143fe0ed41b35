// Module dispatch: each module's job (module-step.ts merges it by the path its method takes), and where it runs:
// in-process, or on the module pool's threads with the next modules sent ahead, the results taken in module
// order. In factor space the next module starts while one waits on ONNX Runtime's products, so the JS thread's
// elementwise work fills those waits. Per-adapter trims (trimScope 'adapter') carry tie counts from
// module to module, so they set up their thresholds first (two passes over every module) and run in turn.
import type { LoraAdapter } from '../formats/peft.js';
import type { MatmulKernel } from './kernels/matmul.js';
import { TopKFilter } from './kernels/select.js';
import { adapterThresholds, DeltaTiles, TileArena } from './dense.js';
import { ModulePool } from './module-pool.js';
import { mergeModule, type ModuleJob, type ModuleOutcome, type OutputDtype } from './module-step.js';
import { moduleWeights } from './layer-groups.js';
import { traitsOf, type MergeMethod, type MergeOptions } from './options.js';
import type { ModuleWork } from './plan.js';

export interface DispatchSetup {
  kernel: MatmulKernel;
  adapters: LoraAdapter[];
  options: MergeOptions;
  /** the method that runs (the plan's) */
  method: MergeMethod;
  modules: ModuleWork[];
  dtype: OutputDtype;
  /** memory for one module's dense ΔW tiles */
  cacheBytes: number;
  /** worker threads (undefined: one per core when the merge is large enough to repay starting them) */
  workers?: number;
  cores: number;
  /** per-adapter threshold selection progress (trimScope 'adapter'); may throw to cancel */
  onSelect?(done: number, total: number): void;
}

export class ModuleDispatch {
  /** in-process scratch: the first for every module, the second for the module started ahead (they alternate) */
  private readonly arenas = [new TileArena(), new TileArena()] as const;
  private readonly ahead = new Map<number, Promise<ModuleOutcome>>();
  private adapterFilters: TopKFilter[] | null = null;
  private pool: ModulePool | null = null;
  /** adapter i's weight in a module: w_i, times its layer group's weight when the recipe has layerWeights */
  private readonly weightOf: (module: string, adapter: number) => number;

  private constructor(private readonly s: DispatchSetup) {
    this.weightOf = moduleWeights(s.options, s.modules.map((w) => w.name));
  }

  /** Prepares the per-adapter thresholds (two passes over every module) or the worker threads. */
  static async start(s: DispatchSetup): Promise<ModuleDispatch> {
    const d = new ModuleDispatch(s);
    const { options, kernel } = s;
    const dense = options.space === 'delta' && !traitsOf(s.method).exact;
    if (dense && traitsOf(s.method).sparsify === 'magnitude' && options.trimScope === 'adapter') {
      const mods = s.modules.map((w) => ({ inputs: d.inputsOf(w), tiles: () => new DeltaTiles(kernel, d.inputsOf(w), s.cacheBytes, d.arenas[0]) }));
      const thresholds = await adapterThresholds(mods, s.adapters.length, options.density!, (pass, done) =>
        s.onSelect?.((pass - 1) * mods.length + done, 2 * mods.length),
      );
      d.adapterFilters = thresholds.map((t) => new TopKFilter(t));
    }
    const workers = !d.adapterFilters && kernel.activeDevice === 'cpu' ? (s.workers ?? (dense ? defaultWorkers(s) : 0)) : 0;
    d.pool = workers > 1 ? new ModulePool(workers, kernel.activeDevice) : null;
    return d;
  }

  /**
   * In-process modules merged two at a time: only in factor space, where the JS thread's elementwise work is most of
   * a module (its scratch is a few MB, not ΔW tiles); the exact svd is mostly products, and two at a time only
   * shared ORT's threads (2.77 s against 2.75 s for four 8B-shaped adapters).
   */
  private get overlap(): boolean {
    return !this.pool && this.s.options.space === 'factors';
  }

  /** Ends the threads, and waits for a module started ahead (its products must end before the kernel is released). */
  async close(): Promise<void> {
    if (!this.pool) await Promise.allSettled(this.ahead.values());
    await this.pool?.close();
  }

  /** Module `idx` of the plan, merged, written as its output dtype stores it, measured and described. */
  merge(idx: number): Promise<ModuleOutcome> {
    if (this.pool) return this.inFlight(idx, (j) => this.pool!.run(this.job(j)), this.pool.size);
    if (this.overlap) return this.inFlight(idx, (j) => this.inProcess(j, this.arenas[j % 2]!), 1);
    return this.inProcess(idx, this.arenas[0]);
  }

  private inProcess(idx: number, arena: TileArena): Promise<ModuleOutcome> {
    const job = this.job(idx);
    const filters = this.adapterFilters && job.inputs.map((x) => this.adapterFilters![x.adapter]!);
    return mergeModule(this.s.kernel, arena, job, filters);
  }

  private inputsOf(work: ModuleWork) {
    return work.present.map((i) => ({ adapter: i, module: this.s.adapters[i]!.modules.get(work.name)!, weight: this.weightOf(work.name, i) }));
  }

  private job(idx: number): ModuleJob {
    const { options, method, adapters, dtype, cacheBytes } = this.s;
    const work = this.s.modules[idx]!;
    return { work, inputs: this.inputsOf(work), method, options, adapterCount: adapters.length, dtype, cacheBytes };
  }

  /**
   * Module idx's result, with the next `lookahead` modules started so that nothing waits. The engine awaits each
   * result before asking for the next, so in-process module j + 2 starts after module j has ended (their arenas
   * alternate).
   */
  private inFlight(idx: number, start: (j: number) => Promise<ModuleOutcome>, lookahead: number): Promise<ModuleOutcome> {
    const modules = this.s.modules;
    for (let j = idx; j <= Math.min(modules.length - 1, idx + lookahead); j++) {
      if (this.ahead.has(j)) continue;
      const p = start(j);
      p.catch(() => undefined); // awaited in turn; a failure ahead must not count as unhandled
      this.ahead.set(j, p);
    }
    const p = this.ahead.get(idx)!;
    this.ahead.delete(idx);
    return p;
  }
}

/**
 * Threads for a dense merge: one per core when it is large enough to repay starting them (a thread takes a
 * fraction of a second to load the engine; 2^26 ΔW entries take seconds), else none. The low-rank paths run
 * in-process: four 8B-shaped adapters' svd or factor-space TIES (1–2 s) ran 1.3× slower on two threads of one
 * ORT thread each than in-process on two, the threads' start-up included.
 */
function defaultWorkers(s: DispatchSetup): number {
  const entries = s.modules.reduce((sum, w) => sum + w.present.length * w.outFeatures * w.inFeatures, 0);
  return entries >= 2 ** 26 ? s.cores : 0;
}
