// Plain references for the merge kernels: the slow, obviously-correct versions the tests compare against.

/** Deterministic pseudo-random numbers for test data (LCG + Box–Muller); independent of the code under test. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd());
  return out;
}

/** C = A·B for row-major float64 (or float32) matrices. */
export function matmul(a: ArrayLike<number>, m: number, k: number, b: ArrayLike<number>, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!;
    c[i * n + j] = s;
  }
  return c;
}

export function frobenius(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

export function relError(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < ref.length; i++) d += (x[i]! - ref[i]!) ** 2;
  return Math.sqrt(d) / frobenius(ref);
}

/** Singular values of an m×n matrix, largest first, by one-sided Jacobi (Hestenes) in float64. */
export function singularValues(a: ArrayLike<number>, m: number, n: number): number[] {
  // work on columns of A (m×n); rotate pairs until all columns are orthogonal
  const u = Float64Array.from(a as ArrayLike<number>);
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n - 1; p++) for (let q = p + 1; q < n; q++) {
      let alpha = 0, beta = 0, gamma = 0;
      for (let i = 0; i < m; i++) {
        const x = u[i * n + p]!, y = u[i * n + q]!;
        alpha += x * x; beta += y * y; gamma += x * y;
      }
      if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
      off = Math.max(off, Math.abs(gamma) / Math.sqrt(alpha * beta));
      const zeta = (beta - alpha) / (2 * gamma);
      const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
      const c = 1 / Math.sqrt(1 + t * t), s = c * t;
      for (let i = 0; i < m; i++) {
        const x = u[i * n + p]!, y = u[i * n + q]!;
        u[i * n + p] = c * x - s * y;
        u[i * n + q] = s * x + c * y;
      }
    }
    if (off < 1e-14) break;
  }
  const sv: number[] = [];
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < m; i++) s += u[i * n + j]! ** 2;
    sv.push(Math.sqrt(s));
  }
  return sv.sort((x, y) => y - x);
}

/** Dense ΔW = Σ w_i·s_i·B_i·A_i (out×in), float64. */
export function denseSum(terms: { B: Float32Array; A: Float32Array; r: number; c: number }[], out: number, inn: number): Float64Array {
  const d = new Float64Array(out * inn);
  for (const t of terms) {
    const p = matmul(t.B, out, t.r, t.A, inn);
    for (let i = 0; i < d.length; i++) d[i] = d[i]! + t.c * p[i]!;
  }
  return d;
}

/** Keeps the k largest |x| (ties broken by index, first kept), by a full sort: the obvious top-k. */
export function topKReference(x: Float32Array, k: number): Float32Array {
  const order = [...x.keys()].sort((a, b) => Math.abs(x[b]!) - Math.abs(x[a]!) || a - b);
  const out = new Float32Array(x.length);
  for (const i of order.slice(0, k)) out[i] = x[i]!;
  return out;
}

/**
 * TIES elect + disjoint mean element by element, as PEFT writes it, with float32 rounding after each addition
 * (what a Float32Array accumulator does): vote = Σp ('total') or Σsign(p) ('frequency'), a zero vote elects +.
 */
export function electReference(pruned: Float32Array[], weights: number[], method: 'total' | 'frequency') {
  const len = pruned[0]!.length;
  const out = new Float32Array(len);
  const stats = { kept: 0, contested: 0, conflicts: 0 };
  for (let j = 0; j < len; j++) {
    const v = pruned.map((p) => p[j]!);
    const pos = v.filter((x) => x > 0).length;
    const neg = v.filter((x) => x < 0).length;
    const vote = method === 'total' ? v.reduce((s, x) => Math.fround(s + x), 0) : pos - neg;
    const sign = vote < 0 ? -1 : 1;
    let acc = 0;
    let count = 0;
    v.forEach((x, i) => {
      if (x * sign > 0) {
        acc = Math.fround(acc + weights[i]! * x);
        count++;
      }
    });
    out[j] = acc / Math.max(count, 1);
    stats.kept += count;
    if (pos + neg > 1) stats.contested++;
    if (pos > 0 && neg > 0) stats.conflicts++;
  }
  return { out, stats };
}
