// Seeded randomness for the arena: bootstrap resampling must be reproducible for a seed, and pairing and the A/B
// coin flip take the same interface so tests can fix them. xoroshiro128+ from pure-rand.
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/** A uniform number in [0, 1). */
export type Uniform = () => number;

export function seededUniform(seed: number): Uniform {
  const rng = xoroshiro128plus(seed | 0);
  return () => uniformFloat64(rng);
}

/**
 * One draw from Binomial(n, p), exact, by inversion of the CDF. The cost is O(n·min(p, 1−p)); n is split into
 * chunks (a sum of binomials with the same p is binomial) so that P(X = 0) = (1−p)^m never underflows.
 */
export function sampleBinomial(n: number, p: number, uniform: Uniform): number {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - sampleBinomial(n, 1 - p, uniform);
  const logQ = Math.log1p(-p);
  const chunk = Math.max(1, Math.floor(500 / -logQ));
  const ratio = p / (1 - p);
  let total = 0;
  for (let left = n; left > 0; left -= chunk) {
    const m = Math.min(left, chunk);
    let pmf = Math.exp(m * logQ);
    let u = uniform();
    let x = 0;
    while (u > pmf && x < m) {
      u -= pmf;
      x++;
      pmf *= (ratio * (m - x + 1)) / x;
    }
    total += x;
  }
  return total;
}

/**
 * Counts of n draws over categories with the given (unnormalised) weights, written into `out`: the multinomial
 * distribution, drawn as a chain of conditional binomials (count_k ~ Bin(n − drawn so far, w_k / Σ_{j≥k} w_j)).
 */
export function sampleMultinomial(n: number, weights: ArrayLike<number>, uniform: Uniform, out: Float64Array): Float64Array {
  const k = weights.length;
  const suffix = new Float64Array(k + 1);
  for (let i = k - 1; i >= 0; i--) suffix[i] = suffix[i + 1]! + weights[i]!;
  if (!(suffix[0]! > 0)) throw new RangeError('multinomial weights must have a positive sum');
  let left = n;
  for (let i = 0; i < k; i++) {
    const w = weights[i]!;
    // the last category with weight takes what is left: its conditional probability is exactly 1
    const p = suffix[i + 1] === 0 ? 1 : w / suffix[i]!;
    const c = left > 0 && w > 0 ? sampleBinomial(left, Math.min(1, p), uniform) : 0;
    out[i] = c;
    left -= c;
  }
  return out;
}
