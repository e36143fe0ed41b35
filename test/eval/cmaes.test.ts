// CMA-ES (its eigensolver is the merge kernels', tested there): convergence on standard test functions against
// their known minima, bounds, and determinism (the same seed and scores replay the same candidates).
import { describe, expect, it } from 'vitest';
import { Cmaes } from '../../src/eval/cmaes.js';

function minimize(f: (x: number[]) => number, options: ConstructorParameters<typeof Cmaes>[0], generations: number): { best: number[]; value: number } {
  const es = new Cmaes(options);
  let best = { best: options.mean, value: f(options.mean) };
  for (let g = 0; g < generations; g++) {
    const xs = es.ask();
    const ys = xs.map(f);
    ys.forEach((y, i) => {
      if (y < best.value) best = { best: xs[i]!, value: y };
    });
    es.tell(ys);
  }
  return best;
}

describe('CMA-ES', () => {
  it('finds the minimum of a shifted ellipsoid and of Rosenbrock', () => {
    const target = [0.3, -0.2, 0.7, 0.1];
    const ellipsoid = (x: number[]) => x.reduce((s, v, i) => s + 10 ** i * (v - target[i]!) ** 2, 0);
    const e = minimize(ellipsoid, { mean: [0, 0, 0, 0], sigma: 0.5, lower: -5, upper: 5, seed: 1 }, 150);
    e.best.forEach((v, i) => expect(v).toBeCloseTo(target[i]!, 3));
    const rosenbrock = (x: number[]) => 100 * (x[1]! - x[0]! ** 2) ** 2 + (1 - x[0]!) ** 2;
    const r = minimize(rosenbrock, { mean: [-1, 1], sigma: 0.5, lower: -5, upper: 5, seed: 2 }, 300);
    expect(r.value).toBeLessThan(1e-8);
  });

  it('keeps candidates in the bounds, and replays the same candidates from the same seed and scores', () => {
    const run = () => {
      const es = new Cmaes({ mean: [0.25, 0.25, 0.25], sigma: 1, lower: 0, upper: 1.5, seed: 9 });
      const seen: number[][] = [];
      for (let g = 0; g < 5; g++) {
        const xs = es.ask();
        seen.push(...xs);
        es.tell(xs.map((x) => (x[0]! - 1) ** 2 + x[1]! + x[2]!));
      }
      return seen;
    };
    const a = run();
    expect(a.flat().every((v) => v >= 0 && v <= 1.5)).toBe(true);
    expect(run()).toEqual(a);
  });
});
