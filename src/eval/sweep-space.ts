// The points of a sweep: a grid (every combination) or a seeded random sample of merge settings, each a complete,
// validated set of merge options. Pure: the same request gives the same points in the same order, which is what
// lets an interrupted sweep resume by point index.
import { InvalidInputError } from '../errors.js';
import { SeededRandom } from '../inference/rng.js';
import { MergeOptionsSchema, PRUNING_METHODS, takes, type MergeMethod, type MergeOptions } from '../merge/options.js';
import { canonicalJson } from '../util/canonical-json.js';
import type { SweepRequest } from './requests.js';

export const DEFAULT_METHODS: readonly MergeMethod[] = ['linear', 'ties', 'dare_ties'];
export const DEFAULT_DENSITIES: readonly number[] = [0.3, 0.6];
export const DEFAULT_RANDOM_SAMPLES = 16;

type Range = { min: number; max: number };
const isRange = (v: unknown): v is Range => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Default weights: every adapter at 1/n (the sum is 1, MERGE.md's sane start) and at 2/n. */
export function defaultWeights(n: number): number[] {
  return [1 / n, 2 / n];
}

function weightVector(w: number | number[], n: number): number[] {
  if (typeof w === 'number') return new Array<number>(n).fill(w);
  if (w.length !== n) {
    throw new InvalidInputError(`space.weights: [${w.join(', ')}] has ${w.length} weights for ${n} adapters: give one per adapter, or one number for all`);
  }
  return w;
}

function describe(options: Record<string, unknown>): string {
  return Object.entries(options)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.map((x) => +(+x).toFixed(4)).join(',') : String(v)}`)
    .join(' ');
}

function validate(raw: Record<string, unknown>): MergeOptions {
  const parsed = MergeOptionsSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ');
  throw new InvalidInputError(`sweep point (${describe(raw)}) is not a valid merge: ${why}`);
}

/** Expands a sweep request into its points, for `n` adapters. Throws InvalidInputError on a bad space. */
export function sweepPoints(request: Pick<SweepRequest, 'search' | 'space' | 'samples' | 'seed' | 'options' | 'maxPoints'>, n: number): MergeOptions[] {
  const { space, options: fixed } = request;
  const methods = space.method ?? DEFAULT_METHODS;
  const densities = space.density ?? DEFAULT_DENSITIES;
  const weights = space.weights ?? defaultWeights(n);
  const ranks: Array<number | undefined> = space.rank ?? [undefined];
  const points: MergeOptions[] = [];
  const seen = new Set<string>();
  const add = (raw: Record<string, unknown>) => {
    const options = validate({ ...fixed, ...raw });
    const key = canonicalJson(options);
    if (!seen.has(key)) {
      seen.add(key);
      points.push(options);
    }
  };

  if (request.search === 'grid') {
    if (isRange(densities) || isRange(weights)) {
      throw new InvalidInputError('a grid needs lists of values: give density and weights as lists, or use search "random" for ranges');
    }
    const vectors = weights.map((w) => weightVector(w, n));
    for (const method of methods) {
      const pruning = PRUNING_METHODS.has(method);
      for (const density of pruning ? densities : [undefined]) {
        for (const w of vectors) {
          for (const rank of takes(method, 'rank') ? ranks : [undefined]) add({ method, density, weights: w, rank });
        }
      }
    }
    if (points.length > request.maxPoints) {
      throw new InvalidInputError(
        `the grid has ${points.length} points, more than maxPoints ${request.maxPoints}: narrow the space, use search "random" with samples, or raise maxPoints`,
      );
    }
    return points;
  }

  const samples = request.samples ?? DEFAULT_RANDOM_SAMPLES;
  if (samples > request.maxPoints) throw new InvalidInputError(`samples ${samples} is more than maxPoints ${request.maxPoints}`);
  const rng = new SeededRandom(request.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.min(xs.length - 1, Math.floor(rng.uniform() * xs.length))]!;
  const draw = (r: Range) => r.min + (r.max - r.min) * rng.uniform();
  // a bounded number of draws: a small space runs out of distinct points before `samples`
  for (let attempt = 0; attempt < samples * 20 && points.length < samples; attempt++) {
    const method = pick(methods);
    const density = PRUNING_METHODS.has(method) ? (isRange(densities) ? draw(densities) : pick(densities)) : undefined;
    const w = isRange(weights) ? new Array<number>(n).fill(draw(weights)) : weightVector(pick(weights), n);
    const rank = takes(method, 'rank') ? pick(ranks) : undefined;
    add({ method, density, weights: w, rank });
  }
  return points;
}

/** A short readable label of a point, e.g. "ties d=0.3 w=0.25", for tables and the heat map. */
export function pointLabel(options: MergeOptions): string {
  const w = options.weights;
  const same = w.every((x) => x === w[0]);
  const parts = [options.method.replace(/_/g, '-')];
  if (options.density !== undefined) parts.push(`d=${+options.density.toFixed(3)}`);
  parts.push(`w=${same ? +w[0]!.toFixed(3) : w.map((x) => +x.toFixed(2)).join('/')}`);
  if (options.layerWeights) parts.push(`g=${options.layerWeights.weights.map((row) => row.map((x) => +x.toFixed(2)).join(',')).join('/')}`);
  if (options.rank !== undefined) parts.push(`r=${options.rank}`);
  return parts.join(' ');
}
