// The composition root: builds each process's parts from the config and passes them down (no global singletons).
// `loraforge serve`, `worker` and `all` are compositions of the start* functions here; a new part (the model
// engine, the bot) adds its own start function and one line in `startAll`.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { Arena } from './arena/arena.js';
import { ArenaStore } from './arena/store.js';
import type { AnswerGenerator, ArenaAdapterSource } from './arena/types.js';
import type { Config } from './config/index.js';
import { UnavailableError } from './errors.js';
import { EvalService } from './eval/service.js';
import { startEvalWorker } from './eval/worker.js';
import type { InferenceEngine } from './inference/engine/index.js';
import { MergeService } from './queue/merges.js';
import { startMergeWorker as startBullWorker, type RunningWorker } from './queue/worker.js';
import { Registry } from './registry/registry.js';
import { AdapterStore } from './registry/store.js';
import { createApp, type AppDeps } from './server/app.js';
import { createMetrics, type Metrics } from './server/metrics.js';
import { Lifecycle } from './util/lifecycle.js';
import type { Logger } from './util/log.js';
import { checkRedisSettings, connectRedis, ensureLocalRedis, waitForRedis } from './util/redis.js';

export interface Runtime {
  config: Config;
  log: Logger;
  /** shared connection for plain commands; BullMQ parts open their own */
  redis: Redis;
  lifecycle: Lifecycle;
}

export interface RuntimeOptions {
  /** start a local redis-server when none answers (the one-process demo) */
  autoStartRedis?: boolean;
}

export async function openRuntime(config: Config, log: Logger, options: RuntimeOptions = {}): Promise<Runtime> {
  const lifecycle = new Lifecycle();
  let embedded = false;
  if (options.autoStartRedis && config.redis.autoStart) {
    const stop = await ensureLocalRedis(config.redis.url, log);
    if (stop) {
      embedded = true;
      lifecycle.add('redis-server', stop);
    }
  }
  const redis = connectRedis(config.redis.url);
  redis.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
  try {
    await waitForRedis(redis, config.redis.url, 5_000);
  } catch (err) {
    redis.disconnect();
    await lifecycle.close();
    throw err;
  }
  lifecycle.add('redis', () => redis.quit());
  // a throwaway server started here keeps nothing by design; only warn about one somebody runs for real
  if (!embedded) await checkRedisSettings(redis, log);
  return { config, log, redis, lifecycle };
}

export interface RunningApi {
  url: string;
  server: Server;
}

/** Starts the HTTP API with the parts given (the registry, the merge queue, later the engine and the arena). */
export async function startApi(rt: Runtime, parts: Partial<AppDeps> = {}): Promise<RunningApi> {
  const metrics = parts.metrics ?? createMetrics();
  const app = createApp({
    config: rt.config.server,
    log: rt.log.child({ part: 'api' }),
    metrics,
    readiness: { redis: () => rt.redis.ping() },
    ...parts,
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(rt.config.server.port, rt.config.server.host, () => resolve(s));
    s.once('error', reject);
  });
  // SSE streams hold connections open: close() must not wait for them
  rt.lifecycle.add('http', () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2_000).unref();
  }));
  const { port } = server.address() as AddressInfo;
  const url = `http://${rt.config.server.host}:${port}`;
  rt.log.info({ url }, 'API listening');
  return { url, server };
}

/** The adapter registry over this process's Redis connection and data dir. */
export function openRegistry(rt: Runtime): Registry {
  return new Registry({ redis: rt.redis, prefix: rt.config.redis.prefix, store: new AdapterStore(rt.config.dataDir), log: rt.log.child({ part: 'registry' }) });
}

/** Removes leftovers of interrupted registrations and merges now and every hour. */
export function startRegistrySweeper(rt: Runtime, registry: Registry): void {
  const sweep = () => void registry.sweep().catch((err: unknown) => rt.log.warn({ err }, 'registry sweep failed'));
  sweep();
  const timer = setInterval(sweep, 3600_000);
  timer.unref();
  rt.lifecycle.add('registry sweeper', () => clearInterval(timer));
}

/** The API's side of the merge queue (submit, status, events, cancel). */
export async function openMerges(rt: Runtime, registry: Registry, metrics: Metrics): Promise<MergeService> {
  const merges = await MergeService.create({
    redisUrl: rt.config.redis.url,
    redisPrefix: rt.config.redis.prefix,
    redis: rt.redis,
    registry,
    log: rt.log.child({ part: 'merges' }),
    metrics: metrics.registry,
    attempts: rt.config.worker.attempts,
  });
  rt.lifecycle.add('merge queue', () => merges.close());
  return merges;
}

/** A merge worker taking jobs from the queue. */
export async function startWorker(rt: Runtime, registry: Registry): Promise<RunningWorker> {
  const w = rt.config.worker;
  const worker = await startBullWorker({
    redisUrl: rt.config.redis.url,
    redisPrefix: rt.config.redis.prefix,
    redis: rt.redis,
    registry,
    log: rt.log,
    concurrency: w.concurrency,
    lockMs: w.lockSeconds * 1000,
    shutdownGraceMs: w.shutdownGraceSeconds * 1000,
    merge: rt.config.merge,
  });
  rt.lifecycle.add('merge worker', () => worker.close());
  return worker;
}

/** The API with the registry and the merge queue: what `loraforge serve` runs. */
export async function startService(rt: Runtime): Promise<{ api: RunningApi; registry: Registry; merges: MergeService }> {
  const metrics = createMetrics();
  const registry = openRegistry(rt);
  startRegistrySweeper(rt, registry);
  const merges = await openMerges(rt, registry, metrics);
  const api = await startApi(rt, { metrics, registry, merges, adminQueues: [merges.queue] });
  return { api, registry, merges };
}

/** Everything in one process (`loraforge all`, `npm start`): the API, a merge worker, and later the engine and bot. */
export async function startAll(rt: Runtime): Promise<{ api: RunningApi }> {
  const { api, registry } = await startService(rt);
  await startWorker(rt, registry);
  return { api };
}

/** The engine's compare() as the arena's answer generator: the prompt is one user turn, through the chat template. */
export function engineAnswers(engine: Pick<InferenceEngine, 'compare'>): AnswerGenerator {
  return {
    async compare(prompt, models, sampling, options) {
      const result = await engine.compare(
        {
          models: [...models],
          input: { kind: 'chat', messages: [{ role: 'user', content: prompt }] },
          temperature: sampling.temperature,
          topP: sampling.topP,
          maxTokens: sampling.maxTokens,
          seed: sampling.seed,
        },
        options?.signal ? { signal: options.signal } : {},
      );
      return result.answers.map((a) => ({ text: a.text, finishReason: a.finishReason }));
    },
  };
}

/**
 * The arena on the runtime's Redis, its contestants from `adapters` (the registry). Without an engine in this
 * process, new battles answer 503; votes, battles and the leaderboard still work.
 */
export function openArena(rt: Runtime, parts: { adapters: ArenaAdapterSource; engine?: Pick<InferenceEngine, 'compare'> }): Arena {
  const noEngine: AnswerGenerator = {
    compare: () => Promise.reject(new UnavailableError('this API process serves no model, and battles need both answers generated')),
  };
  return new Arena({
    store: new ArenaStore(rt.redis, rt.config.redis.prefix),
    adapters: parts.adapters,
    answers: parts.engine ? engineAnswers(parts.engine) : noEngine,
    options: rt.config.arena,
    log: rt.log.child({ part: 'arena' }),
  });
}

/** The scoring-pass bounds of the engine (EngineSettings.scoring) from the eval settings. */
export function scoringSettings(config: Config): { maxBatch: number; maxTokens: number; logitsBudgetBytes: number } {
  const e = config.eval;
  return { maxBatch: e.scoreMaxBatch, maxTokens: e.scoreMaxTokens, logitsBudgetBytes: e.scoreLogitsMiB * 1024 ** 2 };
}

/**
 * Evals and sweeps (docs/eval.md) where the engine runs: the job service the API mounts (pass it as `evals` to
 * startApi, and its queue to `adminQueues`) and the worker that runs the jobs beside the engine, because scoring
 * needs the model. Sweeps queue their merges on `merges`, run by the merge workers.
 */
export async function startEvals(rt: Runtime, parts: { engine: InferenceEngine; registry: Registry; merges: MergeService }): Promise<EvalService> {
  const common = { redisUrl: rt.config.redis.url, redisPrefix: rt.config.redis.prefix, redis: rt.redis, registry: parts.registry };
  const evals = await EvalService.create({
    ...common,
    log: rt.log.child({ part: 'evals' }),
    suitesDir: rt.config.eval.suitesDir,
    attempts: rt.config.eval.attempts,
  });
  rt.lifecycle.add('eval queue', () => evals.close());
  const worker = await startEvalWorker({
    ...common,
    merges: parts.merges,
    engine: parts.engine,
    log: rt.log,
    lockMs: rt.config.eval.lockSeconds * 1000,
    mergesAhead: rt.config.eval.mergesAhead,
  });
  rt.lifecycle.add('eval worker', () => worker.close());
  return evals;
}
