// Runs a sweep: the base model and the input adapters are scored once (the baseline), then each point's merge is
// queued as an ordinary merge job and, once registered, scored on the suites. Merges run on the queue's workers
// while the engine scores the previous point (a small window of merges ahead).
//
// Resumable: the baseline and every finished point are written to one Redis hash as soon as they exist. A sweep
// job that runs again (its process was killed and BullMQ handed the job to another, or the same after a restart)
// reads that hash and only does the rest; a point's merge submitted before the kill is found again by recipe,
// because merges are deduplicated by recipe.
import type { Redis } from 'ioredis';
import { CancelledError, isLoraforgeError } from '../errors.js';
import type { MergeOptions } from '../merge/options.js';
import { USER_ERRORS, type MergeService } from '../queue/merges.js';
import type { MergeStatus } from '../queue/types.js';
import type { Registry } from '../registry/registry.js';
import type { Logger } from '../util/log.js';
import { scoreItems, type EvalEngine, type EvalHooks } from './evaluate.js';
import { evalKeys, type JobProgress, type SweepBaseline, type SweepJobData, type SweepPointResult } from './jobs.js';
import { aggregate, compareByRetention, type ItemScore, type ScoredModel } from './metrics.js';
import { pointLabel } from './sweep-space.js';

export interface SweepDeps {
  engine: EvalEngine;
  merges: Pick<MergeService, 'submit' | 'status' | 'watch'>;
  registry: Pick<Registry, 'find'>;
  redis: Redis;
  redisPrefix: string;
  log: Logger;
  /** merges queued ahead of the point being scored */
  mergesAhead?: number;
  /** fallback poll of a merge's status, besides its events */
  mergePollMs?: number;
}

export interface StoredBaseline {
  models: ScoredModel[];
  scores: Record<string, Array<{ nll: number; tokens: number }>>;
}

const TERMINAL = new Set<MergeStatus['state']>(['completed', 'failed', 'cancelled']);
export const POINT_FIELD = 'point:';

/** Who registered a sweep's merges: the registry record says which adapters a sweep created. */
export const sweepRegistrant = (sweepId: string) => `sweep:${sweepId}`;

/** Finished points from a sweep's hash, best first. */
export async function readSweepState(redis: Redis, redisPrefix: string, id: string): Promise<{ baseline: SweepBaseline | null; ranking: SweepPointResult[] }> {
  const hash = await redis.hgetall(evalKeys(redisPrefix).sweep(id));
  const points = Object.entries(hash)
    .filter(([k]) => k.startsWith(POINT_FIELD))
    .map(([, v]) => JSON.parse(v) as SweepPointResult);
  return { baseline: hash.summary ? (JSON.parse(hash.summary) as SweepBaseline) : null, ranking: rankPoints(points) };
}

/** Best first: completed points by worst retention, then mean, then mean NLL; failed points last, by index. */
export function rankPoints(points: readonly SweepPointResult[]): SweepPointResult[] {
  const overall = (p: SweepPointResult) => ({ meanNll: p.meanNll ?? Infinity, worstRetention: p.worstRetention ?? null, meanRetention: p.meanRetention ?? null });
  return [...points].sort((a, b) => {
    if (a.state !== b.state) return a.state === 'completed' ? -1 : 1;
    if (a.state === 'failed') return a.index - b.index;
    return compareByRetention(overall(a), overall(b)) || a.index - b.index;
  });
}

function toScores(stored: StoredBaseline['scores'][string]): ItemScore[] {
  return stored.map((s) => ({ ...s, passed: null }));
}

export async function runSweep(deps: SweepDeps, id: string, data: SweepJobData, hooks: EvalHooks & { onProgress?: (p: JobProgress) => void } = {}): Promise<SweepPointResult[]> {
  const { redis, log } = deps;
  const key = evalKeys(deps.redisPrefix).sweep(id);
  const total = data.points.length;
  const state = await redis.hgetall(key);
  const done = new Map<number, SweepPointResult>();
  for (const [k, v] of Object.entries(state)) if (k.startsWith(POINT_FIELD)) done.set(Number(k.slice(POINT_FIELD.length)), JSON.parse(v) as SweepPointResult);
  const report = (phase: string, d: number, t: number) =>
    hooks.onProgress?.({ phase, done: d, total: t, points: { done: done.size, total } });
  if (done.size > 0) log.info({ sweep: id, done: done.size, total }, 'sweep resumed: finished points are kept');

  const baseline = await sweepBaseline(deps, key, state, data, hooks.signal, (d, t) => report('baseline', d, t));

  // ---- points: merges queued a few ahead, each scored as soon as it is registered
  const pending = data.points.map((_, i) => i).filter((i) => !done.has(i));
  const ahead = Math.max(1, deps.mergesAhead ?? 2);
  const merged = new Map<number, Promise<MergeStatus | Error>>();
  const startMerge = (i: number) => {
    if (!merged.has(i)) merged.set(i, submitAndWait(deps, id, data.adapters, i, data.points[i]!, hooks.signal).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))));
  };
  report('merge', done.size, total);
  for (let k = 0; k < pending.length; k++) {
    for (let j = k; j < Math.min(pending.length, k + ahead); j++) startMerge(pending[j]!);
    const index = pending[k]!;
    const outcome = await merged.get(index)!;
    if (hooks.signal?.aborted) throw new CancelledError('the sweep was cancelled');
    const options = data.points[index]!;
    let result: SweepPointResult;
    if (outcome instanceof Error) {
      // a refused recipe fails its point; anything else (Redis away, the engine restarting) fails the attempt, and
      // the retry resumes here
      if (!isLoraforgeError(outcome) || !USER_ERRORS.has(outcome.code) || outcome instanceof CancelledError) throw outcome;
      result = failed(index, options, outcome.code, outcome.message);
    } else if (outcome.state !== 'completed' || !outcome.result) {
      result = { ...failed(index, options, outcome.error?.code ?? outcome.state, outcome.error?.message ?? `the merge ${outcome.state}`), mergeId: outcome.id };
    } else {
      result = await scorePoint(deps, data, baseline, index, options, outcome, hooks, (d, t) => report('score', d, t));
    }
    await redis.hset(key, `${POINT_FIELD}${index}`, JSON.stringify(result));
    done.set(index, result);
    log.info({ sweep: id, point: index, label: result.label, worst: result.worstRetention, state: result.state }, 'sweep point finished');
    report('merge', done.size, total);
  }
  return rankPoints([...done.values()]);
}

/** The baseline of a sweep (the base model and every input adapter on every item), from its hash or scored now. */
export async function sweepBaseline(
  deps: SweepDeps,
  key: string,
  state: Record<string, string>,
  data: SweepJobData,
  signal: AbortSignal | undefined,
  progress: (done: number, total: number) => void,
): Promise<StoredBaseline> {
  if (state.baseline) return JSON.parse(state.baseline) as StoredBaseline;
  const models: ScoredModel[] = [{ name: deps.engine.modelId, kind: 'base' }];
  for (const name of data.adapters) {
    const record = await deps.registry.find(name);
    models.push({ name, kind: record?.recipe ? 'merge' : 'adapter', ...(record?.category ? { category: record.category } : {}) });
  }
  const scored = await scoreItems(deps.engine, data.items, models.map((m) => m.name), data.format, { signal, onProgress: (p) => progress(p.done, p.total) });
  const baseline: StoredBaseline = { models, scores: Object.fromEntries(scored) };
  const agg = aggregate({ items: data.items, models, scores: new Map(models.map((m) => [m.name, toScores(baseline.scores[m.name]!)])), experts: data.experts });
  const summary: SweepBaseline = {
    categories: agg.categories,
    experts: agg.experts,
    perplexity: Object.fromEntries(agg.models.map((m) => [m.model, Object.fromEntries(Object.entries(m.categories).map(([c, s]) => [c, s.perplexity]))])),
  };
  await deps.redis.hset(key, 'baseline', JSON.stringify(baseline), 'summary', JSON.stringify(summary));
  return baseline;
}

export function failed(index: number, options: MergeOptions, code: string, message: string): SweepPointResult {
  return { index, label: pointLabel(options), options: { ...options }, state: 'failed', error: { code, message }, finishedAt: new Date().toISOString() };
}

export async function submitAndWait(deps: SweepDeps, sweepId: string, adapters: string[], index: number, options: MergeOptions, signal: AbortSignal | undefined): Promise<MergeStatus> {
  const submitted = await deps.merges.submit({
    ...options,
    adapters,
    description: `sweep ${sweepId}, point ${index}: ${pointLabel(options)}`,
    registeredBy: sweepRegistrant(sweepId),
    replace: false,
  });
  return waitForMerge(deps, submitted, signal);
}

async function waitForMerge(deps: SweepDeps, first: MergeStatus, signal: AbortSignal | undefined): Promise<MergeStatus> {
  let status = first;
  while (!TERMINAL.has(status.state)) {
    if (signal?.aborted) throw new CancelledError('the sweep was cancelled');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, deps.mergePollMs ?? 2_000);
      const stop = deps.merges.watch(status.id, (event) => event.type === 'finished' && finish());
      const onAbort = () => finish();
      signal?.addEventListener('abort', onAbort, { once: true });
      function finish() {
        clearTimeout(timer);
        stop();
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }
    });
    status = await deps.merges.status(status.id);
  }
  return status;
}

/** Items [start, end) of a sweep's list: a tuned search scores its points on the tune part only. */
export interface ItemRange {
  start: number;
  end: number;
}

export async function scorePoint(
  deps: SweepDeps,
  data: SweepJobData,
  baseline: StoredBaseline,
  index: number,
  options: MergeOptions,
  merge: MergeStatus,
  hooks: EvalHooks,
  progress: (done: number, total: number) => void,
  part: ItemRange = { start: 0, end: data.items.length },
): Promise<SweepPointResult> {
  const name = merge.result!.name;
  const items = data.items.slice(part.start, part.end);
  const scored = await scoreItems(deps.engine, items, [name], data.format, { signal: hooks.signal, onProgress: (p) => progress(p.done, p.total) });
  const point: ScoredModel = { name, kind: 'merge' };
  const models = [...baseline.models.filter((m) => m.name !== name), point];
  const scores = new Map<string, ItemScore[]>(baseline.models.map((m) => [m.name, toScores(baseline.scores[m.name]!.slice(part.start, part.end))]));
  scores.set(name, toScores(scored.get(name)!));
  const agg = aggregate({ items, models, scores, experts: data.experts });
  const mine = agg.models.find((m) => m.model === name)!;
  return {
    index,
    label: pointLabel(options),
    options: { ...options },
    state: 'completed',
    adapter: name,
    mergeId: merge.id,
    categories: Object.fromEntries(Object.entries(mine.categories).map(([c, s]) => [c, { perplexity: s.perplexity, retention: s.retention }])),
    worstRetention: mine.overall.worstRetention,
    meanRetention: mine.overall.meanRetention,
    meanNll: mine.overall.meanNll,
    finishedAt: new Date().toISOString(),
  };
}
