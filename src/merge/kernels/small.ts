// Small dense float64 helpers for the r×r cores (row-major). Anything out×in-sized goes through MatmulKernel.

/** Pivoted Cholesky of a symmetric positive semi-definite n×n matrix: returns F (n×rank, row-major) with
 *  a ≈ F·Fᵀ, stopping when the largest remaining diagonal is below `relTol` × the largest diagonal. */
export function pivotedCholesky(a: Float64Array, n: number, relTol = 1e-13): { f: Float64Array; rank: number } {
  const d = new Float64Array(n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) {
    d[i] = a[i * n + i]!;
    maxDiag = Math.max(maxDiag, d[i]!);
  }
  const piv = Array.from({ length: n }, (_, i) => i);
  const l = new Float64Array(n * n); // row i (pivoted order), column j
  let rank = 0;
  for (let j = 0; j < n; j++) {
    let q = j;
    for (let i = j + 1; i < n; i++) if (d[piv[i]!]! > d[piv[q]!]!) q = i;
    const dq = d[piv[q]!]!;
    if (!(dq > relTol * maxDiag) || dq <= 0) break;
    if (q !== j) {
      [piv[j], piv[q]] = [piv[q]!, piv[j]!];
      for (let k = 0; k < j; k++) [l[j * n + k], l[q * n + k]] = [l[q * n + k]!, l[j * n + k]!];
    }
    const ljj = Math.sqrt(dq);
    l[j * n + j] = ljj;
    const pj = piv[j]!;
    for (let i = j + 1; i < n; i++) {
      const pi = piv[i]!;
      let s = a[pi * n + pj]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      const v = s / ljj;
      l[i * n + j] = v;
      d[pi] = d[pi]! - v * v;
    }
    rank++;
  }
  const f = new Float64Array(n * rank);
  for (let i = 0; i < n; i++) for (let k = 0; k < rank; k++) f[piv[i]! * rank + k] = l[i * n + k]!;
  return { f, rank };
}

/** Cholesky a = C·Cᵀ of a symmetric positive definite n×n matrix (lower C, row-major). */
export function cholesky(a: Float64Array, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let s = a[j * n + j]!;
    for (let k = 0; k < j; k++) s -= c[j * n + k]! ** 2;
    if (!(s > 0)) throw new Error('cholesky: matrix is not positive definite');
    const cjj = Math.sqrt(s);
    c[j * n + j] = cjj;
    for (let i = j + 1; i < n; i++) {
      let t = a[i * n + j]!;
      for (let k = 0; k < j; k++) t -= c[i * n + k]! * c[j * n + k]!;
      c[i * n + j] = t / cjj;
    }
  }
  return c;
}

/** X = (FᵀF)⁻¹Fᵀ for F (m×n, full column rank): the pseudo-inverse, n×m. */
export function pseudoInverse(f: Float64Array, m: number, n: number): Float64Array {
  const g = multiply(f, m, n, f, m, n, true, false); // FᵀF
  const c = cholesky(g, n);
  const x = new Float64Array(n * m);
  // solve C·Cᵀ·X = Fᵀ column by column of Fᵀ (i.e. for each of the m rows of F)
  const y = new Float64Array(n);
  for (let col = 0; col < m; col++) {
    for (let i = 0; i < n; i++) {
      let s = f[col * n + i]!;
      for (let k = 0; k < i; k++) s -= c[i * n + k]! * y[k]!;
      y[i] = s / c[i * n + i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = y[i]!;
      for (let k = i + 1; k < n; k++) s -= c[k * n + i]! * x[k * m + col]!;
      x[i * m + col] = s / c[i * n + i]!;
    }
  }
  return x;
}

/** op(a)·op(b) for small float64 matrices; a is ar×ac, b is br×bc as stored. */
export function multiply(
  a: Float64Array,
  ar: number,
  ac: number,
  b: Float64Array,
  br: number,
  bc: number,
  transA = false,
  transB = false,
): Float64Array {
  const m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const n = transB ? br : bc;
  if ((transB ? bc : br) !== k) throw new Error(`multiply: inner dimensions differ (${k} vs ${transB ? bc : br})`);
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = transA ? a[p * ac + i]! : a[i * ac + p]!;
      if (av === 0) continue;
      const o = i * n;
      if (transB) for (let j = 0; j < n; j++) out[o + j] = out[o + j]! + av * b[j * bc + p]!;
      else {
        const bo = p * bc;
        for (let j = 0; j < n; j++) out[o + j] = out[o + j]! + av * b[bo + j]!;
      }
    }
  }
  return out;
}
