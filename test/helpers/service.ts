// The service as `loraforge all` builds it (the real composition root), on a port of its own, with a Redis key
// prefix and data dir of its own; close() stops it and deletes both.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openRuntime, startService, startWorker, type Runtime } from '../../src/app.js';
import { LoraforgeClient } from '../../src/client/index.js';
import { parseConfig } from '../../src/config/index.js';
import type { MergeService } from '../../src/queue/merges.js';
import type { Registry } from '../../src/registry/registry.js';
import { silentLogger, type Logger } from '../../src/util/log.js';
import { deletePrefix, TEST_REDIS_URL, testPrefix } from './redis.js';

export interface TestService {
  url: string;
  client: LoraforgeClient;
  registry: Registry;
  merges: MergeService;
  rt: Runtime;
  prefix: string;
  dataDir: string;
  close(): Promise<void>;
}

export interface TestServiceOptions {
  name: string;
  redisUrl?: string;
  server?: Record<string, unknown>;
  /** run a merge worker in this process (default true) */
  worker?: boolean;
  workerConfig?: Record<string, unknown>;
  prefix?: string;
  dataDir?: string;
  /** the model engine's settings; off unless `inference: { enabled: true }` (it builds and serves a model) */
  inference?: Record<string, unknown>;
  /** the process's logger (default: silent) */
  log?: Logger;
}

export async function startTestService(options: TestServiceOptions): Promise<TestService> {
  const prefix = options.prefix ?? testPrefix(options.name);
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), `lf-${options.name}-`)));
  const config = parseConfig({
    dataDir,
    redis: { url: options.redisUrl ?? TEST_REDIS_URL, prefix },
    server: { host: '127.0.0.1', port: 0, rateLimitPerMinute: 100_000, ...options.server },
    worker: { lockSeconds: 5, shutdownGraceSeconds: 5, ...options.workerConfig },
    // no spinning threads: test files run side by side on few cores
    inference: { enabled: false, spinning: false, ...options.inference },
  });
  const rt = await openRuntime(config, options.log ?? silentLogger());
  const { api, registry, merges } = await startService(rt);
  if (options.worker ?? true) await startWorker(rt, registry);
  return {
    url: api.url,
    client: new LoraforgeClient({ baseUrl: api.url, token: config.server.authToken }),
    registry,
    merges,
    rt,
    prefix,
    dataDir,
    async close() {
      const cleanup = rt.redis.duplicate();
      await rt.lifecycle.close();
      await deletePrefix(cleanup, prefix).catch(() => undefined);
      cleanup.disconnect();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
