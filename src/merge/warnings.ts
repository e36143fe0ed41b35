// Warnings before harm: merge recipes that are likely to leave the model worse than its adapters, said before the
// merge runs (API `warnings`, CLI stderr, bot reply), with why and what to try. Measured on four skills trained apart
// on one small Llama (docs/ROUTERS.md, issue 14): PEFT's factor-space TIES with weights 1,1,1,1 made every skill
// worse than the base model; the best exact linear merges kept weights summing to about 1.
import { strongestWeights } from './layer-groups.js';

export interface MergeWarningInput {
  method: string;
  space?: 'delta' | 'factors';
  weights: readonly number[];
  layerWeights?: { weights: number[][] };
}

/** Weight sums above these are flagged: factor space "well above 1", delta space "above about 1". */
const FACTOR_SUM_LIMIT = 1.5;
const DELTA_SUM_LIMIT = 1.1;

const DELTA_SUMS = new Set(['linear', 'cat', 'svd']);
const FACTOR_FLAGGED = new Set(['linear', 'ties', 'dare_ties', 'dare_linear', 'magnitude_prune']);

export function mergeWarnings(request: MergeWarningInput): string[] {
  const weights = strongestWeights(request);
  const sum = weights.reduce((a, b) => a + b, 0);
  const n = weights.length;
  const even = `${+(1 / n).toFixed(3)} each`;
  const shown = +sum.toFixed(3);
  const space = request.space ?? 'delta';
  if (space === 'factors' && FACTOR_FLAGGED.has(request.method) && sum > FACTOR_SUM_LIMIT) {
    return [
      `${request.method} in factors space with weights summing to ${shown} is likely to hurt every skill: PEFT merges A and B ` +
        'separately, so the update mixes each adapter\'s B with the others\' A and grows with the weights (this recipe, ties 1,1,1,1, ' +
        'measured worse than the base model on all four demo skills). Try space "delta" with weights summing to about 1 ' +
        `(e.g. ${even}), a sweep (loraforge sweep), or a router that keeps every adapter whole (loraforge routers create).`,
    ];
  }
  if (space === 'delta' && DELTA_SUMS.has(request.method) && sum > DELTA_SUM_LIMIT) {
    return [
      `${request.method} with weights summing to ${shown} adds the adapters' updates at more than full strength: each skill gets ` +
        'the others\' updates on top of its own, which usually pushes the model past what any one adapter learned. Try weights ' +
        `summing to about 1 (e.g. ${even}), a sweep to tune them (loraforge sweep), or a router (loraforge routers create).`,
    ];
  }
  return [];
}
