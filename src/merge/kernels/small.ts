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

/**
 * X = R·(C·Cᵀ)⁻¹ for the lower Cholesky factor C (n×n) of a symmetric positive definite matrix and R (count×n):
 * each row of R solved by forward then back substitution, both along contiguous rows (of C and of Cᵀ).
 */
export function solveRowsCholesky(c: Float64Array, n: number, r: Float64Array, count: number): Float64Array {
  const ct = transpose(c, n, n);
  const x = new Float64Array(count * n);
  const y = new Float64Array(n);
  for (let row = 0; row < count; row++) {
    const o = row * n;
    for (let i = 0; i < n; i++) {
      let s = r[o + i]!;
      for (let q = 0; q < i; q++) s -= c[i * n + q]! * y[q]!;
      y[i] = s / c[i * n + i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = y[i]!;
      for (let q = i + 1; q < n; q++) s -= ct[i * n + q]! * x[o + q]!;
      x[o + i] = s / ct[i * n + i]!;
    }
  }
  return x;
}

/**
 * op(a)·op(b) for small float64 matrices; a is ar×ac, b is br×bc as stored. Both operands are laid out as rows
 * along the inner dimension (transposed copies where needed: O(k·(m+n)) against the product's O(m·n·k)), then
 * each 2×2 block of the result is four dot products sharing their loads: four independent sums, where a single
 * running sum waits on each addition. Every entry is still one sum in order of the inner index.
 */
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
  const x = transA ? transpose(a, ar, ac) : a; // m×k
  const y = transB ? b : transpose(b, br, bc); // n×k
  const out = new Float64Array(m * n);
  const m2 = m & ~1;
  const n2 = n & ~1;
  for (let i = 0; i < m2; i += 2) {
    const x0 = i * k;
    const x1 = x0 + k;
    for (let j = 0; j < n2; j += 2) {
      const y0 = j * k;
      const y1 = y0 + k;
      let s00 = 0;
      let s01 = 0;
      let s10 = 0;
      let s11 = 0;
      for (let p = 0; p < k; p++) {
        const a0 = x[x0 + p]!;
        const a1 = x[x1 + p]!;
        const b0 = y[y0 + p]!;
        const b1 = y[y1 + p]!;
        s00 += a0 * b0;
        s01 += a0 * b1;
        s10 += a1 * b0;
        s11 += a1 * b1;
      }
      out[i * n + j] = s00;
      out[i * n + j + 1] = s01;
      out[(i + 1) * n + j] = s10;
      out[(i + 1) * n + j + 1] = s11;
    }
    if (n2 < n) {
      out[i * n + n2] = dot(x, x0, y, n2 * k, k);
      out[(i + 1) * n + n2] = dot(x, x1, y, n2 * k, k);
    }
  }
  if (m2 < m) for (let j = 0; j < n; j++) out[m2 * n + j] = dot(x, m2 * k, y, j * k, k);
  return out;
}

function dot(x: Float64Array, xo: number, y: Float64Array, yo: number, k: number): number {
  let s = 0;
  for (let p = 0; p < k; p++) s += x[xo + p]! * y[yo + p]!;
  return s;
}

/** The r×c row-major matrix transposed (c×r), in an array of its own type. */
export function transpose<T extends Float32Array | Float64Array>(a: T, r: number, c: number): T {
  const t = new (a.constructor as new (n: number) => T)(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = a[i * c + j]!;
  return t;
}
