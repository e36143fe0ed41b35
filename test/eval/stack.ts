// The eval part as a process runs it, for tests: the demo model (built once per test file) with experts made to
// favour each built-in suite, registered under `<category>-expert` with their category; the registry, the merge
// queue and a merge worker, the engine, the eval service and worker, and the API, on a Redis prefix and data dir
// of their own.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  arenaContestants,
  openArena,
  openMerges,
  openRegistry,
  openRouterStore,
  openRuntime,
  scoringSettings,
  startApi,
  startEvals,
  startWorker,
  type Runtime,
} from '../../src/app.js';
import { RouterService, storedRouters } from '../../src/eval/routers.js';
import { LoraforgeClient } from '../../src/client/index.js';
import { parseConfig } from '../../src/config/index.js';
import { EvalService } from '../../src/eval/service.js';
import { loadSuites } from '../../src/eval/suite.js';
import { buildModel, type ModelManifest } from '../../src/inference/builder/index.js';
import { makeDemoModel } from '../../src/inference/demo.js';
import { InferenceEngine, type AdapterResolver } from '../../src/inference/engine/index.js';
import type { MergeService } from '../../src/queue/merges.js';
import { stageFromPath } from '../../src/registry/ingest.js';
import type { Registry } from '../../src/registry/registry.js';
import { createMetrics } from '../../src/server/metrics.js';
import { silentLogger } from '../../src/util/log.js';
import { deletePrefix, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js';
import { makeExperts, type Expert } from './expert.js';

export interface DemoWithExperts {
  root: string;
  checkpointDir: string;
  modelDir: string;
  manifest: ModelManifest;
  expertsDir: string;
  experts: Expert[];
}

/** The demo model built (int4, as served) into `root`, and one expert per built-in suite. */
export async function demoWithExperts(root: string): Promise<DemoWithExperts> {
  const demo = await makeDemoModel(path.join(root, 'demo'));
  const built = await buildModel(demo.checkpointDir, { dataDir: path.join(root, 'models'), maxRank: 16, slots: 8 });
  const expertsDir = path.join(root, 'experts');
  const experts = await makeExperts({ modelDir: built.dir, manifest: built.manifest, checkpointDir: demo.checkpointDir, items: await loadSuites(), outDir: expertsDir });
  return { root, checkpointDir: demo.checkpointDir, modelDir: built.dir, manifest: built.manifest, expertsDir, experts };
}

/** Registered adapters by name for the engine (what the composition root wires). */
export function registryAdapters(registry: Registry): AdapterResolver {
  const resolved = (r: { name: string; sha256: string; baseModel: string | null; rank: number }) => ({
    name: r.name,
    dir: registry.store.pathOf(r.sha256),
    key: r.sha256,
    baseModel: r.baseModel,
    rank: r.rank,
  });
  return {
    resolve: async (name) => {
      const record = await registry.find(name);
      return record ? resolved(record) : null;
    },
    list: async () => (await registry.list()).map(resolved),
  };
}

export interface EvalStack {
  rt: Runtime;
  url: string;
  client: LoraforgeClient;
  registry: Registry;
  merges: MergeService;
  engine: InferenceEngine | null;
  evals: EvalService;
  prefix: string;
  close(): Promise<void>;
}

export interface EvalStackOptions {
  name: string;
  prefix?: string;
  /** a data dir to keep (the default is a temp dir removed on close) */
  dataDir?: string;
  /** register the experts (default true) */
  register?: boolean;
  mergeWorker?: boolean;
  /** run the engine and an eval worker here (default true); without, this process only queues and reports */
  engine?: boolean;
  evalLockSeconds?: number;
  /** eval.autoEvalMerges (default true, as deployed) */
  autoEvalMerges?: boolean;
}

export async function startEvalStack(demo: DemoWithExperts, options: EvalStackOptions): Promise<EvalStack> {
  const prefix = options.prefix ?? testPrefix(options.name);
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), `lf-${options.name}-`)));
  const config = parseConfig({
    dataDir,
    redis: { url: TEST_REDIS_URL, prefix },
    server: { host: '127.0.0.1', port: 0, rateLimitPerMinute: 100_000 },
    worker: { lockSeconds: 5, shutdownGraceSeconds: 5 },
    inference: { threads: 2 },
    eval: { lockSeconds: options.evalLockSeconds ?? 30, autoEvalMerges: options.autoEvalMerges ?? true },
  });
  const rt = await openRuntime(config, silentLogger());
  const metrics = createMetrics();
  const registry = openRegistry(rt);
  const merges = await openMerges(rt, registry, metrics);
  if (options.mergeWorker ?? true) await startWorker(rt, registry);
  let engine: InferenceEngine | null = null;
  let evals: EvalService;
  if (options.engine ?? true) {
    engine = await InferenceEngine.start({
      ...config.inference,
      modelDir: demo.modelDir,
      adapters: registryAdapters(registry),
      routers: storedRouters(openRouterStore(rt)),
      log: rt.log,
      scoring: scoringSettings(config),
    });
    const running = engine;
    rt.lifecycle.add('inference engine', () => running.close());
    evals = await startEvals(rt, { engine, registry, merges });
  } else {
    evals = await EvalService.create({ redisUrl: config.redis.url, redisPrefix: prefix, redis: rt.redis, registry, log: rt.log });
    const service = evals;
    rt.lifecycle.add('eval queue', () => service.close());
  }
  const routers = engine ? new RouterService({ engine, registry, store: openRouterStore(rt) }) : undefined;
  const arena = openArena(rt, { adapters: arenaContestants(registry, openRouterStore(rt)), ...(engine ? { engine } : {}) });
  const api = await startApi(rt, { metrics, registry, merges, ...(engine ? { engine, routers } : {}), evals, arena });
  if (options.register ?? true) {
    for (const expert of demo.experts) {
      if (await registry.find(`${expert.category}-expert`)) continue;
      const staged = await stageFromPath(registry.store, demo.expertsDir, expert.category);
      await registry.registerStaged(staged, { name: `${expert.category}-expert`, category: expert.category, registeredBy: 'test' });
    }
  }
  return {
    rt,
    url: api.url,
    client: new LoraforgeClient({ baseUrl: api.url }),
    registry,
    merges,
    engine,
    evals,
    prefix,
    async close() {
      const cleanup = rt.redis.duplicate();
      await rt.lifecycle.close();
      if (!options.prefix) await deletePrefix(cleanup, prefix).catch(() => undefined);
      cleanup.disconnect();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
