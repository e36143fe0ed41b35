// Delta space, dense path (the methods that are not exact: ties, dare_*, magnitude_prune): they act on the
// entries of each adapter's true update ΔW_i = s_i·B_i·A_i, so ΔW_i is built (in ONNX Runtime) a tile of rows at a
// time, trimmed by an exact radix-select threshold or dropped by counter-based DARE masks, combined into the merged
// M, and M is re-factored to a LoRA by a randomized SVD. One module's tiles are cached while they fit `cacheBytes`;
// otherwise each pass rebuilds them. Only one module's M is alive at a time: the merge streams module by module.
import type { Mat32, MatmulKernel } from './kernels/matmul.js';
import { scaled } from './kernels/lowrank-svd.js';
import { randomizedSvd } from './kernels/randomized-svd.js';
import { streamKey } from './kernels/prng.js';
import { MagnitudeSelector, TopKFilter, type Threshold } from './kernels/select.js';
import { darePrune, trimElectMerge, trimWeightedSum, type PruneStats, type SignMethod } from './primitives.js';
import type { ModuleInput } from './factors.js';
import { traitsOf, type MergeMethod } from './options.js';

export interface DenseOptions {
  /** a method that is not exact (its traits say how it prunes and whether it elects signs) */
  method: MergeMethod;
  density: number;
  signMethod: SignMethod;
  seed: number;
  /** memory for caching one module's ΔW tiles (bytes) */
  cacheBytes: number;
}

/**
 * Buffers reused from module to module: a fresh 64 MiB array per ΔW_i costs page faults, zeroing and garbage
 * collection, and ORT writes the tiles straight into these (no copy of its output). Slots 0 … n are the dense
 * path's tiles; named slots hold other per-module scratch (the stacked factors).
 */
export class TileArena {
  private readonly buffers = new Map<number | string, Float32Array>();

  /** `length` values of buffer `slot`, valid until the slot is asked for again; the contents are left over. */
  get(slot: number | string, length: number): Float32Array {
    let b = this.buffers.get(slot);
    if (!b || b.length < length) {
      b = new Float32Array(length);
      this.buffers.set(slot, b);
    }
    return b.subarray(0, length);
  }
}

/** Streams the row tiles of each input's ΔW_i, rebuilding them per pass unless they fit the cache. */
export class DeltaTiles {
  readonly out: number;
  readonly inn: number;
  readonly tileRows: number;
  private readonly scaledB: Float32Array[];
  private cache: Float32Array[] | null = null;

  constructor(
    private readonly kernel: MatmulKernel,
    private readonly inputs: ModuleInput[],
    cacheBytes: number,
    /** where the tiles live: slots 0 … n−1, and slot n for the merged M (one module at a time) */
    readonly arena: TileArena = new TileArena(),
  ) {
    const m = inputs[0]!.module;
    this.out = m.outFeatures;
    this.inn = m.inFeatures;
    const perRow = inputs.length * this.inn * 4;
    this.tileRows = Math.max(1, Math.min(this.out, Math.floor(cacheBytes / perRow)));
    this.scaledB = inputs.map(({ module: x }) => scaled(x.B, x.scaling));
  }

  get cached(): boolean {
    return this.tileRows === this.out;
  }

  /**
   * Calls fn(tiles, row0) for each row tile: tiles[i] holds ΔW_i's rows [row0, row0 + rows). A pass that
   * mutates the tiles (trimming in place) must be the last one to read a cached module.
   */
  async forEach(fn: (tiles: Float32Array[], row0: number) => Promise<void> | void, mutates: boolean): Promise<void> {
    if (this.cache) {
      const tiles = this.cache;
      if (mutates) this.cache = null;
      await fn(tiles, 0);
      return;
    }
    for (let row0 = 0; row0 < this.out; row0 += this.tileRows) {
      const rows = Math.min(this.tileRows, this.out - row0);
      const tiles: Float32Array[] = [];
      for (let i = 0; i < this.inputs.length; i++) {
        const m = this.inputs[i]!.module;
        const b: Mat32 = { data: this.scaledB[i]!.subarray(row0 * m.rank, (row0 + rows) * m.rank), rows, cols: m.rank };
        tiles.push((await this.kernel.gemm(b, { data: m.A, rows: m.rank, cols: this.inn }, {}, this.arena.get(i, rows * this.inn))).data);
      }
      if (this.cached && !mutates) this.cache = tiles;
      await fn(tiles, row0);
    }
  }
}

export interface DenseResult {
  merged: Mat32;
  /** ‖M‖² */
  normSq: number;
  stats: PruneStats;
}

/** Per-tensor top-k thresholds of each input (k = floor(density·numel)), two radix passes over the tiles. */
export async function tensorThresholds(tiles: DeltaTiles, n: number, density: number): Promise<Threshold[]> {
  const k = Math.floor(density * tiles.out * tiles.inn);
  const selectors = Array.from({ length: n }, () => new MagnitudeSelector(k));
  await tiles.forEach((t) => t.forEach((x, i) => selectors[i]!.addPass1(x)), false);
  const second = selectors.map((s) => s.startPass2());
  if (second.some(Boolean)) await tiles.forEach((t) => t.forEach((x, i) => second[i] && selectors[i]!.addPass2(x)), false);
  return selectors.map((s) => s.result());
}

/**
 * Builds M for one module. `filters` (one per input) carry the trim state of ties/magnitude_prune; they come
 * from tensorThresholds, or for trimScope 'adapter' from one threshold per adapter over all its modules.
 */
export async function denseMerge(
  tiles: DeltaTiles,
  moduleName: string,
  inputs: ModuleInput[],
  opts: DenseOptions,
  filters: TopKFilter[] | null,
): Promise<DenseResult> {
  const { out, inn } = tiles;
  const n = inputs.length;
  const merged = tiles.arena.get(n, out * inn);
  const stats: PruneStats = { kept: 0, contested: 0, conflicts: 0 };
  const weights = inputs.map((x) => x.weight);
  const { sparsify, electSigns } = traitsOf(opts.method);
  const dare = sparsify === 'random';
  const keys = inputs.map((x) => streamKey(opts.seed, moduleName, x.adapter));

  await tiles.forEach((t, row0) => {
    const len = t[0]!.length;
    const m = merged.subarray(row0 * inn, row0 * inn + len);
    if (dare) for (let i = 0; i < n; i++) darePrune(t[i]!, opts.density, keys[i]!, row0 * inn);
    const trims = dare ? null : filters;
    if (electSigns) trimElectMerge(t, trims, weights, opts.signMethod, m, stats);
    else trimWeightedSum(t, trims, weights, m, stats);
  }, true);

  let normSq = 0;
  for (let j = 0; j < merged.length; j++) normSq += merged[j]! * merged[j]!;
  return { merged: { data: merged, rows: out, cols: inn }, normSq, stats };
}

/** Thresholds over all modules of each adapter (trimScope 'adapter'): k_i = floor(density·Σ numel). */
export async function adapterThresholds(
  modules: { tiles: () => DeltaTiles; inputs: ModuleInput[] }[],
  adapters: number,
  density: number,
  onModule?: (pass: number, done: number) => void,
): Promise<Threshold[]> {
  const totals = new Array<number>(adapters).fill(0);
  for (const mod of modules) for (const x of mod.inputs) totals[x.adapter] += x.module.outFeatures * x.module.inFeatures;
  const selectors = totals.map((t) => new MagnitudeSelector(Math.floor(density * t)));
  let done = 0;
  for (const mod of modules) {
    await mod.tiles().forEach((t) => t.forEach((x, i) => selectors[mod.inputs[i]!.adapter]!.addPass1(x)), false);
    onModule?.(1, ++done);
  }
  const second = selectors.map((s) => s.startPass2());
  done = 0;
  if (second.some(Boolean)) {
    for (const mod of modules) {
      await mod.tiles().forEach(
        (t) =>
          t.forEach((x, i) => {
            const a = mod.inputs[i]!.adapter;
            if (second[a]) selectors[a]!.addPass2(x);
          }),
        false,
      );
      onModule?.(2, ++done);
    }
  }
  return selectors.map((s) => s.result());
}

/** One module of a dense merge: everything mergeDenseModule needs, plain data (it crosses to worker threads). */
export interface DenseModuleJob {
  name: string;
  inputs: ModuleInput[];
  options: DenseOptions;
  /** rank cap and optional energy share of the randomized SVD */
  rank: number;
  energy?: number;
}

export interface DenseModuleResult {
  B: Mat32;
  A: Mat32;
  rank: number;
  stats: PruneStats;
  /** Σσ² kept by the rank cut, and ‖M‖² */
  energy: { kept: number; total: number };
}

/**
 * Merges one module in delta space by a pruning method and re-factors M by a randomized SVD. `filters` carry
 * per-adapter trims (trimScope 'adapter'); without them ties and magnitude_prune trim per tensor.
 */
export async function mergeDenseModule(kernel: MatmulKernel, arena: TileArena, job: DenseModuleJob, filters: TopKFilter[] | null): Promise<DenseModuleResult> {
  const { inputs, options: o } = job;
  const tiles = new DeltaTiles(kernel, inputs, o.cacheBytes, arena);
  if (traitsOf(o.method).sparsify === 'magnitude' && !filters) filters = (await tensorThresholds(tiles, inputs.length, o.density)).map((t) => new TopKFilter(t));
  const dm = await denseMerge(tiles, job.name, inputs, o, filters);
  const res = await randomizedSvd(kernel, dm.merged, {
    cap: job.rank,
    energy: job.energy,
    totalEnergy: dm.normSq,
    key: streamKey(o.seed, `${job.name}#range`, 0),
    split: 'balanced',
  });
  return { B: res.B, A: res.A, rank: res.rank, stats: dm.stats, energy: { kept: res.keptEnergy, total: res.totalEnergy } };
}
