// A tuned sweep: CMA-ES (cmaes.ts) searches the merge weights, one per adapter or one per adapter per layer group
// (AdaMerging-style, merge/layer-groups.ts), maximising the worst category's retention on the tune part of the
// suites (calibration and dev, split.ts); the best point is then scored on the test part, which the search never
// saw. Each point is an ordinary merge (its recipe holds the weights), queued a generation at a time and scored
// like a sweep's (sweep.ts).
//
// Resumable like a sweep: every finished point is in the sweep's Redis hash, and the optimizer is seeded, so a
// job that runs again tells it the stored values generation by generation, gets the same points back, and only
// merges and scores the ones missing.
import { CancelledError, isLoraforgeError } from '../errors.js';
import { defaultWeights, MergeOptionsSchema, type MergeOptions } from '../merge/options.js';
import { USER_ERRORS } from '../queue/merges.js';
import type { MergeStatus } from '../queue/types.js';
import { canonicalJson } from '../util/canonical-json.js';
import { Cmaes } from './cmaes.js';
import type { EvalHooks } from './evaluate.js';
import { evalKeys, type JobProgress, type SweepJobData, type SweepPointResult, type TuneResult, type TuneSpec } from './jobs.js';
import { failed, POINT_FIELD, rankPoints, scorePoint, submitAndWait, sweepBaseline, type SweepDeps } from './sweep.js';
import { startStep, TUNE_BOUNDS } from './tune-start.js';

/** The fitness of a point whose merge failed: worse than any retention a merge reaches. */
const FAILED_FITNESS = 10;
const TEST_FIELD = 'test';

/** The search's start: every weight at the method's default (1/n summing, 1 electing), and its first step. */
export function tuneStart(spec: Pick<TuneSpec, 'base' | 'layerGroups'>, n: number): { x0: number[]; sigma0: number } {
  const w = defaultWeights(spec.base.method, n);
  const x0 = spec.layerGroups ? w.flatMap((wi) => new Array<number>(spec.layerGroups!).fill(wi)) : w;
  return { x0, sigma0: startStep(w[0]!) };
}

/** The merge recipe of a point: x is one weight per adapter, or per adapter per group (adapter-major, weights 1). */
export function tuneOptions(spec: Pick<TuneSpec, 'base' | 'layerGroups'>, n: number, x: readonly number[]): MergeOptions {
  const round = (v: number) => Math.round(v * 1e6) / 1e6; // a readable recipe; far below what changes a merge
  const g = spec.layerGroups;
  const raw = g
    ? { ...spec.base, weights: new Array<number>(n).fill(1), layerWeights: { weights: Array.from({ length: n }, (_, i) => x.slice(i * g, (i + 1) * g).map(round)) } }
    : { ...spec.base, weights: x.map(round), layerWeights: undefined };
  return MergeOptionsSchema.parse(raw);
}

/** Lower is better for CMA-ES: minus the worst retention on the tune part (the mean NLL when no category has an expert). */
function fitness(p: SweepPointResult): number {
  if (p.state !== 'completed') return FAILED_FITNESS;
  return p.worstRetention !== null && p.worstRetention !== undefined ? -p.worstRetention : (p.meanNll ?? FAILED_FITNESS);
}

/** How many of a job's items are tuned on (a job queued before the tune part stored its dev part's size). */
const tuneItemsOf = (spec: TuneSpec): number => spec.tuneItems ?? spec.devItems!;

export async function readTuneResult(deps: Pick<SweepDeps, 'redis' | 'redisPrefix'>, id: string, spec: TuneSpec, items: number): Promise<TuneResult> {
  const stored = await deps.redis.hget(evalKeys(deps.redisPrefix).sweep(id), TEST_FIELD);
  return {
    optimizer: spec.optimizer,
    budget: spec.budget,
    layerGroups: spec.layerGroups,
    tuneItems: tuneItemsOf(spec),
    testItems: items - tuneItemsOf(spec),
    test: stored ? (JSON.parse(stored) as TuneResult['test']) : null,
  };
}

export async function runTunedSweep(
  deps: SweepDeps,
  id: string,
  data: SweepJobData,
  hooks: EvalHooks & { onProgress?: (p: JobProgress) => void } = {},
): Promise<SweepPointResult[]> {
  const spec = data.tune!;
  const { redis, log } = deps;
  const key = evalKeys(deps.redisPrefix).sweep(id);
  const state = await redis.hgetall(key);
  const done = new Map<number, SweepPointResult>();
  for (const [k, v] of Object.entries(state)) if (k.startsWith(POINT_FIELD)) done.set(Number(k.slice(POINT_FIELD.length)), JSON.parse(v) as SweepPointResult);
  const total = spec.budget;
  const report = (phase: string, d: number, t: number) => hooks.onProgress?.({ phase, done: d, total: t, points: { done: done.size, total } });
  if (done.size > 0) log.info({ sweep: id, done: done.size, total }, 'tuned sweep resumed: stored evaluations are replayed');
  const baseline = await sweepBaseline(deps, key, state, data, hooks.signal, (d, t) => report('baseline', d, t));
  const tuned = { start: 0, end: tuneItemsOf(spec) };
  const n = data.adapters.length;
  const start = tuneStart(spec, n);
  const es = new Cmaes({ mean: start.x0, sigma: start.sigma0, lower: TUNE_BOUNDS.lower, upper: TUNE_BOUNDS.upper, seed: spec.seed });

  const evaluate = async (index: number, options: MergeOptions, merge: MergeStatus | Error): Promise<SweepPointResult> => {
    if (merge instanceof Error) {
      if (!isLoraforgeError(merge) || !USER_ERRORS.has(merge.code) || merge instanceof CancelledError) throw merge;
      return failed(index, options, merge.code, merge.message);
    }
    if (merge.state !== 'completed' || !merge.result) {
      return { ...failed(index, options, merge.error?.code ?? merge.state, merge.error?.message ?? `the merge ${merge.state}`), mergeId: merge.id };
    }
    return scorePoint(deps, data, baseline, index, options, merge, hooks, (d, t) => report('score', d, t), tuned);
  };

  report('merge', done.size, total);
  for (let first = 0; first < total; first += es.popsize) {
    const asked = es.ask().slice(0, total - first);
    const points = asked.map((x) => tuneOptions(spec, n, x));
    points.forEach((options, k) => {
      const stored = done.get(first + k);
      // a replay asks for the points it stored; anything else means the job's data or the optimizer changed
      if (stored && canonicalJson(stored.options) !== canonicalJson(options)) log.warn({ sweep: id, point: first + k }, 'a stored point differs from the replayed one: its stored value is used');
    });
    // the generation's missing merges are queued together; each is scored as soon as it is registered
    const merges = points.map((options, k) =>
      done.has(first + k)
        ? null
        : submitAndWait(deps, id, data.adapters, first + k, options, hooks.signal).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
    );
    for (let k = 0; k < points.length; k++) {
      const index = first + k;
      if (done.has(index)) continue;
      const outcome = await merges[k]!;
      if (hooks.signal?.aborted) throw new CancelledError('the sweep was cancelled');
      const result = await evaluate(index, points[k]!, outcome);
      await redis.hset(key, `${POINT_FIELD}${index}`, JSON.stringify(result));
      done.set(index, result);
      log.info({ sweep: id, point: index, label: result.label, worst: result.worstRetention, state: result.state }, 'tuned point finished');
      report('merge', done.size, total);
    }
    if (asked.length === es.popsize) es.tell(asked.map((_, k) => fitness(done.get(first + k)!)));
  }

  // ---- the best point by the tune part, scored on the test part
  const ranking = rankPoints([...done.values()]);
  const best = ranking.find((p) => p.state === 'completed');
  if (best && !state[TEST_FIELD] && tuned.end < data.items.length) {
    const status = await deps.merges.status(best.mergeId!);
    const test = await scorePoint(deps, data, baseline, best.index, best.options as MergeOptions, status, hooks, (d, t) => report('test', d, t), {
      start: tuned.end,
      end: data.items.length,
    });
    const stored: TuneResult['test'] = {
      point: best.index,
      adapter: best.adapter!,
      categories: test.categories!,
      worstRetention: test.worstRetention ?? null,
      meanRetention: test.meanRetention ?? null,
    };
    await redis.hset(key, TEST_FIELD, JSON.stringify(stored));
    log.info({ sweep: id, point: best.index, devWorst: best.worstRetention, testWorst: stored.worstRetention }, 'tuned sweep: best point scored on the test part');
  }
  return ranking;
}
