import ort from '../../src/util/onnxruntime.js';
import { afterAll, describe, expect, it } from 'vitest';
import { symmetricEigen } from '../../src/merge/kernels/eigen.js';
import { cholesky, pivotedCholesky, solveRowsCholesky, multiply } from '../../src/merge/kernels/small.js';
import { MagnitudeSelector, keepTopK, selectMagnitude, TopKFilter } from '../../src/merge/kernels/select.js';
import { keepThreshold, mix32, randomBits, streamKey, fillGaussian } from '../../src/merge/kernels/prng.js';
import { MatmulKernel, gemmReference } from '../../src/merge/kernels/matmul.js';
import { lowRankSvd, stackFactors, stackedGrams, innerProducts } from '../../src/merge/kernels/lowrank-svd.js';
import { randomizedSvd } from '../../src/merge/kernels/randomized-svd.js';
import { darePrune, electAndMerge, trimElectMerge, trimWeightedSum } from '../../src/merge/primitives.js';
import { denseSum, electReference, matmul, randn, relError, singularValues, topKReference } from './reference.js';

// the CUDA fallback test makes onnxruntime log the missing provider library as an error: keep the test output clean
ort.env.logLevel = 'fatal';
const kernel = new MatmulKernel({ threads: 1 });
afterAll(() => kernel.release());

function randomSymmetric(n: number, seed: number): Float64Array {
  const x = randn(n * n, seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = x[i * n + j]! + x[j * n + i]!;
  return a;
}

describe('symmetricEigen', () => {
  it.each([1, 2, 5, 33])('reconstructs A = V·diag(λ)·Vᵀ with orthonormal V (n=%i)', (n) => {
    const a = randomSymmetric(n, n + 1);
    const { values, vectors } = symmetricEigen(a, n);
    for (let j = 1; j < n; j++) expect(values[j]!).toBeLessThanOrEqual(values[j - 1]!);
    const vtv = multiply(vectors, n, n, vectors, n, n, true, false);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(vtv[i * n + j]!).toBeCloseTo(i === j ? 1 : 0, 12);
    const vl = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) vl[i * n + j] = vectors[i * n + j]! * values[j]!;
    const back = multiply(vl, n, n, vectors, n, n, false, true);
    for (let i = 0; i < n * n; i++) expect(back[i]!).toBeCloseTo(a[i]!, 10);
  });

  it('matches the singular values of a plain Jacobi SVD for a Gram matrix', () => {
    const x = randn(40 * 12, 9);
    const g = multiply(Float64Array.from(x), 40, 12, Float64Array.from(x), 40, 12, true, false);
    const sv = singularValues(x, 40, 12);
    const { values } = symmetricEigen(g, 12);
    sv.forEach((s, j) => expect(Math.sqrt(values[j]!)).toBeCloseTo(s, 9));
  });

  it('handles repeated and zero eigenvalues', () => {
    const a = new Float64Array([2, 0, 0, 0, 2, 0, 0, 0, 0]);
    const { values } = symmetricEigen(a, 3);
    expect([...values]).toEqual([2, 2, 0]);
  });
});

describe('Cholesky', () => {
  it('pivoted Cholesky reproduces a rank-deficient PSD matrix with its rank', () => {
    const x = Float64Array.from(randn(6 * 3, 4)); // 6×3 → rank 3
    const g = multiply(x, 6, 3, x, 6, 3, false, true); // 6×6 of rank 3
    const { f, rank } = pivotedCholesky(g, 6);
    expect(rank).toBe(3);
    const back = multiply(f, 6, rank, f, 6, rank, false, true);
    for (let i = 0; i < 36; i++) expect(back[i]!).toBeCloseTo(g[i]!, 10);
  });

  it('plain Cholesky, and rows solved against it', () => {
    const x = Float64Array.from(randn(7 * 4, 5));
    const c = cholesky(multiply(x, 7, 4, x, 7, 4, true, false), 4);
    const back = multiply(c, 4, 4, c, 4, 4, false, true);
    const g = multiply(x, 7, 4, x, 7, 4, true, false);
    for (let i = 0; i < 16; i++) expect(back[i]!).toBeCloseTo(g[i]!, 10);
    const r = Float64Array.from(randn(3 * 4, 6)); // 3 rows: X·G = R
    const xs = solveRowsCholesky(c, 4, r, 3);
    const again = multiply(xs, 3, 4, g, 4, 4);
    for (let i = 0; i < 12; i++) expect(again[i]!).toBeCloseTo(r[i]!, 10);
  });
});

describe('multiply', () => {
  it.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])('equals a plain triple loop, every entry summed in order of the inner index (transA %s, transB %s)', (transA, transB) => {
    // odd sizes take the paths past the 2×2 blocks
    for (const [m, k, n] of [
      [5, 7, 3],
      [6, 4, 8],
      [1, 9, 1],
    ] as const) {
      const a = Float64Array.from(randn(m * k, m + k));
      const b = Float64Array.from(randn(k * n, k + n));
      const [ar, ac] = transA ? [k, m] : [m, k];
      const [br, bc] = transB ? [n, k] : [k, n];
      const got = multiply(a, ar, ac, b, br, bc, transA, transB);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) s += (transA ? a[p * ac + i]! : a[i * ac + p]!) * (transB ? b[j * bc + p]! : b[p * bc + j]!);
          expect(got[i * n + j]).toBe(s);
        }
    }
  });
});

describe('radix select', () => {
  const sortedDesc = (v: Float32Array) => [...v].map(Math.abs).sort((a, b) => b - a);

  it('finds the k-th largest magnitude like a sort does', () => {
    const v = randn(5000, 3);
    const ref = sortedDesc(v);
    for (const k of [1, 2, 17, 1000, 4999]) {
      const t = selectMagnitude(v, k);
      expect(new Float32Array(new Uint32Array([t.bits]).buffer)[0]).toBe(ref[k - 1]);
      expect(t.above + t.ties).toBe(k);
    }
  });

  it('keeps exactly k entries, breaking ties by index', () => {
    const v = new Float32Array([1, -3, 3, 0, 3, -2, 3]);
    const kept = keepTopK(v, 3);
    expect(kept).toBe(3);
    expect([...v]).toEqual([0, -3, 3, 0, 3, 0, 0]);
  });

  it('k = 0 keeps nothing, k >= n keeps everything, zeros included', () => {
    const a = new Float32Array([1, -2, 0]);
    expect(keepTopK(a, 0)).toBe(0);
    expect([...a]).toEqual([0, 0, 0]);
    const b = new Float32Array([1, -2, 0]);
    expect(keepTopK(b, 5)).toBe(3);
    expect([...b]).toEqual([1, -2, 0]);
  });

  it('counts long chunks four ways with the same result, tail included', () => {
    const n = (1 << 18) + 3;
    const v = randn(n, 21).map((x, i) => (i % 3 === 0 ? Math.round(x * 8) / 8 : x)); // runs of equal buckets
    const ref = sortedDesc(v);
    for (const k of [1, 12_345, n >> 1, n - 1]) {
      const whole = selectMagnitude(v, k);
      expect(new Float32Array(new Uint32Array([whole.bits]).buffer)[0]).toBe(ref[k - 1]);
      expect(whole.above + whole.ties).toBe(k);
      const s = new MagnitudeSelector(k);
      s.addPass1(v.subarray(0, 2)); // a short chunk, then a long one
      s.addPass1(v.subarray(2));
      if (s.startPass2()) s.addPass2(v);
      expect(s.result()).toEqual(whole);
    }
  });

  it('gives the same threshold when fed in chunks', () => {
    const v = randn(10000, 8);
    const s = new MagnitudeSelector(2500);
    for (let o = 0; o < v.length; o += 999) s.addPass1(v.subarray(o, o + 999));
    s.startPass2();
    for (let o = 0; o < v.length; o += 1234) s.addPass2(v.subarray(o, o + 1234));
    expect(s.result()).toEqual(selectMagnitude(v, 2500));
    const whole = Float32Array.from(v);
    keepTopK(whole, 2500);
    const chunked = Float32Array.from(v);
    const f = new TopKFilter(s.result());
    for (let o = 0; o < v.length; o += 777) f.apply(chunked.subarray(o, o + 777));
    expect(chunked).toEqual(whole);
  });

  it('sorts a small bucket and histograms a large one, ties counted alike', () => {
    // 3 values above, then 2^15 values in one high-15-bit bucket (|x| in [1, 1 + 2^-7)) on a grid of 2^-12 (many
    // equal), so the k-th falls in a bucket too large to sort; a 100-value tensor's bucket is sorted
    const large = Float32Array.from({ length: (1 << 15) + 3 }, (_, i) => (i < 3 ? 8 + i : (i % 2 ? -1 : 1) * (1 + ((i * 7919) % 32) / 4096)));
    const small = Float32Array.from(large.subarray(0, 100));
    for (const v of [large, small]) {
      const ref = sortedDesc(v);
      for (const k of [2, 3, 4, 50, 99, v.length - 1]) {
        const t = selectMagnitude(v, k);
        const value = new Float32Array(new Uint32Array([t.bits]).buffer)[0]!;
        expect(value).toBe(ref[k - 1]);
        expect(t.above).toBe(ref.filter((x) => x > value).length);
        expect(t.above + t.ties).toBe(k);
      }
    }
  });
});

describe('TIES elect and disjoint mean', () => {
  /** values on a coarse grid (many ties at any threshold), with zeros and negative zeros */
  const grid = (n: number, seed: number) => randn(n, seed).map((x, i) => (i % 7 === 0 ? -0 : i % 5 === 0 ? 0 : Math.round(x * 4) / 4));
  const bitsOf = (x: Float32Array) => [...new Uint32Array(x.buffer, x.byteOffset, x.length)];

  it.each([1, 2, 3, 4, 5])('matches the element-by-element reference bit for bit (%i inputs)', (n) => {
    const inputs = Array.from({ length: n }, (_, i) => grid(600, 40 + i));
    const weights = [1, -0.5, 0, 2.25, 0.3].slice(0, n);
    for (const method of ['total', 'frequency'] as const) {
      const ref = electReference(inputs, weights, method);
      const out = new Float32Array(600);
      const stats = { kept: 0, contested: 0, conflicts: 0 };
      electAndMerge(inputs, weights, method, out, stats);
      expect(bitsOf(out)).toEqual(bitsOf(ref.out));
      expect(stats).toEqual(ref.stats);
    }
  });

  it('with the trim fused in, equals top-k then the vote, fed in chunks', () => {
    const n = 4;
    const inputs = Array.from({ length: n }, (_, i) => grid(1000, 50 + i));
    const weights = [0.5, 1, 0, -1];
    for (const k of [0, 1, 137, 300, 1000]) {
      const ref = electReference(inputs.map((x) => topKReference(x, k)), weights, 'total');
      const filters = inputs.map((x) => new TopKFilter(selectMagnitude(x, k)));
      const out = new Float32Array(1000);
      const stats = { kept: 0, contested: 0, conflicts: 0 };
      for (const [a, b] of [[0, 333], [333, 334], [334, 1000]] as const) {
        trimElectMerge(inputs.map((x) => x.subarray(a, b)), filters, weights, 'total', out.subarray(a, b), stats);
      }
      expect(bitsOf(out)).toEqual(bitsOf(ref.out));
      expect(stats).toEqual(ref.stats);
      expect(inputs[0]).toEqual(grid(1000, 50)); // the inputs are not trimmed in place
    }
  });

  it('over tensors longer than the kernel chunk, ties kept across chunks in element order', () => {
    const inputs = Array.from({ length: 3 }, (_, i) => grid(40_003, 70 + i));
    const weights = [0.75, -1, 1.5];
    for (const k of [5_000, 17_000]) {
      const ref = electReference(inputs.map((x) => topKReference(x, k)), weights, 'frequency');
      const filters = inputs.map((x) => new TopKFilter(selectMagnitude(x, k)));
      expect(filters[0]!.ties).toBeGreaterThan(0); // the grid's ties straddle the threshold
      const out = new Float32Array(40_003);
      const stats = { kept: 0, contested: 0, conflicts: 0 };
      trimElectMerge(inputs, filters, weights, 'frequency', out, stats);
      expect(bitsOf(out)).toEqual(bitsOf(ref.out));
      expect(stats).toEqual(ref.stats);
      expect(filters.map((f) => f.ties)).toEqual([0, 0, 0]);
    }
  });

  it('matches the references on extreme values (subnormals, huge, zeros of both signs), any count and length', () => {
    const extreme = (n: number, seed: number) =>
      randn(n, seed).map((x, i) => [x, x * 1e-40, x * 1e30, 0, -0, Math.round(x * 2) / 2, x * 1e-3][(i * 7 + seed) % 7]!);
    const weights = [0.5, -1.25, 2, 0, 1e-3, 3.5, -0.75, 1];
    for (const n of [1, 2, 3, 6, 8]) {
      for (const len of [1, 3, 4, 5, 17, 16_385]) {
        const inputs = Array.from({ length: n }, (_, i) => extreme(len, 100 * n + len + i));
        const k = Math.max(1, Math.floor(len * 0.3));
        const pruned = inputs.map((x) => topKReference(x, k));
        const filters = () => inputs.map((x) => new TopKFilter(selectMagnitude(x, k)));
        for (const method of ['total', 'frequency'] as const) {
          const ref = electReference(pruned, weights.slice(0, n), method);
          const out = new Float32Array(len);
          const stats = { kept: 0, contested: 0, conflicts: 0 };
          trimElectMerge(inputs, filters(), weights.slice(0, n), method, out, stats);
          expect(bitsOf(out)).toEqual(bitsOf(ref.out));
          expect(stats).toEqual(ref.stats);
        }
        const sum = new Float32Array(len);
        pruned.forEach((p, i) => p.forEach((x, j) => (sum[j] = Math.fround(sum[j]! + weights[i]! * x))));
        const out = new Float32Array(len);
        trimWeightedSum(inputs, filters(), weights.slice(0, n), out);
        expect(bitsOf(out)).toEqual(bitsOf(sum));
      }
    }
  });

  it('the weighted sum with the trim fused in equals top-k then Σ w_i·p_i in float32', () => {
    const inputs = Array.from({ length: 3 }, (_, i) => grid(1000, 60 + i));
    const weights = [0.5, -1.25, 2];
    for (const k of [0, 250, 1000]) {
      const pruned = inputs.map((x) => topKReference(x, k));
      const ref = new Float32Array(1000);
      pruned.forEach((p, i) => p.forEach((x, j) => (ref[j] = Math.fround(ref[j]! + weights[i]! * x))));
      const out = new Float32Array(1000);
      const stats = { kept: 0, contested: 0, conflicts: 0 };
      trimWeightedSum(inputs, inputs.map((x) => new TopKFilter(selectMagnitude(x, k))), weights, out, stats);
      expect(bitsOf(out)).toEqual(bitsOf(ref));
      expect(stats.kept).toBe(pruned.reduce((s, p) => s + p.filter((x) => x !== 0).length, 0));
    }
  });
});

describe('counter-based PRNG', () => {
  it('mix32 matches a BigInt reference of lowbias32', () => {
    const ref = (x: number) => {
      let v = BigInt(x >>> 0);
      const M = 0xffffffffn;
      v ^= v >> 16n; v = (v * 0x7feb352dn) & M; v ^= v >> 15n; v = (v * 0x846ca68bn) & M; v ^= v >> 16n;
      return Number(v);
    };
    for (const x of [0, 1, 2, 0xdeadbeef, 0xffffffff, 123456789]) expect(mix32(x)).toBe(ref(x));
  });

  it('is a function of (seed, name, index, counter) only, and streams differ', () => {
    const a = streamKey(7, 'model.layers.0.q_proj', 1);
    expect(randomBits(a, 12345)).toBe(randomBits(streamKey(7, 'model.layers.0.q_proj', 1), 12345));
    expect(randomBits(a, 12345)).not.toBe(randomBits(streamKey(8, 'model.layers.0.q_proj', 1), 12345));
    expect(randomBits(a, 12345)).not.toBe(randomBits(streamKey(7, 'model.layers.0.q_proj', 2), 12345));
    expect(randomBits(a, 12345)).not.toBe(randomBits(streamKey(7, 'model.layers.1.q_proj', 1), 12345));
  });

  it('is uniform enough for masks (chi-square over 64 bins, Bernoulli rate)', () => {
    const key = streamKey(1, 'x', 0);
    const bins = new Array(64).fill(0);
    const n = 200_000;
    let kept = 0;
    const cut = keepThreshold(0.3);
    for (let i = 0; i < n; i++) {
      const b = randomBits(key, i);
      bins[b >>> 26]++;
      if (b < cut) kept++;
    }
    const e = n / 64;
    const chi = bins.reduce((s, o) => s + (o - e) ** 2 / e, 0);
    expect(chi).toBeLessThan(110); // 63 degrees of freedom: p ≈ 1e-4
    expect(Math.abs(kept / n - 0.3)).toBeLessThan(0.005);
  });

  it('DARE keeps exactly the entries whose random bits fall below the density, rescaled', () => {
    const key = streamKey(5, 'model.layers.3.q_proj', 2);
    for (const [density, offset, n] of [[0.3, 0, 5000], [0.3, 4_294_967_000, 5000], [0.9, 123, 5000], [0, 7, 5000], [0.2, 99, 140_003]] as const) {
      const t = randn(n, 6); // the last longer than the kernel's pieces, and of no multiple of 4
      const pruned = Float32Array.from(t);
      darePrune(pruned, density, key, offset);
      const cut = keepThreshold(density);
      const ref = t.map((x, j) => (randomBits(key, offset + j) < cut ? x * (density > 0 ? 1 / density : 0) : 0));
      expect(pruned).toEqual(ref);
    }
  });

  it('gives standard normal values', () => {
    const g = new Float32Array(100_000);
    fillGaussian(streamKey(3, 'omega', 0), 0, g);
    const mean = g.reduce((a, b) => a + b, 0) / g.length;
    const variance = g.reduce((a, b) => a + (b - mean) ** 2, 0) / g.length;
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
    const part = new Float32Array(10);
    fillGaussian(streamKey(3, 'omega', 0), 500, part);
    expect([...part]).toEqual([...g.subarray(500, 510)]);
  });
});

describe('ONNX Runtime matmul graph', () => {
  it.each([
    [{}, 5, 7, 7, 3],
    [{ transA: true }, 7, 5, 7, 3],
    [{ transB: true }, 5, 7, 3, 7],
    [{ transA: true, transB: true }, 7, 5, 3, 7],
  ])('matches the plain triple loop for %o', async (spec, ar, ac, br, bc) => {
    const a = { data: randn(ar * ac, 1), rows: ar, cols: ac };
    const b = { data: randn(br * bc, 2), rows: br, cols: bc };
    const ref = gemmReference(a, b, spec);
    const c32 = await kernel.gemm(a, b, spec);
    const c64 = await kernel.gemm64(a, b, spec);
    expect([c32.rows, c32.cols]).toEqual([ref.rows, ref.cols]);
    expect(relError(c32.data, ref.data)).toBeLessThan(1e-6);
    expect(relError(c64.data, ref.data)).toBeLessThan(1e-14);
    const into = new Float32Array(ref.rows * ref.cols + 4).subarray(2, 2 + ref.rows * ref.cols);
    const c = await kernel.gemm(a, b, spec, into);
    expect(c.data).toBe(into);
    expect([...into]).toEqual([...c32.data]);
  });

  it('runs several products of the same inputs in one graph, each as the plain triple loop', async () => {
    const x = { data: randn(9 * 4, 3), rows: 9, cols: 4 };
    const y = { data: randn(9 * 6, 4), rows: 9, cols: 6 };
    const z = { data: randn(5 * 4, 5), rows: 5, cols: 4 };
    const products = [
      { a: 0, b: 0, transA: true },
      { a: 0, b: 1, transA: true },
      { a: 2, b: 0, transB: true },
      { a: 1, b: 1, transA: true, transB: false },
    ];
    for (const precision of ['f32', 'f64'] as const) {
      const got = await kernel.products([x, y, z], products, precision);
      products.forEach((p, i) => {
        const ref = gemmReference([x, y, z][p.a]!, [x, y, z][p.b]!, p);
        expect([got[i]!.rows, got[i]!.cols]).toEqual([ref.rows, ref.cols]);
        expect(got[i]!.data).toBeInstanceOf(precision === 'f64' ? Float64Array : Float32Array);
        expect(relError(got[i]!.data, ref.data)).toBeLessThan(precision === 'f64' ? 1e-14 : 1e-6);
      });
    }
    // an empty inner dimension gives zeros, as gemm does
    const empty = { data: new Float32Array(0), rows: 3, cols: 0 };
    const [zeros] = await kernel.products([empty], [{ a: 0, b: 0, transB: true }], 'f64');
    expect([...zeros!.data]).toEqual(new Array(9).fill(0));
    await expect(kernel.products([x, z], [{ a: 0, b: 1 }], 'f32')).rejects.toThrow(/inner dimensions/);
  });

  it('falls back to the CPU with a log line when the CUDA provider is not installed', async () => {
    const lines: string[] = [];
    const cuda = new MatmulKernel({ device: 'cuda', threads: 1, logger: { info: (m) => lines.push(m), warn: (m) => lines.push(m) } });
    try {
      const c = await cuda.gemm({ data: new Float32Array([1, 2, 3, 4]), rows: 2, cols: 2 }, { data: new Float32Array([0, 1, 1, 0]), rows: 2, cols: 2 });
      expect([...c.data]).toEqual([2, 1, 4, 3]);
      // on a machine with onnxruntime's CUDA provider installed this runs on the GPU and logs nothing
      if (cuda.activeDevice === 'cpu') expect(lines.join('\n')).toMatch(/CUDA execution provider unavailable.*on the CPU/);
    } finally {
      await cuda.release();
    }
  });

  it('refuses mismatched shapes', async () => {
    const a = { data: new Float32Array(6), rows: 2, cols: 3 };
    await expect(kernel.gemm(a, a)).rejects.toThrow(/inner dimensions/);
    await expect(kernel.gemm(a, a, { transB: true }, new Float32Array(3))).rejects.toThrow(/output buffer holds 3 values, not 2×2/);
  });
});

function makeFactors(out: number, inn: number, ranks: number[], seed: number) {
  return ranks.map((r, i) => ({
    B: { data: randn(out * r, seed + 10 * i, 0.1), rows: out, cols: r },
    A: { data: randn(r * inn, seed + 10 * i + 1, 0.1), rows: r, cols: inn },
  }));
}

describe('exact low-rank SVD', () => {
  it('reproduces Σ w_i B_i A_i, with the dense singular values, for different ranks', async () => {
    const out = 30, inn = 22;
    const factors = makeFactors(out, inn, [3, 5, 2], 11);
    const weights = [0.7, -1.3, 0.4];
    const stacked = stackFactors(factors);
    const grams = await stackedGrams(kernel, stacked);
    const res = await lowRankSvd(kernel, stacked, grams, weights, { cap: 10, split: 'balanced' });
    const ref = denseSum(factors.map((f, i) => ({ B: f.B.data, A: f.A.data, r: f.A.rows, c: weights[i]! })), out, inn);
    const got = matmul(res.B.data, out, res.rank, res.A.data, inn);
    expect(res.rank).toBe(10);
    expect(relError(got, ref)).toBeLessThan(1e-5);
    const sv = singularValues(ref, out, inn).slice(0, 10);
    sv.forEach((s, j) => expect(res.sigma[j]!).toBeCloseTo(s, 5));
    // inner products agree with dense ones
    const inner = innerProducts(grams, stacked);
    const d0 = denseSum([{ B: factors[0]!.B.data, A: factors[0]!.A.data, r: 3, c: 1 }], out, inn);
    const d1 = denseSum([{ B: factors[1]!.B.data, A: factors[1]!.A.data, r: 5, c: 1 }], out, inn);
    expect(inner[1]!).toBeCloseTo(d0.reduce((s, x, i) => s + x * d1[i]!, 0), 8);
  });

  it('takes both Grams of the stacked factors in one run (scales and ranks differing)', async () => {
    const factors = makeFactors(14, 9, [3, 1, 4], 41).map((f, i) => ({ ...f, scale: [2, 0.5, 1.5][i] }));
    const stacked = stackFactors(factors);
    for (const precision of ['f32', 'f64'] as const) {
      const grams = await stackedGrams(kernel, stacked, precision);
      expect(grams.size).toBe(8);
      expect(relError(grams.gb, gemmReference(stacked.B, stacked.B, { transA: true }).data)).toBeLessThan(precision === 'f64' ? 1e-14 : 1e-6);
      expect(relError(grams.ga, gemmReference(stacked.A, stacked.A, { transB: true }).data)).toBeLessThan(precision === 'f64' ? 1e-14 : 1e-6);
    }
  });

  it('truncation error equals the dropped singular values', async () => {
    const out = 40, inn = 25;
    const factors = makeFactors(out, inn, [4, 4, 4], 21);
    const weights = [1, 0.5, 0.25];
    const stacked = stackFactors(factors);
    const grams = await stackedGrams(kernel, stacked);
    const ref = denseSum(factors.map((f, i) => ({ B: f.B.data, A: f.A.data, r: 4, c: weights[i]! })), out, inn);
    const sv = singularValues(ref, out, inn);
    for (const k of [1, 5, 9]) {
      const res = await lowRankSvd(kernel, stacked, grams, weights, { cap: k, split: 'peft' });
      const got = matmul(res.B.data, out, k, res.A.data, inn);
      const errSq = ref.reduce((s, x, i) => s + (x - got[i]!) ** 2, 0);
      const dropped = sv.slice(k).reduce((s, x) => s + x * x, 0);
      expect(Math.sqrt(errSq)).toBeCloseTo(Math.sqrt(dropped), 5);
      expect(res.totalEnergy - res.keptEnergy).toBeCloseTo(dropped, 7);
    }
  });

  it('survives linearly dependent factors (the same adapter twice)', async () => {
    const [f] = makeFactors(12, 9, [3], 5);
    const stacked = stackFactors([f!, f!]);
    const grams = await stackedGrams(kernel, stacked);
    const res = await lowRankSvd(kernel, stacked, grams, [1, 1], { cap: 6, split: 'balanced' });
    const ref = denseSum([{ B: f!.B.data, A: f!.A.data, r: 3, c: 2 }], 12, 9);
    expect(relError(matmul(res.B.data, 12, 6, res.A.data, 9), ref)).toBeLessThan(1e-5);
  });

  it('energy picks the smallest rank keeping that share', async () => {
    const factors = makeFactors(30, 30, [6], 3);
    const stacked = stackFactors(factors);
    const grams = await stackedGrams(kernel, stacked);
    const full = await lowRankSvd(kernel, stacked, grams, [1], { cap: 6, split: 'balanced' });
    const share = (k: number) => full.sigma.slice(0, k).reduce((s, x) => s + x * x, 0) / full.totalEnergy;
    const res = await lowRankSvd(kernel, stacked, grams, [1], { cap: 6, energy: 0.9, split: 'balanced' });
    expect(share(res.rank)).toBeGreaterThanOrEqual(0.9);
    expect(share(res.rank - 1)).toBeLessThan(0.9);
  });
});

describe('randomized SVD', () => {
  it('matches the exact truncated SVD on a matrix with a decaying spectrum', async () => {
    const out = 60, inn = 50;
    const factors = makeFactors(out, inn, [20], 31);
    // scale columns of B so singular values decay
    for (let r = 0; r < out; r++) for (let c = 0; c < 20; c++) factors[0]!.B.data[r * 20 + c]! *= 0.7 ** c;
    const dense = Float32Array.from(denseSum([{ B: factors[0]!.B.data, A: factors[0]!.A.data, r: 20, c: 1 }], out, inn));
    const total = dense.reduce((s, x) => s + x * x, 0);
    const res = await randomizedSvd(kernel, { data: dense, rows: out, cols: inn }, { cap: 8, totalEnergy: total, key: streamKey(0, 'm', 0), split: 'balanced' });
    const sv = singularValues(dense, out, inn);
    sv.slice(0, 8).forEach((s, j) => expect(res.sigma[j]! / s).toBeCloseTo(1, 4));
    const got = matmul(res.B.data, out, 8, res.A.data, inn);
    const err = Math.sqrt(dense.reduce((s, x, i) => s + (x - got[i]!) ** 2, 0));
    expect(err).toBeCloseTo(Math.sqrt(sv.slice(8).reduce((s, x) => s + x * x, 0)), 4);
  });

  it('returns zero factors for a zero matrix', async () => {
    const res = await randomizedSvd(kernel, { data: new Float32Array(20), rows: 4, cols: 5 }, { cap: 2, totalEnergy: 0, key: streamKey(0, 'z', 0), split: 'balanced' });
    expect(res.B.data.every((x) => x === 0)).toBe(true);
    expect(res.rank).toBe(2);
  });
});
