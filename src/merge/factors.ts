// Factors space: PEFT's LoraModel.add_weighted_adapter, reproduced rule for rule (docs/MERGE.md), except where
// PEFT is wrong: scaling applied once in svd, density 0 never NaN. A and B are merged separately with
// c_i = w_i·s_i split as sign(c_i)·√|c_i| on A and √|c_i| on B; cat stacks; svd is the exact low-rank SVD.
import type { LoraModule } from '../formats/peft.js';
import type { Mat32, MatmulKernel } from './kernels/matmul.js';
import { streamKey } from './kernels/prng.js';
import { lowRankSvd, type Grams, type Stacked } from './kernels/lowrank-svd.js';
import { darePrune, trimElectMerge, trimWeightedSum, weightedSum, type PruneStats } from './primitives.js';
import { selectMagnitude, TopKFilter } from './kernels/select.js';
import { traitsOf, type MergeMethod, type MergeOptions } from './options.js';

export interface ModuleInput {
  /** index of the adapter in the merge's input list */
  adapter: number;
  module: LoraModule;
  weight: number;
}

export interface MergedFactors {
  B: Mat32;
  A: Mat32;
  rank: number;
  /** share of ‖·‖² kept by an SVD truncation; null when nothing was truncated */
  retainedEnergy: number | null;
  stats: PruneStats | null;
}

/**
 * The cat stack B' = [B_1 … B_n] (out×Σr_i), A' = [c_1A_1; …; c_nA_n] with c_i = w_i·s_i, A' in float64 (cat
 * rounds it to float32; the diagnostics measure that rounding).
 */
export function catStack(inputs: ModuleInput[]): { B: Float32Array; A: Float64Array; rank: number } {
  const out = inputs[0]!.module.outFeatures;
  const inn = inputs[0]!.module.inFeatures;
  const rank = inputs.reduce((s, x) => s + x.module.rank, 0);
  const A = new Float64Array(rank * inn);
  const B = new Float32Array(out * rank);
  let off = 0;
  for (const { module: m, weight } of inputs) {
    const c = weight * m.scaling;
    const r = m.rank;
    const a = m.A;
    const b = m.B;
    const base = off * inn;
    for (let j = 0; j < r * inn; j++) A[base + j] = c * a[j]!;
    for (let row = 0; row < out; row++) for (let j = 0; j < r; j++) B[row * rank + off + j] = b[row * r + j]!;
    off += r;
  }
  return { B, A, rank };
}

/** cat: the stack itself; exact, rank Σr_i, in both spaces. */
export function catFactors(inputs: ModuleInput[]): MergedFactors {
  const out = inputs[0]!.module.outFeatures;
  const inn = inputs[0]!.module.inFeatures;
  const { B, A, rank } = catStack(inputs);
  return { B: { data: B, rows: out, cols: rank }, A: { data: new Float32Array(A), rows: rank, cols: inn }, rank, retainedEnergy: null, stats: null };
}

export async function mergeFactorsSpace(
  kernel: MatmulKernel,
  method: MergeMethod,
  moduleName: string,
  inputs: ModuleInput[],
  options: MergeOptions,
  stacked: Stacked,
  grams: Grams,
): Promise<MergedFactors> {
  const traits = traitsOf(method);
  if (traits.factors === 'stack') return catFactors(inputs);
  const out = inputs[0]!.module.outFeatures;
  const inn = inputs[0]!.module.inFeatures;
  if (traits.factors === 'svd') {
    // PEFT's default rank is max r_i; its layout puts the singular values in B
    const cap = options.rank ?? Math.max(...inputs.map((x) => x.module.rank));
    const res = await lowRankSvd(kernel, stacked, grams, inputs.map((x) => x.weight), { cap, energy: options.energy, split: 'peft' });
    return { B: res.B, A: res.A, rank: res.rank, retainedEnergy: res.totalEnergy > 0 ? res.keptEnergy / res.totalEnergy : 1, stats: null };
  }
  const c = inputs.map((x) => x.weight * x.module.scaling);
  const aWeights = c.map((ci) => (ci < 0 ? -1 : 1) * Math.sqrt(Math.abs(ci)));
  const bWeights = c.map((ci) => Math.sqrt(Math.abs(ci)));
  const rank = inputs[0]!.module.rank;
  const stats: PruneStats = { kept: 0, contested: 0, conflicts: 0 };
  const A = combine(method, moduleName, 'lora_A', inputs, inputs.map((x) => x.module.A), aWeights, options, stats);
  const B = combine(method, moduleName, 'lora_B', inputs, inputs.map((x) => x.module.B), bWeights, options, stats);
  return {
    B: { data: B, rows: out, cols: rank },
    A: { data: A, rows: rank, cols: inn },
    rank,
    retainedEnergy: null,
    stats: traits.sparsify === 'none' && !traits.electSigns ? null : stats,
  };
}

/** One of PEFT's task-arithmetic combinations over same-shaped tensors (the A's, or the B's). */
function combine(
  method: MergeMethod,
  moduleName: string,
  tensorName: string,
  inputs: ModuleInput[],
  tensors: Float32Array[],
  weights: number[],
  options: MergeOptions,
  stats: PruneStats,
): Float32Array {
  const { sparsify, electSigns } = traitsOf(method);
  const out = new Float32Array(tensors[0]!.length);
  if (sparsify === 'none' && !electSigns) {
    weightedSum(tensors, weights, out);
    return out;
  }
  const density = options.density!;
  let filters: TopKFilter[] | null = null;
  if (sparsify === 'magnitude' && density < 1) {
    // the trim is fused into the combination (no pruned copies); density >= 1 keeps everything, as PEFT
    filters = tensors.map((t) => new TopKFilter(selectMagnitude(t, Math.floor(density * t.length))));
  } else if (sparsify === 'random') {
    tensors = tensors.map((t, i) => {
      const p = Float32Array.from(t);
      darePrune(p, density, streamKey(options.seed, `${moduleName}.${tensorName}`, inputs[i]!.adapter));
      return p;
    });
  }
  if (electSigns) trimElectMerge(tensors, filters, weights, options.majoritySignMethod, out, stats);
  else trimWeightedSum(tensors, filters, weights, out, stats);
  return out;
}
