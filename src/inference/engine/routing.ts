// Routing a prompt to one member of a router: nearest centroid of a per-prompt feature.
//
// `text` reads the prompt's characters (text-features.ts): no model pass. The other features come from the base
// model's prefill of the prompt (core.ts reads them from outputs the graph has anyway):
//  - `value-last`: mean over the prompt of the last layer's value rows (a linear view of the hidden state entering it);
//  - `value-mid`: the same at the middle layer;
//  - `logprobs`: the next-token log-probs after the prompt.
// Features are centred on the mean of the members' calibration means (mean-pooled states share a large common
// part that would otherwise dominate every cosine) and L2-normalised; each member's centroid is the normalised
// mean of its calibration features. A prompt goes to the centroid of highest cosine similarity, unless the best
// beats the runner-up by less than `margin`: then nobody is clearly nearest and the router's fallback answers.
import { InvalidInputError } from '../../errors.js';
import type { FeatureRequest } from './types.js';

export const ROUTING_RULES = ['text', 'value-last', 'value-mid', 'logprobs'] as const;
export type RoutingRule = (typeof ROUTING_RULES)[number];
/** The rules whose feature comes from a base-model prefill. */
export type ModelRoutingRule = Exclude<RoutingRule, 'text'>;

/** The rule measured best on the suites (docs/ROUTERS.md). */
export const DEFAULT_ROUTING_RULE: RoutingRule = 'text';
/** Routing passes of many prompts (calibration, evals) go this many at a time: well inside the engine's queue bound. */
export const ROUTING_PASSES_AT_ONCE = 4;
/** Cosine-similarity lead the best centroid needs over the runner-up, with a fallback model (docs/ROUTERS.md). */
export const DEFAULT_ROUTING_MARGIN = 0.02;
/**
 * A router asked to blend (no fallback) answers a prompt with no clearly nearest member by the two nearest together,
 * each update times a weight: this one, with this margin, kept the most of the worst skill's perplexity gain on the
 * demo suites' dev part (docs/ROUTERS.md, which also says what blends cost the answers' checks there).
 */
export const DEFAULT_BLEND_WEIGHT = 0.6;
export const DEFAULT_BLEND_MARGIN = 0.075;

/** What the routing pass asks the engine core for under a rule, for a model of `layers` layers. */
export function featureRequest(rule: ModelRoutingRule, layers: number): FeatureRequest {
  switch (rule) {
    case 'value-last':
      return { layers: [layers - 1], logprobs: false };
    case 'value-mid':
      return { layers: [Math.floor(layers / 2)], logprobs: false };
    case 'logprobs':
      return { layers: [], logprobs: true };
  }
}

/** A fitted router: the centring vector and one unit centroid per member, in member order. */
export interface Centroids {
  center: number[];
  centroids: number[][];
  /** `text` rule: the hash buckets the coordinates stand for (text-features.ts) */
  dims?: number[];
}

export interface RouteChoice {
  /** index of the member chosen, or null when no member is clearly nearest (the fallback answers) */
  member: number | null;
  /** index of the nearest member, even when the margin sent the prompt to the fallback */
  nearest: number;
  /** index of the second nearest (null with one member) */
  runnerUp: number | null;
  /** cosine similarity to each member's centroid */
  similarities: number[];
  /** best similarity minus the runner-up's (Infinity with one member) */
  lead: number;
}

function unit(v: Float64Array): Float64Array {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i]! /= norm;
  return v;
}

function centred(feature: ArrayLike<number>, center: readonly number[]): Float64Array {
  if (feature.length !== center.length) {
    throw new InvalidInputError(`a routing feature has ${feature.length} numbers but the router was calibrated with ${center.length}: recreate the router`);
  }
  const out = new Float64Array(feature.length);
  for (let i = 0; i < out.length; i++) out[i] = feature[i]! - center[i]!;
  return unit(out);
}

/**
 * Centroids from calibration features per member (each member needs at least one). `dense` gives a feature's
 * numbers when it is asked for, one feature at a time (each is read twice), so sparse features never need to be
 * dense all at once.
 */
export function fitCentroids<T = ArrayLike<number>>(
  perMember: ReadonlyArray<ReadonlyArray<T>>,
  dense: (feature: T) => ArrayLike<number> = (f) => f as ArrayLike<number>,
): Centroids {
  if (perMember.length === 0) throw new InvalidInputError('a router needs at least one member');
  const first = perMember[0]![0];
  const dim = first === undefined ? 0 : dense(first).length;
  const means = perMember.map((features, m) => {
    if (features.length === 0) throw new InvalidInputError(`member ${m} has no calibration prompts`);
    const mean = new Float64Array(dim);
    for (const feature of features) {
      const f = dense(feature);
      for (let i = 0; i < dim; i++) mean[i]! += f[i]! / features.length;
    }
    return mean;
  });
  const center = new Array<number>(dim).fill(0);
  for (const mean of means) for (let i = 0; i < dim; i++) center[i]! += mean[i]! / means.length;
  const centroids = perMember.map((features) => {
    const acc = new Float64Array(dim);
    for (const f of features) {
      const c = centred(dense(f), center);
      for (let i = 0; i < dim; i++) acc[i]! += c[i]!;
    }
    return Array.from(unit(acc));
  });
  return { center, centroids };
}

/** The member a feature routes to under `margin` (see the header). */
export function chooseMember(fitted: Centroids, feature: ArrayLike<number>, margin: number): RouteChoice {
  const x = centred(feature, fitted.center);
  const similarities = fitted.centroids.map((c) => {
    let dot = 0;
    for (let i = 0; i < x.length; i++) dot += x[i]! * c[i]!;
    return dot;
  });
  let nearest = 0;
  for (let i = 1; i < similarities.length; i++) if (similarities[i]! > similarities[nearest]!) nearest = i;
  let runnerUp: number | null = null;
  for (let i = 0; i < similarities.length; i++) {
    if (i !== nearest && (runnerUp === null || similarities[i]! > similarities[runnerUp]!)) runnerUp = i;
  }
  const lead = runnerUp === null ? Infinity : similarities[nearest]! - similarities[runnerUp]!;
  return { member: lead >= margin ? nearest : null, nearest, runnerUp, similarities, lead };
}
