// The benches' shared median against values worked by hand.
import { describe, expect, it } from 'vitest';
import { median } from '../../bench/stats.js';

describe('median', () => {
  it('takes the middle value of an odd count, the mean of the middle two of an even one, in any order', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(median([])).toBeNaN();
  });

  it('leaves its input as it was', () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
});
