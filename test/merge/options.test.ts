// The method table and the recipe schema: the traits agree with one another, the schema's refusals and defaults
// follow them, and the default weights give one adapter's scale.
import { describe, expect, it } from 'vitest';
import { defaultWeights, DEFAULT_WEIGHTS_TEXT, MERGE_METHODS, METHODS, parseMergeOptions, PRUNING_METHODS, takes, traitsOf } from '../../src/merge/options.js';

describe('METHODS', () => {
  it('lists every method once, in the order of the help texts', () => {
    expect(MERGE_METHODS).toEqual(['linear', 'cat', 'svd', 'ties', 'dare_linear', 'dare_ties', 'magnitude_prune']);
    expect([...PRUNING_METHODS]).toEqual(['ties', 'dare_linear', 'dare_ties', 'magnitude_prune']);
  });

  it('has traits that agree: exact means nothing dropped, no vote, and a factor form; density where entries drop', () => {
    for (const m of MERGE_METHODS) {
      const t = traitsOf(m);
      expect(t.exact, m).toBe(t.sparsify === 'none' && !t.electSigns);
      expect(t.factors !== null, m).toBe(t.exact);
      expect(takes(m, 'density'), m).toBe(t.sparsify !== 'none');
      // the dense path's randomized SVD takes a seed; DARE's masks too
      if (!t.exact) expect(takes(m, 'seed'), m).toBe(true);
      if (t.electSigns) expect(takes(m, 'majoritySignMethod'), m).toBe(true);
      expect(takes(m, 'trimScope'), m).toBe(t.sparsify === 'magnitude');
      expect(METHODS[m].summary.length, m).toBeGreaterThan(10);
    }
  });
});

describe('the recipe schema reads the table', () => {
  it('refuses a density where no entry is dropped, naming the methods that take one', () => {
    for (const m of MERGE_METHODS.filter((x) => !takes(x, 'density'))) {
      expect(() => parseMergeOptions({ method: m, weights: [1], density: 0.5 })).toThrow(
        `method ${m} keeps every entry and takes no density; use ties, dare_linear, dare_ties or magnitude_prune to prune`,
      );
    }
  });

  it('fills in the default density for the pruning methods only', () => {
    for (const m of MERGE_METHODS) expect(parseMergeOptions({ method: m, weights: [1] }).density, m).toBe(takes(m, 'density') ? 0.2 : undefined);
  });

  it('refuses a rank for cat in both spaces, and in factors space for everything but svd', () => {
    expect(() => parseMergeOptions({ method: 'cat', weights: [1], rank: 4 })).toThrow(/cat always has rank Σr_i/);
    expect(() => parseMergeOptions({ method: 'linear', space: 'factors', weights: [1], rank: 4 })).toThrow(/in factors space only svd takes a rank/);
    expect(parseMergeOptions({ method: 'svd', space: 'factors', weights: [1], rank: 4 }).rank).toBe(4);
    expect(parseMergeOptions({ method: 'ties', weights: [1], rank: 4 }).rank).toBe(4);
  });
});

describe('defaultWeights', () => {
  it('gives one adapter scale: 1/n each for the summing methods, 1 each where signs are elected and averaged', () => {
    expect(defaultWeights('linear', 4)).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(defaultWeights('magnitude_prune', 2)).toEqual([0.5, 0.5]);
    expect(defaultWeights('ties', 3)).toEqual([1, 1, 1]);
    expect(defaultWeights('dare_ties', 2)).toEqual([1, 1]);
    expect(DEFAULT_WEIGHTS_TEXT).toBe(
      '1/n each for linear, cat, svd, dare_linear and magnitude_prune, 1 each for ties and dare_ties (they average the agreeing entries): the scale of one adapter',
    );
  });
});
