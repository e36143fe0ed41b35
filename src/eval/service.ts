// The API's side of evals and sweeps: accept a request (suites resolved, models and adapters checked, a sweep's
// points expanded and validated, all before anything is queued), report a job's status, follow its events, cancel
// it, and keep a sweep's best merge under a name. The work runs in ./worker.ts, next to the inference engine.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Queue, QueueEvents, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.js';
import { bullConnection, bullPrefix } from '../queue/connection.js';
import { jobView } from '../queue/merges.js';
import type { Registry } from '../registry/registry.js';
import type { RouterRecord, RouterStore } from '../registry/routers.js';
import type { Logger } from '../util/log.js';
import type { EvalJobResult } from './worker.js';
import { heatmapSvg, type HeatmapInput } from './heatmap.js';
import {
  EVAL_QUEUE,
  evalKeys,
  type EvalJobData,
  type EvalQueueJobData,
  type EvalStatus,
  type JobProgress,
  type RegisterBestRequest,
  type SweepJobData,
  type SweepPointResult,
  type SweepStatus,
} from './jobs.js';
import type { EvalReport } from './report.js';
import type { EvalRequest, SweepRequest } from './requests.js';
import { BUILTIN_SUITES_DIR, loadSuites, validateItems, type SuiteItem } from './suite.js';
import { itemsOfPart, type EvalPart } from './split.js';
import { readSweepState } from './sweep.js';
import { DEFAULT_RANDOM_SAMPLES, sweepPoints } from './sweep-space.js';
import { readTuneResult, tuneOptions, tuneStart } from './tune.js';
import { DEFAULT_BUDGET } from './tune-start.js';
import { MergeOptionsSchema, PRUNING_METHODS } from '../merge/options.js';

export type EvalJobEvent = { type: 'progress'; progress: JobProgress } | { type: 'state'; state: 'queued' | 'running' } | { type: 'finished' };

export interface EvalServiceOptions {
  redisUrl: string;
  redisPrefix: string;
  redis: Redis;
  registry: Registry;
  log: Logger;
  /** where named suites are read from */
  suitesDir?: string;
  /** routers that evals may score (none when absent) */
  routers?: RouterStore;
  /** attempts per job for transient failures (a sweep resumes on each) */
  attempts?: number;
  backoffMs?: number;
}

type EvalJob = Job<EvalQueueJobData, EvalJobResult>;

const newId = (kind: 'eval' | 'sweep') => `${kind}-${randomBytes(12).toString('hex')}`;

export class EvalService {
  readonly queue: Queue<EvalQueueJobData, EvalJobResult>;
  private readonly queueEvents: QueueEvents;
  private readonly emitter = new EventEmitter();
  private readonly keys: ReturnType<typeof evalKeys>;
  /** where named suites are read from */
  readonly suitesDir: string;

  private constructor(private readonly opts: EvalServiceOptions) {
    this.suitesDir = opts.suitesDir ?? BUILTIN_SUITES_DIR;
    const prefix = bullPrefix(opts.redisPrefix);
    this.keys = evalKeys(opts.redisPrefix);
    this.queue = new Queue(EVAL_QUEUE, { connection: bullConnection(opts.redisUrl, 'producer'), prefix });
    this.queue.on('error', (err) => opts.log.warn({ err: err.message }, 'eval queue connection error'));
    this.queueEvents = new QueueEvents(EVAL_QUEUE, { connection: bullConnection(opts.redisUrl, 'worker'), prefix });
    this.queueEvents.on('error', (err) => opts.log.warn({ err: err.message }, 'eval queue events connection error'));
    this.emitter.setMaxListeners(0);
    this.queueEvents.on('progress', ({ jobId, data }) => this.emitter.emit(jobId, { type: 'progress', progress: data as JobProgress }));
    this.queueEvents.on('active', ({ jobId }) => this.emitter.emit(jobId, { type: 'state', state: 'running' }));
    this.queueEvents.on('waiting', ({ jobId }) => this.emitter.emit(jobId, { type: 'state', state: 'queued' }));
    for (const event of ['completed', 'failed', 'removed'] as const) {
      this.queueEvents.on(event, ({ jobId }: { jobId: string }) => this.emitter.emit(jobId, { type: 'finished' }));
    }
  }

  static async create(opts: EvalServiceOptions): Promise<EvalService> {
    const service = new EvalService(opts);
    await service.queueEvents.waitUntilReady();
    return service;
  }

  // ---- accepting work

  private async items(request: Pick<EvalRequest, 'suites' | 'items'>): Promise<{ items: SuiteItem[]; suites: string[] }> {
    const inline = request.items ? validateItems(request.items) : [];
    const named = request.suites ?? (inline.length > 0 ? [] : null);
    const fromFiles = named === null || named.length > 0 ? await loadSuites(named ?? [], this.suitesDir) : [];
    const items = [...fromFiles, ...inline];
    const ids = new Set<string>();
    for (const item of items) {
      if (ids.has(item.id)) throw new InvalidInputError(`item id "${item.id}" is used twice; ids must be unique across suites and items`);
      ids.add(item.id);
    }
    const suites = named ?? [...new Set(fromFiles.map((i) => i.category))];
    return { items, suites: inline.length > 0 ? [...suites, 'inline'] : suites };
  }

  private async checkAdapters(names: readonly string[], what: string): Promise<void> {
    const missing: string[] = [];
    for (const name of names) if (!(await this.opts.registry.find(name))) missing.push(name);
    if (missing.length > 0) {
      const known = (await this.opts.registry.list()).map((r) => r.name);
      throw new NotFoundError(`${what}: unknown adapter${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')}; registered: ${known.join(', ') || 'none'}`);
    }
  }

  /** The eval of this id, queued with `request` when there is none yet (however many processes ask at once). */
  async ensureEval(id: string, request: EvalRequest): Promise<EvalStatus> {
    const existing = await this.queue.getJob(id);
    return existing ? this.evalStatusOf(existing) : this.submitEval(request, id);
  }

  async submitEval(request: EvalRequest, id = newId('eval')): Promise<EvalStatus> {
    const { items: all, suites } = await this.items(request);
    const models = request.models ?? (await this.opts.registry.list()).map((r) => r.name);
    const routers: RouterRecord[] = [];
    for (const name of new Set(models)) {
      const router = await this.opts.routers?.find(name);
      if (router) routers.push(router);
    }
    await this.checkAdapters(
      models.filter((m) => !routers.some((r) => r.name === m)),
      'models',
    );
    await this.checkAdapters(Object.values(request.experts ?? {}), 'experts');
    const { items, part } = this.partOf(all, request.part, routers);
    const data: EvalJobData = {
      kind: 'eval',
      items,
      models: [...new Set(models)],
      ...(request.experts ? { experts: request.experts } : {}),
      format: request.format,
      checks: request.checks,
      maxTokens: request.maxTokens,
      suites,
      part,
      ...(routers.length > 0
        ? { routers: Object.fromEntries(routers.map((r) => [r.name, Object.fromEntries(r.members.map((m) => [m.model, m.category ?? null]))])) }
        : {}),
    };
    const job = await this.add(id, data);
    this.opts.log.info({ id: job.id, items: items.length, models: data.models.length, part }, 'eval queued');
    return this.evalStatusOf(job);
  }

  /**
   * The items of the part scored (docs/eval.md). With a router among the models the default is the test part, `all`
   * is refused, and the items the routers were calibrated on are dropped whatever the part (a suite edited since
   * the router was made may have moved them): a calibration prompt is never scored.
   */
  private partOf(items: SuiteItem[], asked: EvalRequest['part'], routers: readonly RouterRecord[]): { items: SuiteItem[]; part: EvalPart } {
    const part = asked ?? (routers.length > 0 ? 'test' : 'all');
    if (part === 'all' && routers.length > 0) {
      throw new InvalidInputError(`part "all" would score the calibration prompts of router ${routers[0]!.name}: score part "test", "dev" or "tune"`);
    }
    const calibration = new Set(routers.flatMap((r) => r.calibration.itemIds ?? []));
    const chosen = itemsOfPart(items, part).filter((i) => !calibration.has(i.id));
    if (chosen.length === 0) throw new InvalidInputError(`the ${part} part of these suites has no items: give more items, or another part`);
    return { items: chosen, part };
  }

  /** The adapters a sweep merges by default: for each suite category, the adapter registered with it. */
  private async defaultAdapters(items: readonly SuiteItem[]): Promise<string[]> {
    const records = (await this.opts.registry.list()).filter((r) => !r.recipe && r.category);
    const out: string[] = [];
    for (const category of new Set(items.map((i) => i.category))) {
      const match = records.filter((r) => r.category === category);
      if (match.length === 1) out.push(match[0]!.name);
      else if (match.length > 1) {
        throw new InvalidInputError(`several adapters have category "${category}" (${match.map((r) => r.name).join(', ')}): say which to merge with "adapters"`);
      }
    }
    if (out.length < 2) {
      throw new InvalidInputError(
        `a sweep merges two or more adapters, and only ${out.length} registered adapter${out.length === 1 ? ' has' : 's have'} a category of these suites: give "adapters", or register the experts with --category`,
      );
    }
    return out;
  }

  async submitSweep(request: SweepRequest): Promise<SweepStatus> {
    const { items, suites } = await this.items(request);
    const adapters = request.adapters ?? (await this.defaultAdapters(items));
    if (new Set(adapters).size !== adapters.length) throw new InvalidInputError('adapters: each adapter once');
    await this.checkAdapters(adapters, 'adapters');
    await this.checkAdapters(Object.values(request.experts ?? {}), 'experts');
    if (request.search === 'cmaes') return this.submitTuned(request, items, suites, adapters);
    const points = sweepPoints(request, adapters.length);
    const data: SweepJobData = {
      kind: 'sweep',
      items,
      adapters,
      ...(request.experts ? { experts: request.experts } : {}),
      format: request.format,
      suites,
      search: request.search,
      points,
      requestedPoints: request.search === 'random' ? (request.samples ?? DEFAULT_RANDOM_SAMPLES) : points.length,
    };
    const job = await this.add(newId('sweep'), data);
    this.opts.log.info({ id: job.id, points: points.length, adapters }, 'sweep queued');
    return this.sweepStatusOf(job);
  }

  /** A CMA-ES search of the weights of one recipe: tuned on the suites' tune part, the best scored on the test part. */
  private async submitTuned(request: SweepRequest, all: SuiteItem[], suites: string[], adapters: string[]): Promise<SweepStatus> {
    const { space } = request;
    if (space.weights) throw new InvalidInputError('search cmaes tunes the weights itself: drop space.weights (its start is the method default)');
    const one = <T>(name: string, values: readonly T[] | undefined): T | undefined => {
      if (values && values.length > 1) throw new InvalidInputError(`search cmaes tunes the weights of one recipe: give one ${name}, not ${values.length}`);
      return values?.[0];
    };
    if (space.density && !Array.isArray(space.density)) throw new InvalidInputError('search cmaes takes one density, not a range');
    const method = one('method', space.method) ?? 'linear';
    const parsed = MergeOptionsSchema.safeParse({
      ...request.options,
      method,
      weights: new Array<number>(adapters.length).fill(1),
      density: PRUNING_METHODS.has(method) ? one('density', space.density as number[] | undefined) : undefined,
      rank: one('rank', space.rank),
    });
    if (!parsed.success) throw new InvalidInputError(`search cmaes: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ')}`);
    const tuned = itemsOfPart(all, 'tune');
    const test = itemsOfPart(all, 'test');
    if (test.length === 0) {
      throw new InvalidInputError('search cmaes needs test items: give each category at least 3 items (it tunes on the calibration and dev quarters of each and reports the rest)');
    }
    const tune = { optimizer: 'cmaes' as const, budget: request.budget ?? DEFAULT_BUDGET, seed: request.seed, base: parsed.data, layerGroups: request.perLayer ? request.layerGroups : null, tuneItems: tuned.length };
    try {
      tuneOptions(tune, adapters.length, tuneStart(tune, adapters.length).x0); // a recipe that cannot take the weights is refused now
    } catch (err) {
      const issues = (err as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues;
      if (!issues) throw err;
      throw new InvalidInputError(`search cmaes: ${issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ')}`);
    }
    const data: SweepJobData = {
      kind: 'sweep',
      items: [...tuned, ...test],
      adapters,
      ...(request.experts ? { experts: request.experts } : {}),
      format: request.format,
      suites,
      search: 'cmaes',
      points: [],
      requestedPoints: tune.budget,
      tune,
    };
    const job = await this.add(newId('sweep'), data);
    this.opts.log.info({ id: job.id, budget: tune.budget, layerGroups: tune.layerGroups, adapters }, 'tuned sweep queued');
    return this.sweepStatusOf(job);
  }

  private add(id: string, data: EvalQueueJobData): Promise<EvalJob> {
    return this.queue.add(data.kind, data, {
      jobId: id,
      attempts: this.opts.attempts ?? 3,
      backoff: { type: 'exponential', delay: this.opts.backoffMs ?? 5_000 },
      removeOnComplete: { age: 30 * 86_400, count: 500 },
      removeOnFail: { age: 30 * 86_400 },
    });
  }

  // ---- status

  private async job(id: string, kind: 'eval' | 'sweep'): Promise<EvalJob | { tombstone: EvalStatus | SweepStatus }> {
    const job = await this.queue.getJob(id);
    if (job && job.data.kind === kind) return job;
    const tombstone = await this.opts.redis.hget(this.keys.cancelled, id);
    if (tombstone) return { tombstone: JSON.parse(tombstone) as EvalStatus | SweepStatus };
    throw new NotFoundError(`no ${kind} "${id}" (finished ones are kept 30 days)`);
  }

  private common(read: EvalJob) {
    const id = read.id!;
    return jobView<JobProgress, EvalJob>(read, this.opts.redis.exists(this.keys.cancel(id)), () => this.queue.getJob(id));
  }

  private async evalStatusOf(read: EvalJob): Promise<EvalStatus> {
    const data = read.data as EvalJobData;
    const { job, view: common } = await this.common(read);
    return {
      id: job.id!,
      kind: 'eval',
      ...common,
      suites: data.suites,
      items: data.items.length,
      models: data.models,
      ...(common.state === 'completed' ? { report: job.returnvalue as EvalReport } : {}),
    };
  }

  private async sweepStatusOf(job: EvalJob): Promise<SweepStatus> {
    const data = job.data as SweepJobData;
    const [{ view: common }, state] = await Promise.all([this.common(job), readSweepState(this.opts.redis, this.opts.redisPrefix, job.id!)]);
    return {
      id: job.id!,
      kind: 'sweep',
      ...common,
      search: data.search,
      adapters: data.adapters,
      suites: data.suites,
      items: data.items.length,
      totalPoints: data.tune?.budget ?? data.points.length,
      requestedPoints: data.requestedPoints ?? data.points.length,
      baseline: state.baseline,
      ranking: state.ranking,
      best: state.ranking.find((p) => p.state === 'completed') ?? null,
      tune: data.tune ? await readTuneResult({ redis: this.opts.redis, redisPrefix: this.opts.redisPrefix }, job.id!, data.tune, data.items.length) : null,
    };
  }

  async evalStatus(id: string): Promise<EvalStatus> {
    const job = await this.job(id, 'eval');
    return 'tombstone' in job ? (job.tombstone as EvalStatus) : this.evalStatusOf(job);
  }

  async sweepStatus(id: string): Promise<SweepStatus> {
    const job = await this.job(id, 'sweep');
    return 'tombstone' in job ? (job.tombstone as SweepStatus) : this.sweepStatusOf(job);
  }

  /** Calls `listener` for each event of job `id` until the returned function is called. */
  watch(id: string, listener: (event: EvalJobEvent) => void): () => void {
    this.emitter.on(id, listener);
    return () => this.emitter.off(id, listener);
  }

  /** Cancels a queued job at once, a running one at its next chunk of work (the worker polls a flag). */
  async cancel(id: string, kind: 'eval' | 'sweep'): Promise<EvalStatus | SweepStatus> {
    const job = await this.queue.getJob(id);
    if (!job) return this.statusById(id, kind); // NotFound, or an already cancelled tombstone
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') {
      throw new ConflictError(`${kind} ${id} has already ${state === 'completed' ? 'completed' : 'failed'}: nothing to cancel`);
    }
    await this.opts.redis.set(this.keys.cancel(id), '1', 'EX', 30 * 86_400);
    if (state !== 'active') {
      const before = kind === 'eval' ? await this.evalStatusOf(job) : await this.sweepStatusOf(job);
      const removed = await job
        .remove()
        .then(() => true)
        .catch(() => false); // it became active meanwhile: the worker sees the flag
      if (removed) {
        const status = { ...before, state: 'cancelled' as const, cancelRequested: true, error: { code: 'cancelled', message: 'cancelled before it started' }, finishedAt: new Date().toISOString() };
        await this.opts.redis.hset(this.keys.cancelled, id, JSON.stringify(status));
        this.emitter.emit(id, { type: 'finished' });
        return status;
      }
    }
    await this.opts.redis.publish(this.keys.control, JSON.stringify({ type: 'cancel', id }));
    this.opts.log.info({ id }, `${kind} cancel requested`);
    return this.statusById(id, kind);
  }

  private statusById(id: string, kind: 'eval' | 'sweep'): Promise<EvalStatus | SweepStatus> {
    return kind === 'eval' ? this.evalStatus(id) : this.sweepStatus(id);
  }

  // ---- results

  /** Registers a sweep point's merge (the best by default) under a name, with its recipe and diagnostics. */
  async registerPoint(id: string, request: RegisterBestRequest): Promise<{ point: SweepPointResult; adapter: unknown; status: string }> {
    const status = await this.sweepStatus(id);
    const point =
      request.point === undefined ? status.best : status.ranking.find((p) => p.index === request.point && p.state === 'completed');
    if (!point?.adapter) {
      throw new NotFoundError(
        request.point === undefined
          ? `sweep ${id} has no finished point yet: wait for one (GET /v1/sweeps/${id})`
          : `sweep ${id} has no completed point ${request.point}`,
      );
    }
    const result = await this.opts.registry.registerCopy(point.adapter, {
      name: request.name,
      registeredBy: 'api',
      description: request.description ?? `best of sweep ${id}: ${point.label}`,
      category: request.category,
      replace: request.replace,
    });
    this.opts.log.info({ sweep: id, point: point.index, name: result.adapter.name }, 'sweep point registered');
    return { point, adapter: result.adapter, status: result.status };
  }

  /** Retention heat map of a finished eval (models × categories) or a sweep (points × categories), as SVG. */
  async heatmap(id: string, kind: 'eval' | 'sweep'): Promise<string> {
    if (kind === 'eval') {
      const status = await this.evalStatus(id);
      if (!status.report) throw new ConflictError(`eval ${id} is ${status.state}: the heat map exists once it has completed`);
      return heatmapSvg(evalHeatmap(status.report, id));
    }
    return heatmapSvg(sweepHeatmap(await this.sweepStatus(id)));
  }

  async close(): Promise<void> {
    await this.queueEvents.close();
    await this.queue.close();
  }
}

export function evalHeatmap(report: EvalReport, id: string): HeatmapInput {
  return {
    title: `Skill retention · eval ${id}`,
    subtitle: `${report.baseModel} · ${report.items.length} items · experts: ${report.categories.map((c) => `${c}: ${report.experts[c]?.model ?? 'none'}`).join(', ')}`,
    columns: report.categories,
    rows: report.models.map((m) => ({
      label: `${m.model}${m.kind === 'base' ? ' (base)' : ''}`,
      values: report.categories.map((c) => m.categories[c]?.retention ?? null),
      worst: m.overall.worstRetention,
      mean: m.overall.meanRetention,
    })),
  };
}

export function sweepHeatmap(status: SweepStatus): HeatmapInput {
  const categories = status.baseline?.categories ?? [];
  const done = status.ranking.filter((p) => p.state === 'completed');
  return {
    title: `Merge sweep ${status.id}`,
    subtitle: `${status.adapters.join(' + ')} · ${done.length} of ${status.totalPoints} points scored · ranked by the worst category's retention`,
    columns: categories,
    rows: done.map((p) => ({
      label: p.label,
      values: categories.map((c) => p.categories?.[c]?.retention ?? null),
      worst: p.worstRetention ?? null,
      mean: p.meanRetention ?? null,
    })),
  };
}
