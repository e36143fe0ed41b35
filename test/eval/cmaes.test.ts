// CMA-ES: converges on the sphere and on Rosenbrock as the tutorial's implementation does, respects its bounds, is
// deterministic for a seed, and a run told its stored evaluations again asks for the same next points.
import { describe, expect, it } from 'vitest';
import { Cmaes, jacobiEigen } from '../../src/eval/cmaes.js';

const sphere = (x: number[]) => x.reduce((s, v) => s + v * v, 0);
const rosenbrock = (x: number[]) => x.slice(0, -1).reduce((s, v, i) => s + 100 * (x[i + 1]! - v * v) ** 2 + (1 - v) ** 2, 0);

function run(es: Cmaes, f: (x: number[]) => number, evals: number): { best: number; log: number[][] } {
  let best = Infinity;
  const log: number[][] = [];
  for (let used = 0; used < evals; used += es.lambda) {
    const fit = es.ask().map((c) => f(c.x));
    log.push(fit);
    best = Math.min(best, ...fit);
    es.tell(fit);
  }
  return { best, log };
}

describe('CMA-ES', () => {
  it('converges on the 5-d sphere from afar', () => {
    const es = new Cmaes({ x0: [3, -2, 1, 4, -3], sigma0: 1, seed: 1 });
    const { best } = run(es, sphere, 2000);
    expect(best).toBeLessThan(1e-10);
    expect(sphere(es.center)).toBeLessThan(1e-10);
  });

  it('finds the minimum of the 4-d Rosenbrock valley', () => {
    const es = new Cmaes({ x0: [0, 0, 0, 0], sigma0: 0.5, seed: 7 });
    run(es, rosenbrock, 6000);
    for (const v of es.center) expect(v).toBeCloseTo(1, 4);
  });

  it('keeps the evaluated points inside the bounds and finds a minimum on the boundary', () => {
    const es = new Cmaes({ x0: [0.5, 0.5, 0.5], sigma0: 0.3, seed: 3, bounds: { lower: 0, upper: 1 } });
    const target = [1, 0, 0.3];
    const f = (x: number[]) => x.reduce((s, v, i) => s + (v + (i === 0 ? -2 : i === 1 ? 1 : -0.3)) ** 2, 0); // optimum (2, −1, 0.3) clipped
    for (let g = 0; g < 60; g++) {
      const c = es.ask();
      for (const p of c) for (const v of p.x) expect(v >= 0 && v <= 1).toBe(true);
      es.tell(c.map((p) => f(p.x)));
    }
    es.center.forEach((v, i) => expect(v).toBeCloseTo(target[i]!, 3));
  });

  it('is deterministic for a seed, differs across seeds, and replays from stored evaluations', () => {
    const a = run(new Cmaes({ x0: [1, 1, 1], sigma0: 0.5, seed: 42 }), rosenbrock, 200);
    const b = run(new Cmaes({ x0: [1, 1, 1], sigma0: 0.5, seed: 42 }), rosenbrock, 200);
    const c = run(new Cmaes({ x0: [1, 1, 1], sigma0: 0.5, seed: 43 }), rosenbrock, 200);
    expect(b.log).toEqual(a.log);
    expect(c.log).not.toEqual(a.log);
    // replay: a fresh strategy told the stored values (without evaluating) asks for the same next generation
    const live = new Cmaes({ x0: [0.2, 0.4], sigma0: 0.3, seed: 9 });
    const stored: number[][] = [];
    for (let g = 0; g < 5; g++) {
      const fit = live.ask().map((p) => sphere(p.x));
      stored.push(fit);
      live.tell(fit);
    }
    const replay = new Cmaes({ x0: [0.2, 0.4], sigma0: 0.3, seed: 9 });
    for (const fit of stored) {
      replay.ask();
      replay.tell(fit);
    }
    expect(replay.ask()).toEqual(live.ask());
    expect(replay.generation).toBe(5);
  });

  it('asks the same points until told, and refuses a wrong number of values', () => {
    const es = new Cmaes({ x0: [0, 0], sigma0: 1, seed: 1 });
    expect(es.ask()).toBe(es.ask());
    expect(() => es.tell([1])).toThrow(/fitness of the 6 points/);
  });

  it('decomposes a symmetric matrix exactly', () => {
    const C = [
      [4, 1, 0.5],
      [1, 3, 0.2],
      [0.5, 0.2, 2],
    ];
    const { values, vectors: V } = jacobiEigen(C);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) expect(values.reduce((s, l, k) => s + V[i]![k]! * l * V[j]![k]!, 0)).toBeCloseTo(C[i]![j]!, 12);
  });
});
