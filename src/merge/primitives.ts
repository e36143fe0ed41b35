// PEFT's merge primitives (peft/utils/merge_utils.py) on flat float32 tensors, one tensor at a time: top-k and
// random pruning, majority-sign election and the disjoint mean. Factors space applies them to A and B; the
// delta-space dense path runs the same rules fused over tiles of ΔW (dense.ts) and is tested against these.
import { keepThreshold, mix32, type StreamKey } from './kernels/prng.js';
import { keepTopK } from './kernels/select.js';

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
  const cut = keepThreshold(density);
  const scale = density > 0 ? 1 / density : 0;
  const { k0, k1 } = key;
  for (let j = 0; j < t.length; j++) {
    const bits = mix32((mix32(((offset + j) ^ k0) >>> 0) + k1) >>> 0);
    t[j] = bits < cut ? t[j]! * scale : 0;
  }
}

/**
 * TIES' elect and disjoint-mean steps over pruned, unweighted tensors: per element the sign of Σ p_i ('total') or
 * of Σ sign(p_i) ('frequency') wins (a zero sum elects +); the result is Σ w_i·p_i over the inputs whose sign
 * won, divided by their count (at least 1). Weights apply after the vote, so a zero weight still counts.
 */
export function electAndMerge(pruned: Float32Array[], weights: number[], method: SignMethod, out: Float32Array, stats?: PruneStats): void {
  // Branch-free on the float bits (signs are random, so branches would mispredict): counts[j] packs the number
  // of positive (low 16 bits) and negative (high 16 bits) inputs; nz is 1 exactly when |x| > 0.
  const len = out.length;
  if (pruned.length > 0xffff) throw new Error('electAndMerge: at most 65535 inputs');
  const vote = new Float32Array(len);
  const counts = new Uint32Array(len);
  for (const p of pruned) {
    const u = new Uint32Array(p.buffer, p.byteOffset, len);
    for (let j = 0; j < len; j++) {
      const x = u[j]!;
      const nz = ((x & 0x7fffffff) + 0x7fffffff) >>> 31;
      counts[j] = counts[j]! + (nz << ((x >>> 31) << 4));
    }
    if (method === 'total') for (let j = 0; j < len; j++) vote[j] = vote[j]! + p[j]!;
  }
  if (method === 'frequency') for (let j = 0; j < len; j++) vote[j] = (counts[j]! & 0xffff) - (counts[j]! >>> 16);
  const uv = new Uint32Array(vote.buffer); // a zero vote is +0 here, so it elects +
  out.fill(0);
  for (let i = 0; i < pruned.length; i++) {
    const p = pruned[i]!;
    const u = new Uint32Array(p.buffer, p.byteOffset, len);
    const w = weights[i]!;
    for (let j = 0; j < len; j++) {
      const x = u[j]!;
      const agree = (((x & 0x7fffffff) + 0x7fffffff) >>> 31) & (((x ^ uv[j]!) >>> 31) ^ 1);
      out[j] = out[j]! + w * p[j]! * agree;
    }
  }
  let kept = 0;
  let contested = 0;
  let conflicts = 0;
  for (let j = 0; j < len; j++) {
    const c = counts[j]!;
    const count = (c >>> ((uv[j]! >>> 31) << 4)) & 0xffff;
    out[j] = out[j]! / (count + ((count - 1) >>> 31));
    kept += count;
    const pos = c & 0xffff;
    const neg = c >>> 16;
    contested += +(pos + neg > 1);
    conflicts += +(pos > 0 && neg > 0);
  }
  if (stats) {
    stats.kept += kept;
    stats.contested += contested;
    stats.conflicts += conflicts;
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

export function countNonZero(t: Float32Array): number {
  let c = 0;
  for (let j = 0; j < t.length; j++) c += +(t[j] !== 0);
  return c;
}
