// CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", 2016), the gradient-free optimizer LoraHub tunes
// adapter weights with: ask for a generation of candidates, tell their scores (lower is better), repeat. Seeded and
// deterministic: the same seed and the same scores give the same candidates, so a search can be replayed from its
// recorded evaluations after a crash. Candidates are clipped into [lower, upper] (small dimensions, no repair
// needed for our use). Full covariance with a Jacobi eigendecomposition: fine for tens of dimensions.
import { SeededRandom } from '../inference/rng.js';

export interface CmaesOptions {
  /** the starting point */
  mean: number[];
  /** initial step size */
  sigma: number;
  lower: number;
  upper: number;
  seed: number;
  /** candidates per generation (default 4 + ⌊3 ln n⌋) */
  popsize?: number;
}

/** Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: C = B·diag(d)·Bᵀ. */
export function symmetricEigen(c: number[][]): { values: number[]; vectors: number[][] } {
  const n = c.length;
  const a = c.map((row) => [...row]);
  const v: number[][] = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p]![q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p]![q]!) < 1e-300) continue;
        const theta = (a[q]![q]! - a[p]![p]!) / (2 * a[p]![q]!);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1);
        const sn = t * cs;
        for (let k = 0; k < n; k++) {
          const akp = a[k]![p]!;
          const akq = a[k]![q]!;
          a[k]![p] = cs * akp - sn * akq;
          a[k]![q] = sn * akp + cs * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p]![k]!;
          const aqk = a[q]![k]!;
          a[p]![k] = cs * apk - sn * aqk;
          a[q]![k] = sn * apk + cs * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k]![p]!;
          const vkq = v[k]![q]!;
          v[k]![p] = cs * vkp - sn * vkq;
          v[k]![q] = sn * vkp + cs * vkq;
        }
      }
    }
  }
  return { values: a.map((row, i) => row[i]!), vectors: v };
}

export class Cmaes {
  readonly n: number;
  readonly popsize: number;
  private readonly mu: number;
  private readonly weights: number[];
  private readonly mueff: number;
  private readonly cc: number;
  private readonly cs: number;
  private readonly c1: number;
  private readonly cmu: number;
  private readonly damps: number;
  private readonly chiN: number;
  private readonly rng: SeededRandom;
  mean: number[];
  sigma: number;
  private pc: number[];
  private ps: number[];
  private c: number[][];
  private b: number[][];
  private d: number[];
  generation = 0;
  /** the candidates of the current generation, before clipping (the update uses them) */
  private raw: number[][] = [];

  constructor(private readonly options: CmaesOptions) {
    const n = options.mean.length;
    this.n = n;
    this.popsize = options.popsize ?? 4 + Math.floor(3 * Math.log(n));
    this.mu = Math.floor(this.popsize / 2);
    const w = Array.from({ length: this.mu }, (_, i) => Math.log((this.popsize + 1) / 2) - Math.log(i + 1));
    const sum = w.reduce((a, b) => a + b, 0);
    this.weights = w.map((x) => x / sum);
    this.mueff = 1 / this.weights.reduce((a, x) => a + x * x, 0);
    this.cc = (4 + this.mueff / n) / (n + 4 + (2 * this.mueff) / n);
    this.cs = (this.mueff + 2) / (n + this.mueff + 5);
    this.c1 = 2 / ((n + 1.3) ** 2 + this.mueff);
    this.cmu = Math.min(1 - this.c1, (2 * (this.mueff - 2 + 1 / this.mueff)) / ((n + 2) ** 2 + this.mueff));
    this.damps = 1 + 2 * Math.max(0, Math.sqrt((this.mueff - 1) / (n + 1)) - 1) + this.cs;
    this.chiN = Math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
    this.rng = new SeededRandom(options.seed);
    this.mean = [...options.mean];
    this.sigma = options.sigma;
    this.pc = new Array<number>(n).fill(0);
    this.ps = new Array<number>(n).fill(0);
    this.c = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
    this.b = this.c.map((row) => [...row]);
    this.d = new Array<number>(n).fill(1);
  }

  /** The next generation's candidates, clipped into the bounds. */
  ask(): number[][] {
    const { n } = this;
    this.raw = Array.from({ length: this.popsize }, () => {
      const z = Array.from({ length: n }, () => this.rng.normal());
      const y = Array.from({ length: n }, (_, i) => {
        let s = 0;
        for (let j = 0; j < n; j++) s += this.b[i]![j]! * this.d[j]! * z[j]!;
        return s;
      });
      return y.map((yi, i) => this.mean[i]! + this.sigma * yi);
    });
    return this.raw.map((x) => x.map((v) => Math.min(this.options.upper, Math.max(this.options.lower, v))));
  }

  /** Scores of the candidates `ask` returned, in order; lower is better. */
  tell(scores: readonly number[]): void {
    const { n } = this;
    if (scores.length !== this.raw.length) throw new Error(`tell: ${scores.length} scores for ${this.raw.length} candidates`);
    const order = scores.map((_, i) => i).sort((a, b) => scores[a]! - scores[b]! || a - b);
    // the clipped candidates are what was scored: learn from them
    const clipped = this.raw.map((x) => x.map((v) => Math.min(this.options.upper, Math.max(this.options.lower, v))));
    const old = this.mean;
    this.mean = Array.from({ length: n }, (_, i) => order.slice(0, this.mu).reduce((s, k, r) => s + this.weights[r]! * clipped[k]![i]!, 0));
    const step = this.mean.map((m, i) => (m - old[i]!) / this.sigma);
    // C^(-1/2)·step = B·diag(1/d)·Bᵀ·step
    const bt = Array.from({ length: n }, (_, j) => step.reduce((s, x, i) => s + this.b[i]![j]! * x, 0) / this.d[j]!);
    const invSqrt = Array.from({ length: n }, (_, i) => bt.reduce((s, x, j) => s + this.b[i]![j]! * x, 0));
    const csn = Math.sqrt(this.cs * (2 - this.cs) * this.mueff);
    this.ps = this.ps.map((p, i) => (1 - this.cs) * p + csn * invSqrt[i]!);
    const psNorm = Math.hypot(...this.ps);
    this.generation++;
    const hsig = psNorm / Math.sqrt(1 - (1 - this.cs) ** (2 * this.generation)) / this.chiN < 1.4 + 2 / (n + 1) ? 1 : 0;
    const ccn = Math.sqrt(this.cc * (2 - this.cc) * this.mueff);
    this.pc = this.pc.map((p, i) => (1 - this.cc) * p + hsig * ccn * step[i]!);
    const ys = order.slice(0, this.mu).map((k) => clipped[k]!.map((x, i) => (x - old[i]!) / this.sigma));
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let rankMu = 0;
        ys.forEach((y, r) => (rankMu += this.weights[r]! * y[i]! * y[j]!));
        this.c[i]![j] =
          (1 - this.c1 - this.cmu) * this.c[i]![j]! +
          this.c1 * (this.pc[i]! * this.pc[j]! + (1 - hsig) * this.cc * (2 - this.cc) * this.c[i]![j]!) +
          this.cmu * rankMu;
      }
    }
    this.sigma *= Math.exp((this.cs / this.damps) * (psNorm / this.chiN - 1));
    const { values, vectors } = symmetricEigen(this.c);
    this.d = values.map((v) => Math.sqrt(Math.max(v, 1e-20)));
    this.b = vectors;
  }
}
