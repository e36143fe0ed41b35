// Randomized truncated SVD of a dense out×in matrix (Halko, Martinsson & Tropp 2011, algorithms 4.4 and 5.1):
// a Gaussian test matrix Ω (in×l, l = rank + oversampling) finds the range of M, power iterations sharpen it
// for the slowly decaying spectra that trimming leaves, and the SVD of the small l×in matrix QᵀM finishes.
// Every product with M runs in ONNX Runtime with M passed in place; only l-wide results come back.
// Orthonormalisation is an eigen-based Cholesky QR of the l×l Gram, done twice at the end (CholeskyQR2).
import { fillGaussian, type StreamKey } from './prng.js';
import type { Mat32, MatmulKernel } from './matmul.js';
import { symmetricEigen } from './eigen.js';
import { chooseRank, type LowRankResult, type SvdSplit } from './lowrank-svd.js';

export interface RandomizedSvdOptions extends SvdSplit {
  cap: number;
  energy?: number;
  /** ‖M‖², known from the pass that built M: the denominator of the energy share */
  totalEnergy: number;
  key: StreamKey;
  oversample?: number;
  powerIterations?: number;
}

/** An orthonormal basis of the columns of y (columns at round-off level are dropped). */
async function orthonormalize(kernel: MatmulKernel, y: Mat32): Promise<Mat32> {
  const l = y.cols;
  const g = await kernel.gemm64(y, y, { transA: true });
  const { values, vectors } = symmetricEigen(g.data, l);
  const floor = Math.max(values[0]!, 0) * 1e-12;
  let keep = 0;
  while (keep < l && values[keep]! > floor && values[keep]! > 0) keep++;
  const t = new Float32Array(l * keep);
  for (let j = 0; j < keep; j++) {
    const inv = 1 / Math.sqrt(values[j]!);
    for (let p = 0; p < l; p++) t[p * keep + j] = vectors[p * l + j]! * inv;
  }
  return kernel.gemm(y, { data: t, rows: l, cols: keep });
}

export async function randomizedSvd(kernel: MatmulKernel, m: Mat32, o: RandomizedSvdOptions): Promise<LowRankResult> {
  const { rows: out, cols: inn } = m;
  const cap = Math.max(1, Math.min(o.cap, out, inn));
  const zero = (): LowRankResult => ({
    B: { data: new Float32Array(out * cap), rows: out, cols: cap },
    A: { data: new Float32Array(cap * inn), rows: cap, cols: inn },
    sigma: new Float64Array(0),
    rank: cap,
    totalEnergy: 0,
    keptEnergy: 0,
  });
  if (!(o.totalEnergy > 0)) return zero();
  const l = Math.min(cap + (o.oversample ?? 8), out, inn);
  const omega = new Float32Array(inn * l);
  fillGaussian(o.key, 0, omega);

  let y = await kernel.gemm(m, { data: omega, rows: inn, cols: l });
  for (let it = 0; it < (o.powerIterations ?? 2); it++) {
    const q = await orthonormalize(kernel, y);
    if (q.cols === 0) return zero();
    const z = await orthonormalize(kernel, await kernel.gemm(m, q, { transA: true }));
    if (z.cols === 0) return zero();
    y = await kernel.gemm(m, z);
  }
  const q = await orthonormalize(kernel, await orthonormalize(kernel, y));
  const lq = q.cols;
  if (lq === 0) return zero();
  const small = await kernel.gemm(q, m, { transA: true }); // lq×in
  const g = await kernel.gemm64(small, small, { transB: true });
  const { values, vectors } = symmetricEigen(g.data, lq);
  const sigma = values.map((v) => Math.sqrt(Math.max(0, v)));
  const rank = chooseRank(sigma, cap, o.totalEnergy, o.energy);

  // B' = Q·Ũ_k·S^e, A' = S^(-e)·Ũ_kᵀ·(QᵀM): then B'A' = Q·Ũ_k·Ũ_kᵀ·QᵀM, the rank-k projection of M.
  const e = o.split === 'peft' ? 1 : 0.5;
  const floor = (sigma[0] ?? 0) * 1e-7;
  const tb = new Float32Array(lq * rank);
  const ta = new Float32Array(rank * lq);
  let keptEnergy = 0;
  for (let j = 0; j < Math.min(rank, lq); j++) {
    const sj = sigma[j]!;
    if (!(sj > floor)) continue;
    keptEnergy += sj * sj;
    for (let p = 0; p < lq; p++) {
      tb[p * rank + j] = vectors[p * lq + j]! * sj ** e;
      ta[j * lq + p] = vectors[p * lq + j]! * sj ** -e;
    }
  }
  const B = await kernel.gemm(q, { data: tb, rows: lq, cols: rank });
  const A = await kernel.gemm({ data: ta, rows: rank, cols: lq }, small);
  return { B, A, sigma, rank, totalEnergy: o.totalEnergy, keptEnergy };
}
