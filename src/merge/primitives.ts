// PEFT's merge primitives (peft/utils/merge_utils.py) on flat float32 tensors, one tensor at a time: top-k and
// random pruning, majority-sign election and the disjoint mean. Factors space applies them to A and B; the
// delta-space dense path runs the same rules fused over tiles of ΔW (dense.ts) and is tested against these.
import { keepThreshold, type StreamKey } from './kernels/prng.js';
import { combineTrimmed, dareInPlace } from './kernels/trim.js';
import { keepTopK, type TopKFilter } from './kernels/select.js';

export type SignMethod = 'total' | 'frequency';

export interface PruneStats {
  /** entries that reach the combination step */
  kept: number;
  /** elements where at least two inputs are non-zero */
  contested: number;
  /** contested elements whose non-zero inputs disagree in sign */
  conflicts: number;
}

/** Magnitude pruning in place: keeps the floor(density·n) largest |x| (density >= 1 keeps all, as PEFT). */
export function magnitudePrune(t: Float32Array, density: number): void {
  if (density >= 1) return;
  keepTopK(t, Math.floor(density * t.length));
}

/**
 * DARE in place: keeps each entry with probability `density` and divides the survivors by it. The mask of entry j
 * is random bit j of the stream (seed, tensor, adapter); `offset` is the index of t[0] in the whole tensor.
 * density >= 1 returns t unchanged (PEFT); density 0 drops everything without dividing by zero (PEFT gives NaN).
 */
export function darePrune(t: Float32Array, density: number, key: StreamKey, offset = 0): void {
  if (density >= 1) return;
  dareInPlace(t, offset, key.k0, key.k1, keepThreshold(density), density > 0 ? 1 / density : 0);
}

/**
 * TIES' elect and disjoint-mean steps over pruned, unweighted tensors: per element the sign of Σ p_i ('total') or
 * of Σ sign(p_i) ('frequency') wins (a zero sum elects +); the result is Σ w_i·p_i over the inputs whose sign
 * won, divided by their count (at least 1). Weights apply after the vote, so a zero weight still counts.
 */
export function electAndMerge(pruned: Float32Array[], weights: number[], method: SignMethod, out: Float32Array, stats?: PruneStats): void {
  trimElectMerge(pruned, null, weights, method, out, stats);
}

/**
 * electAndMerge with an optional top-k trim of each input fused in (filters[i] trims input i as TopKFilter.apply
 * would, carrying its tie count across the chunks of a tensor; the inputs are left as they are). One pass over
 * the elements, each input read once and no temporary arrays: the step-by-step version moved ten times the
 * memory. Float32 roundings are those of the step-by-step version (Math.fround), so results are bit-identical
 * (kernels/trim.ts runs it, four elements at a time).
 */
export function trimElectMerge(
  inputs: Float32Array[],
  filters: TopKFilter[] | null,
  weights: number[],
  method: SignMethod,
  out: Float32Array,
  stats?: PruneStats,
): void {
  trimCombine(inputs, filters, weights, method, out, stats);
}

/** Σ w_i·trim(p_i) into out (magnitude pruning, DARE linear): weightedSum with the same fused trim. */
export function trimWeightedSum(inputs: Float32Array[], filters: TopKFilter[] | null, weights: number[], out: Float32Array, stats?: PruneStats): void {
  trimCombine(inputs, filters, weights, 'sum', out, stats);
}

function trimCombine(
  inputs: Float32Array[],
  filters: TopKFilter[] | null,
  weights: number[],
  method: SignMethod | 'sum',
  out: Float32Array,
  stats?: PruneStats,
): void {
  // an untrimmed input keeps every |x| > 0 (threshold 0) and its zeros stay zeros (endless ties)
  const thresholds = Uint32Array.from(inputs, (_, i) => filters?.[i]!.threshold.bits ?? 0);
  const ties = Float64Array.from(inputs, (_, i) => filters?.[i]!.ties ?? Infinity);
  const counts = combineTrimmed(inputs, thresholds, ties, Float64Array.from(weights), method, out);
  if (filters) filters.forEach((f, i) => f.consumeTies(f.ties - ties[i]!));
  if (stats) {
    stats.kept += counts.kept;
    stats.contested += counts.contested;
    stats.conflicts += counts.conflicts;
  }
}

/** Σ w_i·t_i into out. */
export function weightedSum(tensors: Float32Array[], weights: number[], out: Float32Array): void {
  out.fill(0);
  tensors.forEach((t, i) => {
    const w = weights[i]!;
    for (let j = 0; j < out.length; j++) out[j] = out[j]! + w * t[j]!;
  });
}
