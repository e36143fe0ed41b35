// Where a search of merge weights starts from and how far it first steps, shared by the server's tuned sweep
// (tune.ts) and the client-side `loraforge tune`; free of imports, so the CLI reads it at start-up.

/** Weights are searched in [0, 1.5]: past that a merge overshoots (MERGE.md); negative weights rarely help. */
export const TUNE_BOUNDS = { lower: 0, upper: 1.5 };
export const DEFAULT_BUDGET = 60;

/**
 * CMA-ES's first step from a start weight w: 0.4·w (0.1 from 1/4 each), at most 0.3 of the bounds' range. The best
 * weights sit near the method's default, so a search that starts wide (Hansen's rule of thumb, w itself here) spends
 * its first generations far from them: on the demo's four skills a step of w reached 0.67–0.75 of the worst skill in
 * 60 evaluations and needed 120 to reach 0.80, where 0.4·w reached 0.78–0.79 in 60 (docs/eval.md).
 */
export const startStep = (w: number): number => Math.min(0.4 * w, 0.3 * (TUNE_BOUNDS.upper - TUNE_BOUNDS.lower));
