// `loraforge worker`: takes merge jobs from the queue, runs each in a worker thread (./run-merge.ts), writes the
// result atomically and registers it with its recipe and diagnostics.
//
// Crash safety: a worker killed mid-merge loses its job lock; BullMQ's stalled check puts the job back and
// another attempt runs it from scratch, up to `maxStalledCount` times; past that the job fails for good (a
// merge that kills every worker taking it, say by running it out of memory, must not take them all down). A result lands in the store by rename only, and its registration is one
// Lua script keyed by the recipe, so a repeated attempt registers nothing twice. SIGTERM: stop taking jobs, let
// active ones finish within a grace period, then hand them back to the queue.
import path from 'node:path';
import { readFile, rm } from 'node:fs/promises';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { CancelledError, NotFoundError, isLoraforgeError } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import type { Logger } from '../util/log.js';
import { listenForCancels, pollCancelFlag } from './cancel.js';
import { bullConnection, bullPrefix, cancelKey, controlChannel } from './connection.js';
import { USER_ERRORS } from './merges.js';
import { MergeThreads } from './run-merge.js';
import { MERGE_QUEUE, type MergeJobData, type MergeProgress, type MergeResult } from './types.js';

export interface MergeWorkerOptions {
  redisUrl: string;
  redisPrefix: string;
  redis: Redis;
  registry: Registry;
  log: Logger;
  concurrency: number;
  /** job lock; a killed worker's job is retried after about this long */
  lockMs?: number;
  /** how often this worker looks for jobs whose worker died */
  stalledIntervalMs?: number;
  /** times a job whose worker died runs again; the next death fails it (config worker.maxStalledCount) */
  maxStalledCount?: number;
  /** SIGTERM: how long active merges may run on before they are handed back */
  shutdownGraceMs?: number;
  /** how often a running merge checks its cancel flag (the control channel is the fast path) */
  cancelPollMs?: number;
  /** the merge engine's settings (config `merge`) */
  merge?: { device: 'cpu' | 'cuda'; threads?: number; denseCacheMiB: number };
}

export interface RunningWorker {
  worker: Worker<MergeJobData, MergeResult>;
  close(): Promise<void>;
}

const SHUTDOWN = 'worker shutting down';
const round = (s: number) => Math.round(s * 1000) / 1000;
const PROGRESS_EVERY_MS = 250;

/** Progress with an ETA from the rate within the current phase, sent at most every 250 ms. */
function progressReporter(job: Job<MergeJobData, MergeResult>) {
  let phase = '';
  let phaseStart = Date.now();
  let lastSent = 0;
  return (p: { phase: string; done: number; total: number }) => {
    const now = Date.now();
    if (p.phase !== phase) {
      phase = p.phase;
      phaseStart = now;
    } else if (now - lastSent < PROGRESS_EVERY_MS && p.done < p.total) {
      return;
    }
    lastSent = now;
    const elapsed = (now - phaseStart) / 1000;
    const etaSeconds = p.done > 0 && p.total > p.done ? Math.round(((p.total - p.done) * elapsed) / p.done) : p.done >= p.total ? 0 : null;
    const progress: MergeProgress = { phase: p.phase, done: p.done, total: p.total, etaSeconds };
    void job.updateProgress(progress).catch(() => undefined);
  };
}

/** The overall numbers of a merge report, kept in the adapter's record (the whole report is its diagnostics). */
function summaryOf(report: unknown): Record<string, unknown> | undefined {
  const r = report as { overall?: unknown; diagnostics?: { overall?: unknown }; timings?: unknown } | undefined;
  const overall = r?.overall ?? r?.diagnostics?.overall;
  if (!overall || typeof overall !== 'object') return undefined;
  return { ...(overall as Record<string, unknown>), ...(r?.timings ? { timings: r.timings } : {}) };
}

export async function startMergeWorker(opts: MergeWorkerOptions): Promise<RunningWorker> {
  const { registry, redis, redisPrefix } = opts;
  const log = opts.log.child({ part: 'worker' });
  /** per active job: aborts it for shutdown */
  const active = new Map<string, AbortController>();
  const threads = new MergeThreads();

  const processor = async (job: Job<MergeJobData, MergeResult>, token?: string, cancelSignal?: AbortSignal): Promise<MergeResult> => {
    const started = performance.now();
    const jobLog = log.child({ job: job.id, attempt: job.attemptsMade + 1 });
    const { data } = job;
    const shutdown = new AbortController();
    active.set(job.id!, shutdown);
    const cancel = pollCancelFlag(redis, cancelKey(redisPrefix, job.id!), opts.cancelPollMs ?? 2_000);
    const signal = AbortSignal.any([shutdown.signal, cancel.signal, ...(cancelSignal ? [cancelSignal] : [])]);
    let staging: string | undefined;
    try {
      if (await redis.exists(cancelKey(redisPrefix, job.id!))) throw new CancelledError('cancelled by request');
      // an earlier attempt may have registered the result and died before the job was marked completed
      const done = await registry.byRecipe(data.recipeHash);
      if (done) return { name: done.name, sha256: done.sha256, status: 'unchanged', summary: done.summary };

      const inputDirs: string[] = [];
      for (const input of data.inputs) {
        if (!(await registry.store.has(input.sha256))) {
          throw new NotFoundError(`input adapter "${input.name}" (sha256 ${input.sha256.slice(0, 12)}…) is no longer in the store`);
        }
        inputDirs.push(registry.store.pathOf(input.sha256));
      }
      staging = await registry.store.stagingDir(`merge-${job.id}`);
      const outDir = path.join(staging, 'out');
      jobLog.info({ method: data.options.method, inputs: data.inputs.map((i) => i.name) }, 'merge started');
      const engine = opts.merge ?? { device: 'cpu', denseCacheMiB: 1024 };
      const { report, seconds: engineSeconds, weightsSha256 } = await threads.run(
        {
          inputDirs,
          outDir,
          options: data.options,
          labels: data.inputs.map((i) => i.name),
          compute: { device: engine.device, threads: engine.threads },
          denseCacheBytes: engine.denseCacheMiB * 1024 * 1024,
        },
        { onProgress: progressReporter(job), signal },
      );
      const diagnostics = report ?? JSON.parse(await readFile(path.join(outDir, 'merge-report.json'), 'utf8'));
      const registering = performance.now();
      const result = await registry.registerStaged(
        outDir,
        {
          name: data.output.name,
          description: data.output.description,
          category: data.output.category,
          replace: data.output.replace,
          registeredBy: data.output.registeredBy,
          inputs: data.inputs,
          recipe: data.options as unknown as Record<string, unknown>,
          recipeHash: data.recipeHash,
          summary: summaryOf(diagnostics),
          diagnostics,
        },
        { weightsSha256 },
      );
      const timings = {
        engineSeconds: round(engineSeconds),
        registerSeconds: round((performance.now() - registering) / 1000),
        totalSeconds: round((performance.now() - started) / 1000),
      };
      jobLog.info({ name: result.adapter.name, status: result.status, ...timings }, 'merge registered');
      return { name: result.adapter.name, sha256: result.adapter.sha256, status: result.status, summary: result.adapter.summary, timings };
    } catch (err) {
      if (shutdown.signal.aborted && !cancel.signal.aborted && !cancelSignal?.aborted && token) {
        // hand the job back: another worker (or this one after a restart) runs it from the start
        jobLog.warn('merge handed back to the queue: worker shutting down');
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (isLoraforgeError(err) && USER_ERRORS.has(err.code)) {
        jobLog.warn({ code: err.code, msg: err.message }, 'merge refused');
        throw new UnrecoverableError(`${err.code}: ${err.message}`);
      }
      jobLog.error({ err }, 'merge failed; it will be retried if attempts are left');
      const code = isLoraforgeError(err) ? err.code : 'internal';
      throw new Error(`${code}: ${(err as Error).message}`, { cause: err });
    } finally {
      cancel.stop();
      active.delete(job.id!);
      if (staging) await rm(staging, { recursive: true, force: true });
    }
  };

  const lockDuration = opts.lockMs ?? 30_000;
  const worker = new Worker<MergeJobData, MergeResult>(MERGE_QUEUE, processor, {
    connection: bullConnection(opts.redisUrl, 'worker'),
    prefix: bullPrefix(redisPrefix),
    concurrency: opts.concurrency,
    lockDuration,
    stalledInterval: opts.stalledIntervalMs ?? lockDuration,
    maxStalledCount: opts.maxStalledCount ?? 5,
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'merge worker connection error'));
  worker.on('stalled', (jobId) => log.warn({ job: jobId }, 'a merge job stalled (its worker died): it runs again'));

  // the fast path of cancel: the API publishes, the worker that runs the job aborts it
  const stopListening = await listenForCancels(redis, controlChannel(redisPrefix), (id, reason) => worker.cancelJob(id, reason), (id) =>
    log.info({ job: id }, 'cancelling merge'),
  );
  await worker.waitUntilReady();
  log.info({ concurrency: opts.concurrency }, 'merge worker ready');

  return {
    worker,
    async close() {
      const grace = opts.shutdownGraceMs ?? 30_000;
      const timer = setTimeout(() => {
        for (const controller of active.values()) controller.abort(SHUTDOWN);
      }, grace);
      try {
        await worker.close();
      } finally {
        clearTimeout(timer);
        stopListening();
        await threads.close();
      }
    },
  };
}
