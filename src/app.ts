// The composition root: builds each process's parts from the config and passes them down (no global singletons).
// `loraforge serve`, `worker` and `all` are compositions of the start* functions here; a new part (the model
// engine, the bot) adds its own start function and one line in `startAll`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { Arena } from './arena/arena.js';
import { ArenaStore } from './arena/store.js';
import type { AnswerGenerator, ArenaAdapterSource } from './arena/types.js';
import { LoraforgeBot } from './bot/bot.js';
import { LoraforgeClient } from './client/index.js';
import type { Config } from './config/index.js';
import { InvalidInputError, NotFoundError, UnavailableError } from './errors.js';
import { RouterService, storedRouters } from './eval/routers.js';
import { MergeAutoEvals } from './eval/auto-eval.js';
import { EvalService } from './eval/service.js';
import { startEvalWorker } from './eval/worker.js';
import { DEMO_SKILLS } from './inference/demo.js';
import type { LoraTarget } from './inference/builder/naming.js';
import { checkDemoAssets } from './inference/demo-assets.js';
import { InferenceEngine, type AdapterResolver, type ResolvedAdapter } from './inference/engine/index.js';
import { prepareModel } from './inference/prepare.js';
import { MergeService } from './queue/merges.js';
import { startMergeWorker as startBullWorker, type RunningWorker } from './queue/worker.js';
import { stageFromPath } from './registry/ingest.js';
import { Registry } from './registry/registry.js';
import { RouterStore } from './registry/routers.js';
import { AdapterStore, contentHash } from './registry/store.js';
import type { AdapterRecord } from './registry/types.js';
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
  const server = await listenOn(createServer(app), rt.config.server.host, rt.config.server.port);
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

/** Starts `server` listening; a port in use or not ours to take is a setting to fix, said in one line. */
export function listenOn<S extends NetServer>(server: S, host: string, port: number): Promise<S> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      const why: Record<string, string> = {
        EADDRINUSE: 'the port is in use by another process',
        EACCES: 'this user may not listen on that port',
        EADDRNOTAVAIL: 'that address is not one of this machine',
      };
      reject(
        why[err.code ?? '']
          ? new InvalidInputError(`cannot listen on ${host}:${port}: ${why[err.code!]} (set PORT or --port, LORAFORGE_HOST or --host)`)
          : err,
      );
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve(server);
    });
  });
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
    maxStalledCount: w.maxStalledCount,
    shutdownGraceMs: w.shutdownGraceSeconds * 1000,
    merge: rt.config.merge,
  });
  rt.lifecycle.add('merge worker', () => worker.close());
  return worker;
}

/** Registered adapters as the engine asks for them: by name, per request, so a merge is served once registered. */
export function registryAdapters(registry: Registry): AdapterResolver {
  const resolved = (r: AdapterRecord): ResolvedAdapter => ({
    name: r.name,
    dir: registry.store.pathOf(r.sha256),
    key: r.sha256,
    baseModel: r.baseModel,
    rank: r.rank,
    created: Math.floor(Date.parse(r.createdAt) / 1000),
  });
  return {
    resolve: async (name) => {
      const record = await registry.find(name);
      if (!record) return null;
      if (!(await registry.store.has(record.sha256))) {
        throw new NotFoundError(
          `adapter "${name}" is registered but its files are gone from ${registry.store.pathOf(record.sha256)} (the data dir was ` +
            `wiped or changed under the same Redis): register it again (loraforge adapters register <dir> --name ${name}) or remove it (loraforge adapters rm ${name})`,
        );
      }
      return resolved(record);
    },
    list: async () => (await registry.list()).map(resolved),
  };
}

/**
 * The trained demo model shipped in assets/demo (checked against its manifest), with its four skill adapters
 * registered under their names and categories unless the user took those names. Adapters registered by an older
 * demo are replaced by the shipped ones (they were trained for another base). Returns the checkpoint dir and the
 * LoRA targets its adapters need.
 */
async function ensureDemoModel(registry: Registry): Promise<{ checkpointDir: string; targets: LoraTarget[] }> {
  const demo = await checkDemoAssets();
  for (const skill of DEMO_SKILLS) {
    const existing = await registry.find(skill);
    if (existing && existing.registeredBy !== 'loraforge demo') continue;
    // checkDemoAssets has just checked the weights against this hash: the usual start copies and hashes nothing
    const weightsSha256 = demo.manifest.files[`adapters/${skill}/adapter_model.safetensors`]!.sha256;
    // registered and stored: nothing to do (a data dir wiped under the same Redis has the records but not the files)
    const shipped = existing && existing.sha256 === (await contentHash(demo.adapterDirs[skill], weightsSha256));
    if (shipped && (await registry.store.has(existing.sha256))) continue;
    const staged = await stageFromPath(registry.store, path.join(demo.dir, 'adapters'), skill);
    await registry.registerStaged(staged, {
      name: skill,
      registeredBy: 'loraforge demo',
      category: skill,
      description: `demo adapter "${skill}": a LoRA trained on the ${skill} corpus of tools/demo-model`,
      source: `assets/demo/adapters/${skill}`,
      replace: true,
    }, { weightsSha256 });
  }
  return { checkpointDir: demo.checkpointDir, targets: demo.targets };
}

/** The model engine: the configured checkpoint (or the demo model) built once, adapters by registry name. */
export async function startEngine(rt: Runtime, registry: Registry): Promise<InferenceEngine> {
  const { config } = rt;
  const log = rt.log.child({ part: 'engine' });
  const demo = config.inference.model ? undefined : await ensureDemoModel(registry);
  const checkpoint = demo ? demo.checkpointDir : path.resolve(config.inference.model!);
  let phase = '';
  const model = await prepareModel(checkpoint, {
    dataDir: config.dataDir,
    ...config.builder,
    targets: config.builder.targets ?? demo?.targets,
    onProgress: (p) => {
      if (p.phase !== phase) log.info({ checkpoint, phase: p.phase }, 'building the model (once; cached under the data dir)');
      phase = p.phase;
    },
  });
  const engine = await InferenceEngine.start({
    ...config.inference,
    scoring: scoringSettings(config),
    modelDir: model.dir,
    adapters: registryAdapters(registry),
    routers: storedRouters(openRouterStore(rt)),
    log,
  });
  rt.lifecycle.add('inference engine', () => engine.close());
  return engine;
}

/** Who can battle in the arena: every registered adapter and merge, and every router. */
export function arenaContestants(registry: Registry, routers: RouterStore): ArenaAdapterSource {
  return {
    list: async () => [
      ...(await registry.list()),
      ...(await routers.list()).map((r) => ({ name: r.name, baseModel: r.baseModel, registeredBy: r.createdBy })),
    ],
  };
}

/** Router records on the runtime's Redis. */
export function openRouterStore(rt: Runtime): RouterStore {
  return new RouterStore(rt.redis, rt.config.redis.prefix);
}

/** The API with the registry, the merge queue, the model engine and the arena: what `loraforge serve` runs. */
export async function startService(
  rt: Runtime,
): Promise<{ api: RunningApi; registry: Registry; merges: MergeService; engine: InferenceEngine | undefined }> {
  const metrics = createMetrics();
  const registry = openRegistry(rt);
  startRegistrySweeper(rt, registry);
  const merges = await openMerges(rt, registry, metrics);
  const engine = rt.config.inference.enabled ? await startEngine(rt, registry) : undefined;
  const arena = openArena(rt, { adapters: arenaContestants(registry, openRouterStore(rt)), engine });
  // evals and sweeps run where the model is: without an engine, their routes answer 404
  const evals = engine ? await startEvals(rt, { engine, registry, merges }) : undefined;
  const routers = engine ? new RouterService({ engine, registry, store: openRouterStore(rt), suitesDir: rt.config.eval.suitesDir }) : undefined;
  const api = await startApi(rt, { metrics, registry, merges, engine, arena, evals, routers, adminQueues: [merges.queue, ...(evals ? [evals.queue] : [])] });
  return { api, registry, merges, engine };
}

/** Everything in one process (`loraforge all`, `npm start`): the API, the engine, a merge worker, and the bot when configured. */
export async function startAll(rt: Runtime): Promise<{ api: RunningApi; engine: InferenceEngine | undefined }> {
  const { api, registry, engine } = await startService(rt);
  await startWorker(rt, registry);
  if (rt.config.bot.token) await startBot(rt, api.url);
  else rt.log.info('Discord bot off: set DISCORD_TOKEN (and DISCORD_APPLICATION_ID) to start it here; README "Discord bot" says how');
  return { api, engine };
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

/** The Discord bot, talking to the API at `apiUrl` (default: the configured one); needs DISCORD_TOKEN. */
export async function startBot(rt: Runtime, apiUrl = rt.config.bot.apiUrl): Promise<LoraforgeBot> {
  const c = rt.config.bot;
  if (!c.token) throw new InvalidInputError('set DISCORD_TOKEN to the bot token (Developer Portal → your application → Bot → Reset Token)');
  const api = new LoraforgeClient({ baseUrl: apiUrl, token: c.apiToken ?? rt.config.server.authToken, timeoutMs: 30_000 });
  const bot = new LoraforgeBot({
    token: c.token,
    api,
    redis: rt.redis,
    redisPrefix: rt.config.redis.prefix,
    log: rt.log,
    settings: { operatorRole: c.operatorRole, editIntervalMs: c.editIntervalMs },
    adapterRefreshMs: c.adapterRefreshSeconds * 1000,
    maxUploadBytes: c.maxUploadBytes,
    heartbeatFile: c.heartbeatFile,
  });
  await bot.start();
  rt.lifecycle.add('discord bot', () => bot.stop());
  return bot;
}

/** The scoring-pass bounds of the engine (EngineSettings.scoring) from the eval settings. */
export function scoringSettings(config: Config): { maxBatch: number; maxTokens: number; logitsBudgetBytes: number } {
  const e = config.eval;
  return { maxBatch: e.scoreMaxBatch, maxTokens: e.scoreMaxTokens, logitsBudgetBytes: e.scoreLogitsMiB * 1024 ** 2 };
}

/**
 * Evals and sweeps (docs/eval.md) where the engine runs: the job service the API mounts (pass it as `evals` to
 * startApi, and its queue to `adminQueues`) and the worker that runs the jobs beside the engine, because scoring
 * needs the model. Sweeps queue their merges on `merges`, run by the merge workers. Finished merges are scored
 * on their own unless eval.autoEvalMerges is off (eval/auto-eval.ts).
 */
export async function startEvals(rt: Runtime, parts: { engine: InferenceEngine; registry: Registry; merges: MergeService }): Promise<EvalService> {
  const common = { redisUrl: rt.config.redis.url, redisPrefix: rt.config.redis.prefix, redis: rt.redis, registry: parts.registry };
  const evals = await EvalService.create({
    ...common,
    log: rt.log.child({ part: 'evals' }),
    suitesDir: rt.config.eval.suitesDir,
    routers: openRouterStore(rt),
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
  if (rt.config.eval.autoEvalMerges) {
    const auto = new MergeAutoEvals(evals, parts.registry, rt.log.child({ part: 'auto-eval' }));
    parts.merges.decorateCompleted((status) => auto.decorate(status));
  }
  return evals;
}
