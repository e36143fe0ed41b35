import { describe, expect, it } from 'vitest';
import { sampleBinomial, sampleMultinomial, seededUniform } from '../../src/arena/random.js';

/** The exact pmf of Binomial(n, p) for k = 0..n, from log binomial coefficients. */
function binomialPmf(n: number, p: number): Float64Array {
  const pmf = new Float64Array(n + 1);
  let logC = 0;
  for (let k = 0; k <= n; k++) {
    if (k > 0) logC += Math.log(n - k + 1) - Math.log(k);
    pmf[k] = Math.exp(logC + k * Math.log(p) + (n - k) * Math.log1p(-p));
  }
  return pmf;
}

describe('sampleBinomial', () => {
  // chi-square of draws against the exact pmf, over bins with expected count ≥ 5 (tails pooled)
  it.each([
    [20, 0.3],
    [25, 0.9],
    [3000, 0.4],
    [100_000, 0.002],
  ])('matches the exact distribution for n=%i, p=%f', (n, p) => {
    const uniform = seededUniform(11);
    const draws = 20_000;
    const seen = new Map<number, number>();
    for (let d = 0; d < draws; d++) {
      const x = sampleBinomial(n, p, uniform);
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThanOrEqual(n);
      seen.set(x, (seen.get(x) ?? 0) + 1);
    }
    let chi2 = 0;
    let bins = 0;
    let pooledExpected = 0;
    let pooledSeen = 0;
    const pmf = binomialPmf(n, p);
    for (let k = 0; k <= n; k++) {
      const expected = draws * pmf[k]!;
      if (expected >= 5) {
        chi2 += ((seen.get(k) ?? 0) - expected) ** 2 / expected;
        bins++;
      } else {
        pooledExpected += expected;
        pooledSeen += seen.get(k) ?? 0;
      }
    }
    if (pooledExpected >= 5) {
      chi2 += (pooledSeen - pooledExpected) ** 2 / pooledExpected;
      bins++;
    }
    // mean of chi2 is bins − 1, sd √(2(bins − 1)); 5 sd is far outside chance for a correct sampler
    expect(chi2).toBeLessThan(bins - 1 + 5 * Math.sqrt(2 * (bins - 1)));
  });

  it('handles the edges', () => {
    const uniform = seededUniform(1);
    expect(sampleBinomial(0, 0.5, uniform)).toBe(0);
    expect(sampleBinomial(10, 0, uniform)).toBe(0);
    expect(sampleBinomial(10, 1, uniform)).toBe(10);
  });
});

describe('sampleMultinomial', () => {
  it('draws n in total, never from empty categories, with the moments of the multinomial', () => {
    const weights = [5, 0, 1, 3, 0, 1];
    const total = weights.reduce((s, w) => s + w, 0);
    const n = 200;
    const rounds = 4000;
    const uniform = seededUniform(3);
    const out = new Float64Array(weights.length);
    const sum = new Float64Array(weights.length);
    const sumSq = new Float64Array(weights.length);
    // the plain reference: n categorical draws by inverse CDF
    const ref = new Float64Array(weights.length);
    const refSum = new Float64Array(weights.length);
    for (let r = 0; r < rounds; r++) {
      sampleMultinomial(n, weights, uniform, out);
      expect(out.reduce((s, c) => s + c, 0)).toBe(n);
      expect(out[1]).toBe(0);
      expect(out[4]).toBe(0);
      for (let k = 0; k < weights.length; k++) {
        sum[k]! += out[k]!;
        sumSq[k]! += out[k]! ** 2;
      }
      ref.fill(0);
      for (let d = 0; d < n; d++) {
        let u = uniform() * total;
        let k = 0;
        while (u >= weights[k]!) u -= weights[k++]!;
        ref[k]! += 1;
      }
      for (let k = 0; k < weights.length; k++) refSum[k]! += ref[k]!;
    }
    for (let k = 0; k < weights.length; k++) {
      const p = weights[k]! / total;
      const mean = sum[k]! / rounds;
      const variance = sumSq[k]! / rounds - mean ** 2;
      const se = Math.sqrt((n * p * (1 - p)) / rounds);
      expect(Math.abs(mean - n * p)).toBeLessThanOrEqual(5 * se + 1e-12);
      expect(Math.abs(refSum[k]! / rounds - mean)).toBeLessThanOrEqual(7 * se + 1e-12);
      if (p > 0) expect(variance / (n * p * (1 - p))).toBeCloseTo(1, 1);
    }
  });

  it('is reproducible for a seed', () => {
    const weights = [3, 1, 4, 1, 5, 9, 2, 6];
    const draw = (seed: number) => sampleMultinomial(1000, weights, seededUniform(seed), new Float64Array(weights.length));
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });

  it('refuses weights with nothing to draw from', () => {
    expect(() => sampleMultinomial(5, [0, 0], seededUniform(1), new Float64Array(2))).toThrow(RangeError);
  });
});
