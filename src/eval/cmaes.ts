// CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", 2016), the gradient-free optimizer LoraHub tunes
// adapter weights with: ask for a generation of candidates, tell their scores (lower is better), repeat. Seeded and
// deterministic: the same seed and the same scores give the same candidates, so a search can be replayed from its
// recorded evaluations after a crash. Candidates are clipped into [lower, upper] (small dimensions, no repair
// needed for our use). Full covariance, decomposed by the merge kernels' symmetric eigensolver each generation:
// fine for tens of dimensions.
import { SeededRandom } from '../inference/rng.js';
import { symmetricEigen } from '../merge/kernels/eigen.js';

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
    const { values, vectors } = symmetricEigen(Float64Array.from(this.c.flat()), n);
    this.d = Array.from(values, (v) => Math.sqrt(Math.max(v, 1e-20)));
    this.b = Array.from({ length: n }, (_, i) => Array.from(vectors.subarray(i * n, (i + 1) * n)));
  }
}
