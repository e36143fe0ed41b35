// What a merge kept, per module and overall: relative error of the written update against the exact weighted
// sum ΔW* = Σ w_i·s_i·B_i·A_i, the energy kept by a rank cut, how much the adapters overlap (cosines of their
// updates), and for the pruning methods how many entries survived and how often signs fought. Everything is
// computed in low-rank form from r×r Gram products; no out×in matrix is formed for it.
import type { Mat32, MatmulKernel, Precision } from './kernels/matmul.js';
import type { Stacked } from './kernels/lowrank-svd.js';
import type { PruneStats } from './primitives.js';
import { catStack, type ModuleInput } from './factors.js';
import type { DispatchedModule } from './module-step.js';
import type { ModuleError } from './measure.js';

export interface ModuleDiagnostics {
  module: string;
  rank: number;
  /** input indices of the adapters that have this module */
  adapters: number[];
  /** ‖ΔW' − ΔW*‖ / ‖ΔW*‖ for the update as written (after the cast to the output dtype); null when ΔW* = 0 */
  relError: number | null;
  /** share of Σσ² kept by the rank cut of an SVD (1 when nothing was cut); null when no SVD ran */
  retainedEnergy: number | null;
  /** ‖ΔW*‖ and ‖ΔW'‖ (Frobenius) */
  norm: number;
  mergedNorm: number;
  /** cos(ΔW_i, ΔW_j) for the adapters in `adapters`, in that order */
  interference: number[][];
  /** share of entries (over all present adapters) that reach the combination after trimming/dropping and, for TIES, the sign vote */
  keptFraction: number | null;
  /** share of entries with two or more non-zero inputs whose signs disagree (ties, dare_ties) */
  signConflict: number | null;
  /** from the module's start to its end; factor-space modules run two at a time in-process, so theirs overlap */
  seconds: number;
}

export interface OverallDiagnostics {
  /** the same measures over all modules taken as one vector */
  relError: number | null;
  retainedEnergy: number | null;
  /** whole-adapter cosines, n×n over the inputs (null for a pair that shares no module) */
  interference: (number | null)[][];
  keptFraction: number | null;
  signConflict: number | null;
  modules: number;
  /** the modules with the largest relative error, worst first */
  worstModules: { module: string; relError: number }[];
}

/** Pieces each module contributes to the overall figures. */
export interface ModuleTotals {
  errSq: number;
  normSq: number;
  keptEnergy: number | null;
  totalEnergy: number | null;
  inner: Float64Array;
  adapters: number[];
  stats: PruneStats | null;
  entries: number;
}

/**
 * ‖B'A' − Σ w_i·B̃_i·Ã_i‖² by Gram products (B̃ holding the scaled B_i): ‖X‖² − 2⟨X,Y⟩ + ‖Y‖², with
 * ‖X‖² = tr(B'ᵀB'·A'A'ᵀ) and ⟨X,Y⟩ = Σ_q w_q·(B'ᵀB̃)_pq·(ÃA'ᵀ)_qp: four products on the factors as they are, in
 * one run (concatenating [B' B̃] to do it in two cost more in copying than the two extra products). In float32
 * the cancellation leaves ~1e-7·‖ΔW*‖² of noise, so a small error must be measured in float64 (the caller retries).
 */
export async function distanceSq(
  kernel: MatmulKernel,
  merged: { B: Mat32; A: Mat32 },
  s: Stacked,
  weights: number[],
  targetNormSq: number,
  precision: Precision = 'f64',
): Promise<{ errSq: number; mergedNormSq: number }> {
  const k = merged.A.rows;
  const R = s.B.cols;
  const [bb, bs, aa, as] = (
    await kernel.products(
      [merged.B, s.B, merged.A, s.A],
      [
        { a: 0, b: 0, transA: true }, // k×k
        { a: 0, b: 1, transA: true }, // k×R
        { a: 2, b: 2, transB: true }, // k×k
        { a: 3, b: 2, transB: true }, // R×k
      ],
      precision,
    )
  ).map((p) => p.data);
  let mergedNormSq = 0;
  for (let p = 0; p < k; p++) for (let q = 0; q < k; q++) mergedNormSq += bb[p * k + q]! * aa[q * k + p]!;
  const rowWeight = new Float64Array(R);
  s.offsets.forEach((off, i) => rowWeight.fill(weights[i]!, off, off + s.ranks[i]!));
  let cross = 0;
  for (let p = 0; p < k; p++) for (let q = 0; q < R; q++) cross += bs[p * R + q]! * rowWeight[q]! * as[q * k + p]!;
  return { errSq: Math.max(0, mergedNormSq - 2 * cross + targetNormSq), mergedNormSq: Math.max(0, mergedNormSq) };
}

/** A merged module's diagnostics, and what it adds to the overall figures. */
export function moduleDiagnostics(
  m: DispatchedModule,
  e: ModuleError,
  space: 'delta' | 'factors',
  electSigns: boolean,
  seconds: number,
): { diagnostics: ModuleDiagnostics; totals: ModuleTotals } {
  const { work, inputs, merged, energy } = m;
  const { errSq, mergedNormSq, targetNormSq, inner } = e;
  // entries the pruning saw: the A's and B's in factors space, the ΔW_i in delta space
  const entries = merged.stats
    ? inputs.length * (space === 'factors' ? inputs[0]!.module.A.length + inputs[0]!.module.B.length : work.outFeatures * work.inFeatures)
    : 0;
  const diagnostics: ModuleDiagnostics = {
    module: work.name,
    rank: merged.rank,
    adapters: work.present,
    relError: targetNormSq > 0 ? round(Math.sqrt(errSq / targetNormSq)) : null,
    retainedEnergy: energy ? round(energy.total > 0 ? energy.kept / energy.total : 1) : null,
    norm: round(Math.sqrt(targetNormSq)),
    mergedNorm: round(Math.sqrt(mergedNormSq)),
    interference: cosines(inner, inputs.length),
    keptFraction: merged.stats && entries > 0 ? round(merged.stats.kept / entries) : null,
    signConflict: merged.stats && electSigns ? round(merged.stats.contested > 0 ? merged.stats.conflicts / merged.stats.contested : 0) : null,
    seconds: round(seconds),
  };
  const totals: ModuleTotals = {
    errSq,
    normSq: targetNormSq,
    keptEnergy: energy?.kept ?? null,
    totalEnergy: energy?.total ?? null,
    inner,
    adapters: work.present,
    stats: merged.stats,
    entries,
  };
  return { diagnostics, totals };
}

export function cosines(inner: Float64Array, n: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    out.push([]);
    for (let j = 0; j < n; j++) {
      const d = Math.sqrt(inner[i * n + i]! * inner[j * n + j]!);
      out[i]!.push(d > 0 ? round(inner[i * n + j]! / d) : 0);
    }
  }
  return out;
}

export function overall(modules: ModuleDiagnostics[], totals: ModuleTotals[], adapters: number, electing: boolean): OverallDiagnostics {
  let errSq = 0;
  let normSq = 0;
  let kept = 0;
  let total = 0;
  let energyKnown = false;
  let keptEntries = 0;
  let entries = 0;
  let contested = 0;
  let conflicts = 0;
  let pruned = false;
  const inner = new Float64Array(adapters * adapters);
  const shared = new Uint8Array(adapters * adapters);
  for (const t of totals) {
    errSq += t.errSq;
    normSq += t.normSq;
    if (t.keptEnergy !== null && t.totalEnergy !== null) {
      energyKnown = true;
      kept += t.keptEnergy;
      total += t.totalEnergy;
    }
    if (t.stats) {
      pruned = true;
      keptEntries += t.stats.kept;
      entries += t.entries;
      contested += t.stats.contested;
      conflicts += t.stats.conflicts;
    }
    const m = t.adapters.length;
    for (let a = 0; a < m; a++)
      for (let b = 0; b < m; b++) {
        const i = t.adapters[a]!;
        const j = t.adapters[b]!;
        inner[i * adapters + j] = inner[i * adapters + j]! + t.inner[a * m + b]!;
        shared[i * adapters + j] = 1;
      }
  }
  const interference: (number | null)[][] = [];
  for (let i = 0; i < adapters; i++) {
    interference.push([]);
    for (let j = 0; j < adapters; j++) {
      const d = Math.sqrt(inner[i * adapters + i]! * inner[j * adapters + j]!);
      interference[i]!.push(shared[i * adapters + j] && d > 0 ? round(inner[i * adapters + j]! / d) : null);
    }
  }
  const worstModules = modules
    .filter((m) => m.relError !== null)
    .sort((a, b) => b.relError! - a.relError!)
    .slice(0, 5)
    .map((m) => ({ module: m.module, relError: m.relError! }));
  return {
    relError: normSq > 0 ? round(Math.sqrt(errSq / normSq)) : null,
    retainedEnergy: energyKnown ? round(total > 0 ? kept / total : 1) : null,
    interference,
    keptFraction: pruned && entries > 0 ? round(keptEntries / entries) : null,
    signConflict: electing ? round(contested > 0 ? conflicts / contested : 0) : null,
    modules: modules.length,
    worstModules,
  };
}

/** Six significant digits: enough to read, small in JSON. */
export function round(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(6)) : x;
}

/**
 * ‖ΔW' − ΔW*‖² for the cat form (B' = [B_1 … B_n], A' = [c_1A_1; …; c_nA_n]) as written: the only error is
 * round-off (c_i·A_i in float32, then the cast to the output dtype), so it is computed from the round-off
 * itself, ΔW' − ΔW* = B·δA + δB·A', with no cancellation: float32 products are enough.
 */
export async function catRoundoffSq(kernel: MatmulKernel, inputs: ModuleInput[], merged: { B: Mat32; A: Mat32 }): Promise<number> {
  const R = merged.A.rows;
  const inn = merged.A.cols;
  const out = merged.B.rows;
  const w = 2 * R;
  const exact = catStack(inputs); // c_i·A_i in float64: its float32 rounding is part of the error
  const x = new Float32Array(out * w); // [B | δB]
  const y = new Float32Array(w * inn); // [δA; A']
  y.set(merged.A.data, R * inn);
  for (let j = 0; j < R * inn; j++) y[j] = merged.A.data[j]! - exact.A[j]!;
  for (let row = 0; row < out; row++)
    for (let j = 0; j < R; j++) {
      const b = exact.B[row * R + j]!;
      x[row * w + j] = b;
      x[row * w + R + j] = merged.B.data[row * R + j]! - b;
    }
  const gx = (await kernel.gemm({ data: x, rows: out, cols: w }, { data: x, rows: out, cols: w }, { transA: true })).data;
  const gy = (await kernel.gemm({ data: y, rows: w, cols: inn }, { data: y, rows: w, cols: inn }, { transB: true })).data;
  let s = 0;
  for (let i = 0; i < w * w; i++) s += gx[i]! * gy[i]!; // both symmetric: tr(GX·GY) = Σ gx_ij·gy_ij
  return Math.max(0, s);
}
