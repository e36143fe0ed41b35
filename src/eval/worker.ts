// The processor of the `eval` queue: evals and sweeps, run in the process that owns the inference engine (the
// API of `loraforge serve` / `all`). One job at a time: the engine is one model on a few cores.
//
// Crash safety: a sweep keeps its finished points in Redis (./sweep.ts), so a job whose process died is handed to
// the next worker by BullMQ's stalled check and goes on from there; an eval is short and simply runs again.
// SIGTERM: active jobs get a grace period, then go back to the queue. Cancel: a flag the job polls and a message on
// the control channel.
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { CancelledError, NotFoundError, isLoraforgeError } from '../errors.js';
import { listenForCancels, pollCancelFlag } from '../queue/cancel.js';
import { bullConnection, bullPrefix } from '../queue/connection.js';
import { USER_ERRORS } from '../queue/merges.js';
import type { Registry } from '../registry/registry.js';
import type { Logger } from '../util/log.js';
import { runEval, type EvalEngine } from './evaluate.js';
import { EVAL_QUEUE, evalKeys, type EvalJobData, type EvalQueueJobData, type JobProgress } from './jobs.js';
import type { ScoredModel } from './metrics.js';
import type { EvalReport } from './report.js';
import { runSweep, type SweepDeps } from './sweep.js';
import { runTunedSweep } from './tune.js';

export type EvalJobResult = EvalReport | { points: number; best: number | null };

export interface EvalWorkerOptions {
  redisUrl: string;
  redisPrefix: string;
  redis: Redis;
  registry: Pick<Registry, 'find' | 'list'>;
  merges: SweepDeps['merges'];
  engine: EvalEngine;
  log: Logger;
  /** job lock; a killed process's job is picked up again after about this long */
  lockMs?: number;
  stalledIntervalMs?: number;
  shutdownGraceMs?: number;
  cancelPollMs?: number;
  /** how often a merge's status is polled besides its events */
  mergePollMs?: number;
  /** sweeps: merges queued ahead of the point being scored */
  mergesAhead?: number;
}

export interface RunningEvalWorker {
  worker: Worker<EvalQueueJobData, EvalJobResult>;
  close(): Promise<void>;
}

const SHUTDOWN = 'worker shutting down';
const PROGRESS_EVERY_MS = 250;

function throttledProgress(job: Job<EvalQueueJobData, EvalJobResult>): (p: JobProgress) => void {
  let last = 0;
  let phase = '';
  return (p) => {
    const now = Date.now();
    if (p.phase === phase && now - last < PROGRESS_EVERY_MS && p.done < p.total) return;
    phase = p.phase;
    last = now;
    void job.updateProgress(p).catch(() => undefined);
  };
}

/** The models of an eval: the base model, the requested ones, and each category's expert when not among them. */
export async function evalModels(
  registry: Pick<Registry, 'find' | 'list'>,
  baseModel: string,
  data: Pick<EvalJobData, 'models' | 'items' | 'experts' | 'routers'>,
): Promise<ScoredModel[]> {
  const categories = new Set(data.items.map((i) => i.category));
  const wanted = [...data.models];
  const records = await registry.list();
  for (const r of records) {
    if (!r.recipe && r.category && categories.has(r.category) && !wanted.includes(r.name)) wanted.push(r.name);
  }
  for (const name of Object.values(data.experts ?? {})) if (!wanted.includes(name)) wanted.push(name);
  const models: ScoredModel[] = [{ name: baseModel, kind: 'base' }];
  for (const name of wanted) {
    if (name === baseModel) continue;
    if (data.routers?.[name]) {
      models.push({ name, kind: 'router' });
      continue;
    }
    const record = records.find((r) => r.name === name) ?? (await registry.find(name));
    if (!record) throw new NotFoundError(`adapter "${name}" is no longer registered`);
    models.push({ name, kind: record.recipe ? 'merge' : 'adapter', ...(record.category ? { category: record.category } : {}) });
  }
  return models;
}

export async function startEvalWorker(opts: EvalWorkerOptions): Promise<RunningEvalWorker> {
  const { redis, redisPrefix, engine } = opts;
  const keys = evalKeys(redisPrefix);
  const log = opts.log.child({ part: 'eval-worker' });
  const active = new Map<string, AbortController>();

  const processor = async (job: Job<EvalQueueJobData, EvalJobResult>, token?: string, cancelSignal?: AbortSignal): Promise<EvalJobResult> => {
    const jobLog = log.child({ job: job.id, attempt: job.attemptsMade + 1 });
    const shutdown = new AbortController();
    active.set(job.id!, shutdown);
    const cancel = pollCancelFlag(redis, keys.cancel(job.id!), opts.cancelPollMs ?? 1_000);
    const signal = AbortSignal.any([shutdown.signal, cancel.signal, ...(cancelSignal ? [cancelSignal] : [])]);
    const onProgress = throttledProgress(job);
    try {
      if (await redis.exists(keys.cancel(job.id!))) throw new CancelledError('cancelled by request');
      const { data } = job;
      if (data.kind === 'eval') {
        const models = await evalModels(opts.registry, engine.modelId, data);
        jobLog.info({ models: models.length, items: data.items.length }, 'eval started');
        const report = await runEval(
          engine,
          {
            items: data.items,
            models,
            format: data.format,
            checks: data.checks,
            maxTokens: data.maxTokens,
            experts: data.experts,
            part: data.part ?? 'all',
            ...(data.routers ? { routers: data.routers } : {}),
          },
          { signal, onProgress },
        );
        jobLog.info({ seconds: report.timings.scoreSeconds + report.timings.generateSeconds }, 'eval finished');
        return report;
      }
      jobLog.info({ points: data.points.length, adapters: data.adapters }, 'sweep started');
      const ranking = await (data.tune ? runTunedSweep : runSweep)(
        { engine, merges: opts.merges, registry: opts.registry, redis, redisPrefix, log: jobLog, mergePollMs: opts.mergePollMs, mergesAhead: opts.mergesAhead },
        job.id!,
        data,
        { signal, onProgress },
      );
      const best = ranking.find((p) => p.state === 'completed') ?? null;
      jobLog.info({ best: best?.label ?? null }, 'sweep finished');
      return { points: ranking.length, best: best?.index ?? null };
    } catch (err) {
      if (shutdown.signal.aborted && !cancel.signal.aborted && !cancelSignal?.aborted && token) {
        jobLog.warn('eval job handed back to the queue: worker shutting down');
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const cancelled = cancel.signal.aborted || cancelSignal?.aborted;
      const error = cancelled ? new CancelledError('cancelled by request') : err;
      if (isLoraforgeError(error) && USER_ERRORS.has(error.code)) {
        jobLog.warn({ code: error.code, msg: error.message }, 'eval job refused or cancelled');
        throw new UnrecoverableError(`${error.code}: ${error.message}`);
      }
      jobLog.error({ err }, 'eval job failed; it will be retried if attempts are left');
      const code = isLoraforgeError(err) ? err.code : 'internal';
      throw new Error(`${code}: ${(err as Error).message}`, { cause: err });
    } finally {
      cancel.stop();
      active.delete(job.id!);
    }
  };

  const lockDuration = opts.lockMs ?? 30_000;
  const worker = new Worker<EvalQueueJobData, EvalJobResult>(EVAL_QUEUE, processor, {
    connection: bullConnection(opts.redisUrl, 'worker'),
    prefix: bullPrefix(redisPrefix),
    concurrency: 1,
    lockDuration,
    stalledInterval: opts.stalledIntervalMs ?? lockDuration,
    // a sweep may be interrupted more than once; each time it resumes from its saved points
    maxStalledCount: 5,
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'eval worker connection error'));
  worker.on('stalled', (jobId) => log.warn({ job: jobId }, 'an eval job stalled (its process died): it runs again'));

  const stopListening = await listenForCancels(redis, keys.control, (id, reason) => worker.cancelJob(id, reason), (id) => log.info({ job: id }, 'cancelling eval job'));
  await worker.waitUntilReady();
  log.info('eval worker ready');

  return {
    worker,
    async close() {
      const timer = setTimeout(() => {
        for (const controller of active.values()) controller.abort(SHUTDOWN);
      }, opts.shutdownGraceMs ?? 10_000);
      try {
        await worker.close();
      } finally {
        clearTimeout(timer);
        stopListening();
      }
    },
  };
}
