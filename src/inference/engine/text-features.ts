// The `text` routing rule: a prompt's feature is its own characters, so routing needs no model pass and adds nothing
// measurable to the time to first token (docs/ROUTERS.md compares it with the base-model rules).
//
// Feature: the bag of character 3-, 4- and 5-grams of the prompt (lower case, runs of white space as one space, a
// space at either end so word starts and ends count), log(1 + count), hashed (FNV-1a) into 2^20 buckets, scaled to
// unit length; kept sparse, buckets ascending, so comparing and projecting features are merge joins. Centroids are
// kept only on the buckets the calibration prompts use (`dims`, ascending); a prompt's weight in any other bucket
// becomes one extra coordinate that is 0 in the centre and in every centroid, so cosines computed on `dims` + 1
// coordinates equal those of the full vectors, and routing.ts's nearest-centroid rule applies as is.
import { InvalidInputError } from '../../errors.js';
import { fitCentroids, type Centroids } from './routing.js';

const BUCKETS = 1 << 20;
const GRAMS = [3, 4, 5];
/** Most buckets a router's calibration prompts may use (the demo's 5 prompts per skill use about 2000). */
export const MAX_TEXT_DIMS = 1 << 16;

/** Sparse weights, unit length: `weights[i]` is bucket `buckets[i]`'s, buckets ascending. */
export interface TextFeature {
  buckets: Uint32Array;
  weights: Float64Array;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * Gram counts per bucket, zero between calls: counting in place is several times faster than a Map per gram.
 * Allocated (4 MB) at the first prompt, not when a process imports this module.
 */
let counts: Uint32Array | undefined;

export function textFeature(text: string): TextFeature {
  const t = ` ${text.toLowerCase().replace(/\s+/g, ' ').trim()} `;
  const touched: number[] = [];
  const tally = (counts ??= new Uint32Array(BUCKETS));
  for (const n of GRAMS) {
    // FNV-1a of `${n}${gram}`, hashed in place: the buckets stored routers were fitted on, without a string per gram
    const seed = Math.imul(FNV_OFFSET ^ (48 + n), FNV_PRIME);
    for (let i = 0; i + n <= t.length; i++) {
      let h = seed;
      for (let j = i; j < i + n; j++) h = Math.imul(h ^ t.charCodeAt(j), FNV_PRIME);
      const bucket = (h >>> 0) % BUCKETS;
      if (tally[bucket]++ === 0) touched.push(bucket);
    }
  }
  const buckets = Uint32Array.from(touched).sort();
  const weights = new Float64Array(buckets.length);
  let norm = 0;
  buckets.forEach((b, i) => {
    const w = Math.log1p(tally[b]!);
    tally[b] = 0;
    weights[i] = w;
    norm += w * w;
  });
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < weights.length; i++) weights[i]! /= norm;
  return { buckets, weights };
}

/** Cosine similarity of two features (both unit length). */
export function textSimilarity(a: TextFeature, b: TextFeature): number {
  let dot = 0;
  for (let i = 0, j = 0; i < a.buckets.length && j < b.buckets.length; ) {
    const x = a.buckets[i]!;
    const y = b.buckets[j]!;
    if (x === y) dot += a.weights[i++]! * b.weights[j++]!;
    else if (x < y) i++;
    else j++;
  }
  return dot;
}

/** The feature on `dims` (ascending), then its length outside them (see the header). */
export function projectText(feature: TextFeature, dims: readonly number[]): Float64Array {
  const out = new Float64Array(dims.length + 1);
  const { buckets, weights } = feature;
  let inside = 0;
  let total = 0;
  for (let i = 0, j = 0; i < buckets.length; i++) {
    const w = weights[i]!;
    total += w * w;
    while (j < dims.length && dims[j]! < buckets[i]!) j++;
    if (j < dims.length && dims[j] === buckets[i]) {
      out[j] = w;
      inside += w * w;
    }
  }
  out[dims.length] = Math.sqrt(Math.max(0, total - inside));
  return out;
}

/**
 * Centroids of the members' calibration prompts on the buckets they use. The buckets are capped: the router's record
 * holds (members + 2) numbers per bucket and every routed request reads them all, so calibration prompts of a
 * megabyte of varied text (about 700 000 buckets) would make a record of hundreds of MB. Features are projected
 * one at a time, never all at once (that was gigabytes for such prompts).
 */
export function fitTextCentroids(perMember: ReadonlyArray<ReadonlyArray<TextFeature>>): Centroids & { dims: number[] } {
  const used = new Set<number>();
  for (const features of perMember) for (const f of features) for (const b of f.buckets) used.add(b);
  if (used.size === 0) throw new InvalidInputError('the calibration prompts have no text to route on (each needs at least 3 characters)');
  if (used.size > MAX_TEXT_DIMS) {
    throw new InvalidInputError(
      `the calibration prompts hold ${used.size} distinct character n-grams, more than a text router keeps (${MAX_TEXT_DIMS}): ` +
        'give fewer or shorter prompts per member (a few typical requests each; the suites calibrate on 5 of about 60 characters)',
    );
  }
  const dims = [...used].sort((a, b) => a - b);
  return { ...fitCentroids(perMember, (f) => projectText(f, dims)), dims };
}
