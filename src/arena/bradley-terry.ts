// Bradley–Terry strengths by maximum likelihood, in Chatbot Arena's logistic form:
//   P(i beats j) = 1 / (1 + base^(β_j − β_i)),   rating = scale·β + offset (400 and 10: gaps read like Elo gaps).
// A tie (or "both bad") counts as half a win and half a loss. The data are aggregated votes: per pair of adapters
// (i < j) three counts, [j won, tie, i won], which is all the likelihood depends on.
//
// The fit is Newton's method on the penalised negative log-likelihood (convex), with a Cholesky solve of the
// N×N Hessian and a backtracking line search while the steps are long; it converges in a handful of steps, and a
// bootstrap round started from the full fit in two or three (bench/arena.ts compares it with the MM iteration).
//
// The penalty is a Gaussian prior on every β with sd `priorSd` rating points (an L2 term λ/2·Σβ², λ =
// (scale/priorSd)²). It keeps an adapter that only won (or only lost) at a finite rating instead of +∞, makes the
// Hessian positive definite, and, since every pair's gradient sums to zero, fixes Σβ = 0 (the mean-centred gauge).
// With the default of 1000 points it moves a pair with 20 votes between them by well under 1%.

export const DEFAULT_PRIOR_SD = 1000;

/** Newton steps no longer than this (in β: 8 rating points) are taken whole; longer ones get a line search. */
const FULL_STEP = 0.02;

export interface PairCounts {
  /** number of adapters */
  n: number;
  /** the adapters of each pair, i < j */
  pairI: Int32Array;
  pairJ: Int32Array;
  /** 3 per pair: votes that j won, tied (tie or both bad), i won */
  counts: Float64Array;
}

export interface FitOptions {
  scale?: number;
  base?: number;
  priorSd?: number;
  /** where Newton starts (the full fit, for a bootstrap round); zeros by default */
  start?: Float64Array;
  /** stop after a step that moved no β by more than this (β units; the error left is of order its square) */
  tolerance?: number;
  maxIterations?: number;
}

export interface FitResult {
  beta: Float64Array;
  iterations: number;
}

/** log(1 + e^z) without overflow. */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

function logistic(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** Penalised negative log-likelihood of β for per-pair points `s` (of i) and votes `m`. */
function objective(beta: Float64Array, data: PairCounts, s: Float64Array, m: Float64Array, alpha: number, lambda: number): number {
  let f = 0;
  for (let p = 0; p < s.length; p++) {
    if (m[p] === 0) continue;
    const x = alpha * (beta[data.pairI[p]!]! - beta[data.pairJ[p]!]!);
    f += s[p]! * softplus(-x) + (m[p]! - s[p]!) * softplus(x);
  }
  let norm = 0;
  for (let k = 0; k < beta.length; k++) norm += beta[k]! * beta[k]!;
  return f + 0.5 * lambda * norm;
}

/**
 * Solves H·x = g in place of `g` for a symmetric positive definite H (row-major n×n, overwritten by its Cholesky
 * factor). Hand-written: at N = 50 it is several times faster than a general matrix library's, and it runs in
 * every Newton step of every bootstrap round.
 */
export function choleskySolve(h: Float64Array, g: Float64Array, n: number): Float64Array {
  for (let j = 0; j < n; j++) {
    let d = h[j * n + j]!;
    for (let k = 0; k < j; k++) d -= h[j * n + k]! * h[j * n + k]!;
    if (!(d > 0)) throw new RangeError('matrix is not positive definite');
    const ljj = Math.sqrt(d);
    h[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let v = h[i * n + j]!;
      for (let k = 0; k < j; k++) v -= h[i * n + k]! * h[j * n + k]!;
      h[i * n + j] = v / ljj;
    }
  }
  for (let i = 0; i < n; i++) {
    let v = g[i]!;
    for (let k = 0; k < i; k++) v -= h[i * n + k]! * g[k]!;
    g[i] = v / h[i * n + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let v = g[i]!;
    for (let k = i + 1; k < n; k++) v -= h[k * n + i]! * g[k]!;
    g[i] = v / h[i * n + i]!;
  }
  return g;
}

export function fitBradleyTerry(data: PairCounts, options: FitOptions = {}): FitResult {
  const { n, pairI, pairJ, counts } = data;
  const alpha = Math.log(options.base ?? 10);
  const lambda = ((options.scale ?? 400) / (options.priorSd ?? DEFAULT_PRIOR_SD)) ** 2;
  const tolerance = options.tolerance ?? 1e-4;
  const maxIterations = options.maxIterations ?? 100;
  const pairs = pairI.length;
  const s = new Float64Array(pairs);
  const m = new Float64Array(pairs);
  for (let p = 0; p < pairs; p++) {
    m[p] = counts[3 * p]! + counts[3 * p + 1]! + counts[3 * p + 2]!;
    s[p] = counts[3 * p + 2]! + 0.5 * counts[3 * p + 1]!;
  }
  const beta = options.start ? Float64Array.from(options.start) : new Float64Array(n);
  const h = new Float64Array(n * n);
  const step = new Float64Array(n);
  const gradient = new Float64Array(n);
  const trial = new Float64Array(n);
  let f: number | undefined;
  let iterations = 0;
  while (iterations < maxIterations) {
    iterations++;
    h.fill(0);
    for (let k = 0; k < n; k++) {
      h[k * n + k] = lambda;
      gradient[k] = lambda * beta[k]!;
    }
    for (let p = 0; p < pairs; p++) {
      if (m[p] === 0) continue;
      const i = pairI[p]!;
      const j = pairJ[p]!;
      const prob = logistic(alpha * (beta[i]! - beta[j]!));
      const g = -alpha * (s[p]! - m[p]! * prob);
      gradient[i] = gradient[i]! + g;
      gradient[j] = gradient[j]! - g;
      const w = alpha * alpha * m[p]! * prob * (1 - prob);
      h[i * n + i] = h[i * n + i]! + w;
      h[j * n + j] = h[j * n + j]! + w;
      h[i * n + j] = h[i * n + j]! - w;
      h[j * n + i] = h[j * n + i]! - w;
    }
    step.set(gradient);
    choleskySolve(h, step, n);
    let size = 0;
    for (let k = 0; k < n; k++) size = Math.max(size, Math.abs(step[k]!));
    let t = 1;
    if (size > FULL_STEP) {
      // far from the optimum: backtracking (Armijo) line search along −step
      f ??= objective(beta, data, s, m, alpha, lambda);
      let slope = 0;
      for (let k = 0; k < n; k++) slope += gradient[k]! * step[k]!;
      for (let tries = 0; tries < 50; tries++) {
        for (let k = 0; k < n; k++) trial[k] = beta[k]! - t * step[k]!;
        const fTrial = objective(trial, data, s, m, alpha, lambda);
        if (fTrial <= f - 1e-4 * t * slope || tries === 49) {
          f = fTrial;
          break;
        }
        t /= 2;
      }
    } else {
      f = undefined;
    }
    for (let k = 0; k < n; k++) beta[k] = beta[k]! - t * step[k]!;
    // Newton converges quadratically: the error left after a step of size δ is of order δ²
    if (t * size < tolerance) break;
  }
  return { beta, iterations };
}
