// Warnings before harm: which merge recipes are flagged, and that the message says why and what to try.
import { describe, expect, it } from 'vitest';
import { mergeWarnings } from '../../src/merge/warnings.js';

describe('merge warnings', () => {
  it('flags factor-space TIES or linear with weights summing well above 1', () => {
    const [w] = mergeWarnings({ method: 'ties', space: 'factors', weights: [1, 1, 1, 1] });
    expect(w).toMatch(/^ties in factors space with weights summing to 4 is likely to hurt every skill: .* Try space "delta" with weights summing to about 1 \(e\.g\. 0\.25 each\)/);
    expect(mergeWarnings({ method: 'linear', space: 'factors', weights: [1, 1] })).toHaveLength(1);
    expect(mergeWarnings({ method: 'ties', space: 'factors', weights: [0.5, 0.5, 0.4] })).toEqual([]); // 1.4: not well above 1
    expect(mergeWarnings({ method: 'svd', space: 'factors', weights: [1, 1] })).toEqual([]);
  });

  it('flags delta-space linear sums above about 1', () => {
    expect(mergeWarnings({ method: 'linear', weights: [1, 1] })[0]).toMatch(/^linear with weights summing to 2 adds the adapters' updates at more than full strength.*e\.g\. 0\.5 each/);
    expect(mergeWarnings({ method: 'cat', space: 'delta', weights: [0.6, 0.6] })).toHaveLength(1);
    expect(mergeWarnings({ method: 'linear', weights: [0.5, 0.5] })).toEqual([]);
    expect(mergeWarnings({ method: 'linear', weights: [0.55, 0.55] })).toEqual([]); // 1.1: about 1
    expect(mergeWarnings({ method: 'ties', weights: [1, 1, 1, 1] })).toEqual([]); // delta-space TIES keeps each entry's scale
  });
});
