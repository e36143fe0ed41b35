import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors.js';
import { SweepRequestSchema } from '../../src/eval/requests.js';
import { pointLabel, sweepPoints } from '../../src/eval/sweep-space.js';

const request = (input: Record<string, unknown>) => SweepRequestSchema.parse(input);

describe('sweep points', () => {
  it('a grid is every combination; density only for pruning methods, rank not for cat; weights one number or one per adapter', () => {
    const points = sweepPoints(
      request({ space: { method: ['linear', 'ties', 'cat'], density: [0.2, 0.5], weights: [0.25, [0.4, 0.2, 0.2, 0.2]], rank: [8, 16] } }),
      4,
    );
    const labels = points.map(pointLabel);
    expect(labels).toEqual([
      'linear w=0.25 r=8',
      'linear w=0.25 r=16',
      'linear w=0.4/0.2/0.2/0.2 r=8',
      'linear w=0.4/0.2/0.2/0.2 r=16',
      'ties d=0.2 w=0.25 r=8',
      'ties d=0.2 w=0.25 r=16',
      'ties d=0.2 w=0.4/0.2/0.2/0.2 r=8',
      'ties d=0.2 w=0.4/0.2/0.2/0.2 r=16',
      'ties d=0.5 w=0.25 r=8',
      'ties d=0.5 w=0.25 r=16',
      'ties d=0.5 w=0.4/0.2/0.2/0.2 r=8',
      'ties d=0.5 w=0.4/0.2/0.2/0.2 r=16',
      'cat w=0.25',
      'cat w=0.4/0.2/0.2/0.2',
    ]);
    // every point is a complete merge recipe with the schema's defaults
    expect(points[4]).toEqual({
      method: 'ties',
      space: 'delta',
      weights: [0.25, 0.25, 0.25, 0.25],
      density: 0.2,
      rank: 8,
      majoritySignMethod: 'total',
      seed: 0,
      trimScope: 'tensor',
    });
  });

  it('defaults: linear, ties and dare_ties; densities 0.3 and 0.6; weights 1/n and 2/n', () => {
    const labels = sweepPoints(request({}), 4).map(pointLabel);
    expect(labels).toEqual([
      'linear w=0.25',
      'linear w=0.5',
      'ties d=0.3 w=0.25',
      'ties d=0.3 w=0.5',
      'ties d=0.6 w=0.25',
      'ties d=0.6 w=0.5',
      'dare-ties d=0.3 w=0.25',
      'dare-ties d=0.3 w=0.5',
      'dare-ties d=0.6 w=0.25',
      'dare-ties d=0.6 w=0.5',
    ]);
  });

  it('fixed options apply to every point; duplicates collapse', () => {
    const points = sweepPoints(request({ space: { method: ['linear', 'linear'], weights: [0.5, 0.5] }, options: { space: 'factors', seed: 7 } }), 2);
    expect(points).toHaveLength(1);
    expect(points[0]).toMatchObject({ method: 'linear', space: 'factors', seed: 7, weights: [0.5, 0.5] });
  });

  it('random search: the seed decides the points; ranges are sampled within bounds', () => {
    const r = request({ search: 'random', samples: 12, seed: 3, space: { method: ['ties', 'dare_linear'], density: { min: 0.1, max: 0.9 }, weights: { min: 0.2, max: 0.6 } } });
    const a = sweepPoints(r, 3);
    expect(a).toEqual(sweepPoints(r, 3));
    expect(a).toHaveLength(12);
    expect(a).not.toEqual(sweepPoints({ ...r, seed: 4 }, 3));
    for (const p of a) {
      expect(p.density!).toBeGreaterThanOrEqual(0.1);
      expect(p.density!).toBeLessThanOrEqual(0.9);
      expect(new Set(p.weights).size).toBe(1);
      expect(p.weights[0]!).toBeGreaterThanOrEqual(0.2);
      expect(p.weights[0]!).toBeLessThanOrEqual(0.6);
    }
    // a small space runs out of distinct points instead of looping
    expect(sweepPoints(request({ search: 'random', samples: 50, space: { method: ['linear'], weights: [0.5, 1] } }), 2)).toHaveLength(2);
  });

  it('refuses what cannot be run, saying what to change', () => {
    const fails = (input: Record<string, unknown>, n: number, message: RegExp) => {
      expect(() => sweepPoints(request(input), n)).toThrow(InvalidInputError);
      expect(() => sweepPoints(request(input), n)).toThrow(message);
    };
    fails({ space: { weights: [[1, 2, 3]] } }, 2, /\[1, 2, 3\] has 3 weights for 2 adapters/);
    fails({ space: { density: { min: 0.1, max: 0.5 } } }, 2, /a grid needs lists of values/);
    fails({ space: { method: ['ties'], density: [0.1, 0.2], weights: [0.1, 0.2, 0.3] }, maxPoints: 5 }, 2, /the grid has 6 points, more than maxPoints 5/);
    fails({ space: { method: ['linear'], rank: [4] }, options: { space: 'factors' } }, 2, /linear .* in factors space only svd takes a rank/);
    fails({ search: 'random', samples: 100, maxPoints: 10 }, 2, /samples 100 is more than maxPoints 10/);
    expect(() => request({ space: { density: [1.5] } })).toThrow();
  });
});
