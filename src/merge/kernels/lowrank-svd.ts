// Exact SVD of a weighted sum of low-rank products Δ = Σ w_i·B_i·A_i without ever forming Δ (out×in).
// Stack B̃ = [B_1 … B_n] (out×R) and Ã = [A_1; …; A_n] (R×in), R = Σr_i. A Cholesky QR of Ãᵀ (pivoted, so
// linearly dependent rows are dropped) gives ÃÃᵀ = F·Fᵀ and Ãᵀ = Q_A·Fᵀ with Q_A orthonormal; then
// Δ = (B̃_w·F)·Q_Aᵀ and the singular values of Δ are those of the out×ρ matrix B̃_w·F, whose Gram
// K = Fᵀ·(B̃ᵀB̃)_w·F is only ρ×ρ. So the whole SVD costs two Grams (O((out+in)R²), float64 in ONNX Runtime),
// one small eigensolve, and the two projections that write the result: B' = B̃·T_B, A' = T_Aᵀ·Ã.
import type { Mat32, MatmulKernel, Precision } from './matmul.js';
import { symmetricEigen } from './eigen.js';
import { cholesky, multiply, pivotedCholesky, solveRowsCholesky } from './small.js';

export interface Factor {
  /** out×r */
  B: Mat32;
  /** r×in */
  A: Mat32;
  /** multiplies B while stacking (the LoRA scaling s_i; default 1) */
  scale?: number;
}

/** s·x as a new array (a plain loop: TypedArray.map with a closure is several times slower). */
export function scaled(x: Float32Array, s: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = s * x[i]!;
  return out;
}

export interface Stacked {
  B: Mat32;
  A: Mat32;
  /** the column (of B̃) / row (of Ã) where each factor's block starts, and its rank */
  offsets: number[];
  ranks: number[];
}

/**
 * Where a stack is written: every value is overwritten, so `alloc` may hand out reused memory (a module's stack is
 * megabytes, and fresh arrays for each of hundreds of modules cost page faults and collections: a fifth of a
 * factor-space TIES merge of four 8B-shaped adapters).
 */
export type StackAlloc = (which: 'B' | 'A', length: number) => Float32Array;

const freshArrays: StackAlloc = (_, length) => new Float32Array(length);

export function stackFactors(factors: Factor[], alloc: StackAlloc = freshArrays): Stacked {
  const out = factors[0]!.B.rows;
  const inn = factors[0]!.A.cols;
  const ranks = factors.map((f) => f.A.rows);
  const total = ranks.reduce((a, b) => a + b, 0);
  const offsets: number[] = [];
  const b = alloc('B', out * total);
  const a = alloc('A', total * inn);
  let off = 0;
  for (const f of factors) {
    const r = f.A.rows;
    offsets.push(off);
    const src = f.B.data;
    const c = f.scale ?? 1;
    for (let row = 0; row < out; row++) for (let j = 0; j < r; j++) b[row * total + off + j] = c * src[row * r + j]!;
    a.set(f.A.data, off * inn);
    off += r;
  }
  return { B: { data: b, rows: out, cols: total }, A: { data: a, rows: total, cols: inn }, offsets, ranks };
}

export interface Grams {
  /** B̃ᵀB̃, R×R */
  gb: Float64Array;
  /** ÃÃᵀ, R×R */
  ga: Float64Array;
  size: number;
}


/**
 * B̃ᵀB̃ and ÃÃᵀ. float64 where small singular values or a cancellation matter (exact merges, the SVD);
 * float32 (MLAS sgemm, several times faster) is enough for norms and cosines.
 */
export async function stackedGrams(kernel: MatmulKernel, s: Stacked, precision: Precision = 'f64'): Promise<Grams> {
  const [gb, ga] = await kernel.products(
    [s.B, s.A],
    [
      { a: 0, b: 0, transA: true },
      { a: 1, b: 1, transB: true },
    ],
    precision,
  );
  const f64 = (x: Float32Array | Float64Array) => (x instanceof Float64Array ? x : Float64Array.from(x));
  return { gb: f64(gb!.data), ga: f64(ga!.data), size: s.B.cols };
}

/** ⟨Δ_i, Δ_j⟩_F = tr(B_iᵀB_j·A_jA_iᵀ) for every pair, from the block Grams (n×n, row-major). */
export function innerProducts(g: Grams, s: Stacked): Float64Array {
  const n = s.ranks.length;
  const R = g.size;
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let t = 0;
      for (let p = s.offsets[i]!; p < s.offsets[i]! + s.ranks[i]!; p++)
        for (let q = s.offsets[j]!; q < s.offsets[j]! + s.ranks[j]!; q++) t += g.gb[p * R + q]! * g.ga[q * R + p]!;
      out[i * n + j] = t;
      out[j * n + i] = t;
    }
  }
  return out;
}

/** ‖Σ w_i Δ_i‖² from the pairwise inner products. */
export function weightedNormSq(inner: Float64Array, weights: number[]): number {
  const n = weights.length;
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s += weights[i]! * weights[j]! * inner[i * n + j]!;
  return Math.max(0, s);
}

/**
 * The rank to keep: `cap`, or with `energy` the smallest k whose Σ_{j<k}σ_j² reaches that share of `total`
 * (capped). Never below 1: PEFT cannot load a rank-0 module.
 */
export function chooseRank(sigma: Float64Array, cap: number, total: number, energy?: number): number {
  const limit = Math.max(1, cap);
  if (energy === undefined) return limit;
  let acc = 0;
  for (let k = 0; k < Math.min(limit, sigma.length); k++) {
    acc += sigma[k]! ** 2;
    if (acc >= energy * total) return k + 1;
  }
  return limit;
}

export interface LowRankResult {
  B: Mat32;
  A: Mat32;
  /** every singular value of Δ, largest first (length ρ ≤ R) */
  sigma: Float64Array;
  rank: number;
  /** Σσ² = ‖Δ‖² */
  totalEnergy: number;
  /** Σ_{j<rank}σ_j² */
  keptEnergy: number;
}

export interface SvdSplit {
  /** 'balanced': B' = U√S, A' = √S·Vᵀ (even magnitudes, kind to F16/BF16); 'peft': B' = U·S, A' = Vᵀ as PEFT does */
  split: 'balanced' | 'peft';
}

/** Exact truncated SVD of Σ w_i·B_i·A_i (B_i carrying its scaling) to `cap` (or the `energy` rank). */
export async function lowRankSvd(
  kernel: MatmulKernel,
  s: Stacked,
  g: Grams,
  weights: number[],
  opts: { cap: number; energy?: number } & SvdSplit,
): Promise<LowRankResult> {
  const R = g.size;
  const rowWeight = new Float64Array(R);
  s.offsets.forEach((off, i) => rowWeight.fill(weights[i]!, off, off + s.ranks[i]!));
  const gbw = new Float64Array(R * R);
  for (let p = 0; p < R; p++) for (let q = 0; q < R; q++) gbw[p * R + q] = rowWeight[p]! * rowWeight[q]! * g.gb[p * R + q]!;

  const { f, rank: rho } = pivotedCholesky(g.ga, R);
  const k = multiply(multiply(f, R, rho, gbw, R, R, true, false), rho, R, f, R, rho); // Fᵀ·G_B,w·F
  const eig = symmetricEigen(k, rho);
  const sigma = eig.values.map((l) => Math.sqrt(Math.max(0, l)));
  const totalEnergy = sigma.reduce((a, x) => a + x * x, 0);
  const cap = Math.min(opts.cap, R, s.B.rows, s.A.cols);
  const rank = chooseRank(sigma, cap, totalEnergy, opts.energy);

  // T_B = D_w·F·V_k·S^(e-1) (R×rank), T_Aᵀ = S^(1-e)·V_kᵀ·F⁺ (rank×R) with F⁺ = (FᵀF)⁻¹·Fᵀ: the rows of
  // V_kᵀ·(FᵀF)⁻¹ are Cholesky solves, then one product with Fᵀ. Singular values at round-off level get zero
  // columns rather than a division by ~0.
  const e = opts.split === 'peft' ? 1 : 0.5;
  const floor = (sigma[0] ?? 0) * 1e-7;
  const kept = Math.min(rank, rho);
  const fv = multiply(f, R, rho, eig.vectors, rho, rho); // R×rho
  const vt = new Float64Array(kept * rho); // rows j of V_kᵀ, zero where σ_j is dropped
  const tb = new Float32Array(R * rank);
  for (let j = 0; j < kept; j++) {
    const sj = sigma[j]!;
    if (!(sj > floor) || sj === 0) continue;
    const colScale = sj ** (e - 1);
    const rowScale = sj ** (1 - e);
    for (let p = 0; p < R; p++) tb[p * rank + j] = rowWeight[p]! * fv[p * rho + j]! * colScale;
    for (let q = 0; q < rho; q++) vt[j * rho + q] = rowScale * eig.vectors[q * rho + j]!;
  }
  const z = kept > 0 ? solveRowsCholesky(cholesky(multiply(f, R, rho, f, R, rho, true, false), rho), rho, vt, kept) : vt;
  const ta = new Float32Array(rank * R);
  ta.set(multiply(z, kept, rho, f, R, rho, false, true)); // kept×R; rows past ρ stay zero
  const B = await kernel.gemm(s.B, { data: tb, rows: R, cols: rank });
  const A = await kernel.gemm({ data: ta, rows: rank, cols: R }, s.A);
  let keptEnergy = 0;
  for (let j = 0; j < Math.min(rank, rho); j++) keptEnergy += sigma[j]! ** 2;
  return { B, A, sigma, rank, totalEnergy, keptEnergy };
}
