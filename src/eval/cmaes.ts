// (μ/μ_w, λ)-CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", 2016, the purecma form), minimising, with
// an ask/tell interface and a seeded generator: the points of each generation depend only on the seed and the
// fitness values told so far, so a run is replayed from its stored evaluations by telling them again in order.
// Box bounds are handled by evaluating the clipped point and adding the squared distance to it to the fitness.

export interface CmaesOptions {
  /** the starting mean */
  x0: readonly number[];
  /** the starting step size (the spread of the first generation around x0) */
  sigma0: number;
  seed: number;
  /** points per generation (default 4 + ⌊3 ln n⌋) */
  lambda?: number;
  bounds?: { lower: number; upper: number };
}

/** A point asked for: `x` to evaluate (inside the bounds); `raw` is the sample the strategy learns from. */
export interface Candidate {
  x: number[];
  raw: number[];
}

export class Cmaes {
  readonly n: number;
  readonly lambda: number;
  private readonly mu: number;
  private readonly w: number[];
  private readonly mueff: number;
  private readonly cc: number;
  private readonly cs: number;
  private readonly c1: number;
  private readonly cmu: number;
  private readonly damps: number;
  private readonly chiN: number;
  private mean: number[];
  private sigma: number;
  private pc: number[];
  private ps: number[];
  private C: number[][];
  private B: number[][];
  private D: number[];
  private invsqrtC: number[][];
  private evals = 0;
  private eigenAt = 0;
  private pending: Candidate[] | null = null;
  private readonly rng: () => number;
  generation = 0;

  constructor(private readonly o: CmaesOptions) {
    const n = (this.n = o.x0.length);
    if (n < 1 || !(o.sigma0 > 0)) throw new RangeError('CMA-ES needs at least one dimension and a positive sigma0');
    this.lambda = o.lambda ?? 4 + Math.floor(3 * Math.log(n));
    this.mu = Math.floor(this.lambda / 2);
    const raw = Array.from({ length: this.mu }, (_, i) => Math.log(this.mu + 0.5) - Math.log(i + 1));
    const sum = raw.reduce((a, b) => a + b, 0);
    this.w = raw.map((x) => x / sum);
    this.mueff = 1 / this.w.reduce((a, b) => a + b * b, 0);
    const me = this.mueff;
    this.cc = (4 + me / n) / (n + 4 + (2 * me) / n);
    this.cs = (me + 2) / (n + me + 5);
    this.c1 = 2 / ((n + 1.3) ** 2 + me);
    this.cmu = Math.min(1 - this.c1, (2 * (me - 2 + 1 / me)) / ((n + 2) ** 2 + me));
    this.damps = 1 + 2 * Math.max(0, Math.sqrt((me - 1) / (n + 1)) - 1) + this.cs;
    this.chiN = Math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
    this.mean = [...o.x0];
    this.sigma = o.sigma0;
    this.pc = zeros(n);
    this.ps = zeros(n);
    this.C = identity(n);
    this.B = identity(n);
    this.D = new Array<number>(n).fill(1);
    this.invsqrtC = identity(n);
    this.rng = gaussian(o.seed);
  }

  /** The next generation's λ points (the same ones again until they are told). */
  ask(): Candidate[] {
    if (this.pending) return this.pending;
    const { n, B, D } = this;
    this.pending = Array.from({ length: this.lambda }, () => {
      const z = Array.from({ length: n }, () => this.rng());
      const raw = this.mean.map((m, i) => m + this.sigma * B[i]!.reduce((s, b, j) => s + b * D[j]! * z[j]!, 0));
      return { raw, x: raw.map((v) => this.clip(v)) };
    });
    return this.pending;
  }

  /** The fitness (to minimise) of each point of the last ask, in its order. */
  tell(fitness: readonly number[]): void {
    const cands = this.pending;
    if (!cands || fitness.length !== cands.length) throw new RangeError(`tell needs the fitness of the ${this.lambda} points asked`);
    if (fitness.some((f) => !Number.isFinite(f))) throw new RangeError('fitness values must be finite');
    this.pending = null;
    const { n, mu, w, cs, cc, c1, cmu, mueff } = this;
    // out-of-bounds samples are ranked by their clipped point's value plus the squared distance to it
    const penalised = cands.map((c, k) => fitness[k]! + c.raw.reduce((s, v, i) => s + (v - c.x[i]!) ** 2, 0));
    const order = penalised.map((f, k) => [f, k] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, k]) => k);
    const best = order.slice(0, mu).map((k) => cands[k]!.raw);
    this.evals += this.lambda;
    const old = this.mean;
    this.mean = Array.from({ length: n }, (_, i) => best.reduce((s, x, k) => s + w[k]! * x[i]!, 0));
    const step = this.mean.map((m, i) => (m - old[i]!) / this.sigma);
    const cstep = matVec(this.invsqrtC, step);
    this.ps = this.ps.map((p, i) => (1 - cs) * p + Math.sqrt(cs * (2 - cs) * mueff) * cstep[i]!);
    const psNorm = Math.hypot(...this.ps);
    const hsig = psNorm / Math.sqrt(1 - (1 - cs) ** ((2 * this.evals) / this.lambda)) / this.chiN < 1.4 + 2 / (n + 1) ? 1 : 0;
    this.pc = this.pc.map((p, i) => (1 - cc) * p + hsig * Math.sqrt(cc * (2 - cc) * mueff) * step[i]!);
    const ar = best.map((x) => x.map((v, i) => (v - old[i]!) / this.sigma));
    const dh = (1 - hsig) * cc * (2 - cc);
    for (let i = 0; i < n; i++)
      for (let j = 0; j <= i; j++) {
        let rankMu = 0;
        for (let k = 0; k < mu; k++) rankMu += w[k]! * ar[k]![i]! * ar[k]![j]!;
        const v = (1 - c1 - cmu) * this.C[i]![j]! + c1 * (this.pc[i]! * this.pc[j]! + dh * this.C[i]![j]!) + cmu * rankMu;
        this.C[i]![j] = v;
        this.C[j]![i] = v;
      }
    this.sigma *= Math.exp(Math.min(1, (cs / this.damps) * (psNorm / this.chiN - 1)));
    if (this.evals - this.eigenAt > this.lambda / (c1 + cmu) / n / 10) this.decompose();
    this.generation++;
  }

  /** The current mean (clipped), the strategy's best guess. */
  get center(): number[] {
    return this.mean.map((v) => this.clip(v));
  }

  get stepSize(): number {
    return this.sigma;
  }

  private clip(v: number): number {
    const b = this.o.bounds;
    return b ? Math.min(b.upper, Math.max(b.lower, v)) : v;
  }

  private decompose(): void {
    this.eigenAt = this.evals;
    const { values, vectors } = jacobiEigen(this.C);
    this.D = values.map((v) => Math.sqrt(Math.max(v, 1e-20)));
    this.B = vectors;
    const n = this.n;
    this.invsqrtC = Array.from({ length: n }, (_, i) =>
      Array.from({ length: n }, (_, j) => vectors[i]!.reduce((s, b, k) => s + (b * vectors[j]![k]!) / this.D[k]!, 0)),
    );
  }
}

/** Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: C = V·diag(values)·Vᵀ, V's columns the vectors. */
export function jacobiEigen(C: number[][]): { values: number[]; vectors: number[][] } {
  const n = C.length;
  const a = C.map((r) => [...r]);
  const v = identity(n);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p]![q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p]![q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q]![q]! - a[p]![p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k]![p]!;
          const akq = a[k]![q]!;
          a[k]![p] = c * akp - s * akq;
          a[k]![q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p]![k]!;
          const aqk = a[q]![k]!;
          a[p]![k] = c * apk - s * aqk;
          a[q]![k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k]![p]!;
          const vkq = v[k]![q]!;
          v[k]![p] = c * vkp - s * vkq;
          v[k]![q] = s * vkp + c * vkq;
        }
      }
  }
  return { values: a.map((r, i) => r[i]!), vectors: v };
}

const zeros = (n: number) => new Array<number>(n).fill(0);
const identity = (n: number): number[][] => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
const matVec = (m: number[][], x: number[]) => m.map((row) => row.reduce((s, v, j) => s + v * x[j]!, 0));

/** Standard normal numbers from a seeded sfc32 generator (Box–Muller). */
function gaussian(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return ((t >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < 15; i++) next();
  return () => Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
}
