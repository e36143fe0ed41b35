// The API's side of the merge queue: submit a recipe (deduplicated by its hash), report a job's status, follow
// its events, cancel it. The work itself happens in `loraforge worker` processes (./worker.ts).
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Queue, QueueEvents, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { Gauge, Histogram, type Registry as MetricsRegistry } from 'prom-client';
import { ConflictError, InvalidInputError, NotFoundError, type ErrorCode } from '../errors.js';
import { baseModelKey } from '../formats/peft.js';
import type { MergeOptions } from '../merge/options.js';
import type { Registry } from '../registry/registry.js';
import type { AdapterRecord } from '../registry/types.js';
import type { Logger } from '../util/log.js';
import { bullConnection, bullPrefix, cancelKey, cancelledKey, controlChannel } from './connection.js';
import {
  MERGE_QUEUE,
  defaultMergeName,
  jobIdOf,
  recipeHash,
  type MergeJobData,
  type MergeProgress,
  type MergeRequest,
  type MergeResult,
  type MergeStatus,
} from './types.js';

/** What a follower of one job hears. */
export type MergeEvent =
  | { type: 'progress'; progress: MergeProgress }
  | { type: 'state'; state: 'queued' | 'running' }
  | { type: 'finished' };

export interface MergeServiceOptions {
  redisUrl: string;
  redisPrefix: string;
  redis: Redis;
  registry: Registry;
  log: Logger;
  /** registers jobs-by-state and merge-duration metrics here */
  metrics?: MetricsRegistry;
  /** attempts per job for transient failures (bad input is never retried) */
  attempts?: number;
  backoffMs?: number;
}

export const USER_ERRORS: ReadonlySet<string> = new Set<ErrorCode>(['invalid_input', 'invalid_file', 'unsupported', 'not_found', 'conflict', 'too_large', 'cancelled', 'forbidden']);

/** failedReason is "<code>: <message>" for our errors (see worker.ts). */
/** BullMQ's reason for a job whose worker died more often than its worker's maxStalledCount allows. */
const STALLED_TOO_OFTEN = 'job stalled more than allowable limit';

function parseFailedReason(reason: string | undefined, stalled = 0): { code: string; message: string } {
  const text = reason ?? 'unknown failure';
  if (text === STALLED_TOO_OFTEN) {
    return {
      code: 'internal',
      message:
        `the worker running it died ${stalled} times (killed, or out of memory), more than worker.maxStalledCount allows: ` +
        'not run again; check the workers\' logs and memory, then submit it again',
    };
  }
  const m = /^([a-z_]+): (.*)$/s.exec(text);
  if (m && (USER_ERRORS.has(m[1]!) || m[1] === 'unavailable' || m[1] === 'internal')) return { code: m[1]!, message: m[2]! };
  return { code: 'internal', message: text };
}

const iso = (t: number | undefined) => (t ? new Date(t).toISOString() : undefined);

/**
 * What every job's status shows (merges, evals, sweeps): state, progress, attempts, times and the error, with the
 * job as read for it. A job read just before it finished says "failed" or "completed" when asked its state but
 * lacks its reason and result: it is read again then.
 */
export async function jobView<P, J extends Job>(read: J, cancelRequested: Promise<number>, reread: () => Promise<J | undefined>) {
  const [state, cancel] = await Promise.all([read.getState(), cancelRequested]);
  const job = (state === 'completed' || state === 'failed') && !read.finishedOn ? ((await reread()) ?? read) : read;
  const common = {
    progress: job.progress && typeof job.progress === 'object' ? (job.progress as P) : null,
    attempts: job.attemptsMade,
    cancelRequested: cancel === 1,
    createdAt: iso(job.timestamp),
    startedAt: iso(job.processedOn),
    finishedAt: iso(job.finishedOn),
  };
  if (state === 'completed') return { job, view: { ...common, state: 'completed' as const } };
  if (state === 'failed') {
    const error = parseFailedReason(job.failedReason, job.stalledCounter);
    return { job, view: { ...common, state: error.code === 'cancelled' ? ('cancelled' as const) : ('failed' as const), error } };
  }
  return { job, view: { ...common, state: state === 'active' ? ('running' as const) : ('queued' as const) } };
}

export class MergeService {
  readonly queue: Queue<MergeJobData, MergeResult>;
  private readonly queueEvents: QueueEvents;
  private readonly emitter = new EventEmitter();
  private readonly opts: MergeServiceOptions;
  private decorate?: (status: MergeStatus) => Promise<MergeStatus>;

  private constructor(opts: MergeServiceOptions) {
    this.opts = opts;
    const prefix = bullPrefix(opts.redisPrefix);
    this.queue = new Queue(MERGE_QUEUE, { connection: bullConnection(opts.redisUrl, 'producer'), prefix });
    this.queue.on('error', (err) => opts.log.warn({ err: err.message }, 'merge queue connection error'));
    this.queueEvents = new QueueEvents(MERGE_QUEUE, { connection: bullConnection(opts.redisUrl, 'worker'), prefix });
    this.queueEvents.on('error', (err) => opts.log.warn({ err: err.message }, 'merge queue events connection error'));
    this.emitter.setMaxListeners(0);
    this.queueEvents.on('progress', ({ jobId, data }) => this.emit(jobId, { type: 'progress', progress: data as MergeProgress }));
    this.queueEvents.on('active', ({ jobId }) => this.emit(jobId, { type: 'state', state: 'running' }));
    this.queueEvents.on('waiting', ({ jobId }) => this.emit(jobId, { type: 'state', state: 'queued' }));
    for (const event of ['completed', 'failed', 'removed'] as const) {
      this.queueEvents.on(event, ({ jobId }: { jobId: string }) => this.emit(jobId, { type: 'finished' }));
    }
    if (opts.metrics) this.registerMetrics(opts.metrics);
  }

  static async create(opts: MergeServiceOptions): Promise<MergeService> {
    const service = new MergeService(opts);
    await service.queueEvents.waitUntilReady();
    return service;
  }

  private emit(jobId: string, event: MergeEvent): void {
    this.emitter.emit(jobId, event);
  }

  private registerMetrics(registry: MetricsRegistry): void {
    const queue = this.queue;
    new Gauge({
      name: 'loraforge_merge_jobs',
      help: 'merge jobs by state',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    const durations = new Histogram({
      name: 'loraforge_merge_duration_seconds',
      help: 'time from a merge job starting to finishing, by outcome',
      labelNames: ['outcome'] as const,
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers: [registry],
    });
    const observe = async (jobId: string, outcome: string) => {
      const job = await queue.getJob(jobId).catch(() => undefined);
      if (job?.processedOn && job.finishedOn) durations.observe({ outcome }, (job.finishedOn - job.processedOn) / 1000);
    };
    this.queueEvents.on('completed', ({ jobId }) => void observe(jobId, 'completed'));
    this.queueEvents.on('failed', ({ jobId }) => void observe(jobId, 'failed'));
  }

  /** Queues a merge, or returns the job (or registered result) of the same recipe with `deduplicated: true`. */
  async submit(request: MergeRequest): Promise<MergeStatus> {
    const { adapters, name: requestedName, description, category, replace, registeredBy, ...rest } = request;
    const options = rest as MergeOptions;
    if (options.weights.length !== adapters.length) {
      throw new InvalidInputError(
        `weights: ${options.weights.length} given for ${adapters.length} adapter${adapters.length === 1 ? '' : 's'}: give one weight per adapter, in the same order`,
      );
    }
    const records = await this.resolve(adapters);
    const bases = new Set(records.map((r) => r.baseModel).filter((b): b is string => b !== null).map(baseModelKey));
    if (bases.size > 1) {
      throw new InvalidInputError(
        `the adapters were trained on different base models (${records.map((r) => `${r.name}: ${r.baseModel}`).join(', ')}): merge adapters of one base model`,
      );
    }
    const inputs = records.map((r, i) => ({ name: r.name, sha256: r.sha256, weight: options.weights[i]! }));
    const hash = recipeHash(inputs, options);
    const id = jobIdOf(hash);
    const name = requestedName ?? defaultMergeName(options, hash);

    const done = await this.opts.registry.byRecipe(hash);
    if (done) {
      if (requestedName === undefined || requestedName === done.name) return { ...this.statusFromRecord(id, done), deduplicated: true };
      // merged already under another name: the same result is registered under this one too, not merged again
      const copy = await this.opts.registry.registerCopy(done.name, { name: requestedName, description, category, replace, registeredBy: registeredBy ?? 'api' });
      return { ...this.statusFromRecord(id, copy.adapter), deduplicated: true };
    }
    const existingJob = await this.queue.getJob(id);
    const existingState = existingJob ? await existingJob.getState() : undefined;
    // queued or running: the same job (its result takes the name the first request gave); a completed job whose
    // result has since been removed runs again below, like a failed one
    if (existingJob && existingState !== 'failed' && existingState !== 'completed') return { ...(await this.statusOf(existingJob)), deduplicated: true };

    const taken = await this.opts.registry.find(name);
    if (taken && !replace) {
      throw new ConflictError(`the name "${name}" is taken by another adapter: choose another name, or ask to replace it`, {
        existing: { name: taken.name, sha256: taken.sha256 },
      });
    }
    // a failed or cancelled run of this recipe, or a completed one whose result was removed: start it afresh
    if (existingJob) await existingJob.remove().catch(() => undefined);
    await this.opts.redis.multi().del(cancelKey(this.opts.redisPrefix, id)).hdel(cancelledKey(this.opts.redisPrefix), id).exec();

    const data: MergeJobData = {
      recipeHash: hash,
      inputs,
      options,
      output: { name, description, category, replace, registeredBy: registeredBy ?? 'api' },
      requestId: randomUUID(),
    };
    const job = await this.queue.add('merge', data, {
      jobId: id,
      attempts: this.opts.attempts ?? 3,
      backoff: { type: 'exponential', delay: this.opts.backoffMs ?? 5_000 },
      removeOnComplete: { age: 7 * 86_400, count: 1_000 },
      removeOnFail: { age: 30 * 86_400 },
    });
    this.opts.log.info({ id, name, method: options.method }, 'merge queued');
    return { ...(await this.statusOf(job)), deduplicated: job.data.requestId !== data.requestId };
  }

  private async resolve(names: string[]): Promise<AdapterRecord[]> {
    const records = await Promise.all(names.map((n) => this.opts.registry.find(n)));
    const missing = names.filter((_, i) => !records[i]);
    if (missing.length > 0) {
      const known = (await this.opts.registry.list()).map((r) => r.name);
      throw new NotFoundError(
        `unknown adapter${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')}; registered: ${known.join(', ') || 'none'}`,
      );
    }
    return records as AdapterRecord[];
  }

  /**
   * Adds to every completed merge's status (the auto-eval, eval/auto-eval.ts), and runs once per merge that
   * completes while this service listens, so the addition starts even if nobody reads the status.
   */
  decorateCompleted(decorate: (status: MergeStatus) => Promise<MergeStatus>): void {
    this.decorate = decorate;
    this.queueEvents.on('completed', ({ jobId }) => {
      this.status(jobId).catch((err: unknown) => this.opts.log.warn({ err, id: jobId }, 'could not read a finished merge'));
    });
  }

  async status(id: string): Promise<MergeStatus> {
    const job = await this.queue.getJob(id);
    if (job) {
      const status = await this.statusOf(job);
      return status.state === 'completed' && this.decorate ? this.decorate(status) : status;
    }
    const tombstone = await this.opts.redis.hget(cancelledKey(this.opts.redisPrefix), id);
    if (tombstone) return JSON.parse(tombstone) as MergeStatus;
    throw new NotFoundError(`no merge job "${id}" (finished jobs are kept 7 days, failed ones 30)`);
  }

  private async statusOf(read: Job<MergeJobData, MergeResult>): Promise<MergeStatus> {
    const id = read.id!;
    const { job, view } = await jobView<MergeProgress, Job<MergeJobData, MergeResult>>(read, this.opts.redis.exists(cancelKey(this.opts.redisPrefix, id)), () => this.queue.getJob(id));
    const status = { ...this.baseStatus(job.id!, job.data), ...view };
    return view.state === 'completed' ? { ...status, result: job.returnvalue } : status;
  }

  private baseStatus(id: string, data: MergeJobData) {
    const { weights: _weights, ...options } = data.options;
    return { id, name: data.output.name, method: data.options.method, adapters: data.inputs, options, recipeHash: data.recipeHash };
  }

  private statusFromRecord(id: string, record: AdapterRecord): MergeStatus {
    const recipe = (record.recipe ?? {}) as Record<string, unknown>;
    return {
      id,
      state: 'completed',
      name: record.name,
      method: String(recipe.method ?? ''),
      adapters: record.inputs ?? [],
      options: recipe,
      recipeHash: record.recipeHash ?? '',
      progress: null,
      attempts: 0,
      cancelRequested: false,
      result: { name: record.name, sha256: record.sha256, status: 'unchanged', summary: record.summary },
      finishedAt: record.createdAt,
    };
  }

  /**
   * Cancels a merge. A queued job is removed at once; a running one is told through the control channel (and a
   * flag its worker polls), and fails with code "cancelled" within a module or two.
   */
  async cancel(id: string): Promise<MergeStatus> {
    const job = await this.queue.getJob(id);
    if (!job) return this.status(id); // NotFound, or an already cancelled tombstone
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') {
      throw new ConflictError(`merge ${id} has already ${state === 'completed' ? 'completed' : 'failed'}: nothing to cancel`);
    }
    if (state !== 'active') {
      const removed = await job
        .remove()
        .then(() => true)
        .catch(() => false); // became active meanwhile: cancel the running job instead
      if (removed) {
        const status: MergeStatus = {
          ...this.baseStatus(id, job.data),
          state: 'cancelled',
          progress: null,
          attempts: job.attemptsMade,
          cancelRequested: true,
          error: { code: 'cancelled', message: 'cancelled before it started' },
          createdAt: new Date(job.timestamp).toISOString(),
          finishedAt: new Date().toISOString(),
        };
        await this.opts.redis.hset(cancelledKey(this.opts.redisPrefix), id, JSON.stringify(status));
        this.emit(id, { type: 'finished' });
        return status;
      }
    }
    await this.opts.redis.set(cancelKey(this.opts.redisPrefix, id), '1', 'EX', 86_400);
    await this.opts.redis.publish(controlChannel(this.opts.redisPrefix), JSON.stringify({ type: 'cancel', id }));
    this.opts.log.info({ id }, 'merge cancel requested');
    return this.status(id);
  }

  /** Calls `listener` for each event of job `id` until the returned function is called. */
  watch(id: string, listener: (event: MergeEvent) => void): () => void {
    this.emitter.on(id, listener);
    return () => this.emitter.off(id, listener);
  }

  async close(): Promise<void> {
    await this.queueEvents.close();
    await this.queue.close();
  }
}
