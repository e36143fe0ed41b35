// Confidence intervals by bootstrap, as Chatbot Arena computes them: each round draws multinomial counts over the
// distinct (pair, outcome) rows, with the observed frequencies as probabilities and the number of votes as the
// number of draws (a resample of the votes with replacement, in aggregate), and refits. Seeded: the same votes
// and seed give the same intervals.
import { fitBradleyTerry, type FitOptions, type PairCounts } from './bradley-terry.js';
import { sampleMultinomial, seededUniform } from './random.js';

export interface BootstrapOptions extends FitOptions {
  rounds: number;
  seed: number;
}

/**
 * Rounds start from the full fit and stop after a step under 1e-3 in β: the error left is of order 1e-6 β (below
 * 0.001 rating points, measured), which saves a Newton step per round.
 */
const ROUND_TOLERANCE = 1e-3;

/** Longest stretch of rounds between two yields to the event loop: other requests wait at most about this long. */
const SLICE_MS = 10;

/**
 * β of every round: row r holds the n strengths fitted on resample r (rounds × n, row-major). Yields to the event
 * loop every SLICE_MS, so a big bootstrap inside the API process does not stall other requests (token streams).
 */
export async function bootstrapBradleyTerry(data: PairCounts, options: BootstrapOptions): Promise<Float64Array> {
  const { n, counts } = data;
  const uniform = seededUniform(options.seed);
  let total = 0;
  for (const c of counts) total += c;
  const samples = new Float64Array(options.rounds * n);
  if (total === 0) return samples;
  const resampled = new Float64Array(counts.length);
  let sliceStart = performance.now();
  for (let r = 0; r < options.rounds; r++) {
    if (performance.now() - sliceStart > SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
    sampleMultinomial(total, counts, uniform, resampled);
    const { beta } = fitBradleyTerry({ ...data, counts: resampled }, { tolerance: ROUND_TOLERANCE, ...options });
    samples.set(beta, r * n);
  }
  return samples;
}

/** The q-quantile of `values` by linear interpolation between order statistics (numpy's default). Sorts a copy. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}
