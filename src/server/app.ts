// The express app of the API. `createApp(deps)` is pure wiring: every domain's routes live in
// ./routes/<domain>.ts as `<domain>Routes(deps): Router` and are mounted here; the parts they need (registry,
// merge queue, inference engine, arena) are built by the process's composition root and passed in `deps`.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express from 'express';
import type { Arena } from '../arena/arena.js';
import type { Config } from '../config/index.js';
import type { RouterService } from '../eval/routers.js';
import type { EvalService } from '../eval/service.js';
import type { MergeService } from '../queue/merges.js';
import type { Registry } from '../registry/registry.js';
import type { InferenceEngine } from '../inference/engine/index.js';
import type { Logger } from '../util/log.js';
import { accessLogMiddleware } from './access-log.js';
import { adminAuthMiddleware, authMiddleware } from './auth.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { registerInferenceMetrics } from './inference-metrics.js';
import { httpMetricsMiddleware, type Metrics } from './metrics.js';
import { OpenApiSpec } from './openapi.js';
import { serveHotListAhead } from './hot-list.js';
import { createRateLimiter } from './ratelimit.js';
import { helmetHeaders, securityHeadersMiddleware } from './security-headers.js';
import { adaptersRoutes } from './routes/adapters.js';
import { evalsRoutes } from './routes/evals.js';
import { mergesRoutes } from './routes/merges.js';
import { compareRoutes } from './routes/compare.js';
import { openaiRoutes } from './routes/openai.js';
import { arenaRoutes } from './routes/arena.js';
import { routersRoutes } from './routes/routers.js';
import { systemRoutes } from './routes/system.js';

export type ServerConfig = Config['server'];

/**
 * What the API process hands to the app. Required parts are present in every API process; each optional part
 * enables its domain's routes (absent: those routes answer 404), so a process serves what it was built with.
 */
export interface AppDeps {
  config: ServerConfig;
  log: Logger;
  /** prom-client registry of this process; domains register their own metrics on it */
  metrics: Metrics;
  /** /readyz probes by name (e.g. redis): each resolves when its dependency answers */
  readiness: Record<string, () => Promise<unknown>>;
  /** BullMQ queues shown by bull-board at /admin/queues */
  adminQueues?: Queue[];
  /** the version reported in /openapi.json */
  version?: string;
  /** /v1/adapters */
  registry?: Registry;
  /** /v1/merges */
  merges?: MergeService;
  /** /v1/evals, /v1/sweeps, /v1/suites: present where an eval worker runs beside the engine */
  evals?: EvalService;
  /** the model engine: OpenAI-compatible routes and /v1/compare */
  engine?: InferenceEngine;
  /** /v1/battles, /v1/leaderboard */
  arena?: Arena;
  /** /v1/routers: where the engine runs (calibration needs it) */
  routers?: RouterService;
}

/** What each `<domain>Routes(deps)` receives: the app's deps plus the OpenAPI spec its routes register in. */
export type RouteDeps = AppDeps & { openapi: OpenApiSpec };

export function createApp(deps: AppDeps): express.Express {
  const openapi = new OpenApiSpec({
    title: 'loraforge API',
    version: deps.version ?? '0.1.0',
    description: 'Register, merge, serve and compare PEFT LoRA adapters. Errors: {"error": {"code", "message", "details"}}.',
  });
  const routeDeps: RouteDeps = { ...deps, openapi };
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.set('query parser', 'simple');

  app.use(httpMetricsMiddleware(deps.metrics));
  app.use(accessLogMiddleware(deps.log));
  // bull-board's page uses inline scripts: no CSP there; everything else gets helmet's defaults
  const securityHeaders = helmetHeaders();
  app.use(securityHeadersMiddleware(securityHeaders, helmetHeaders({ contentSecurityPolicy: false })));
  const limiter = createRateLimiter(deps.config.rateLimitPerMinute);
  app.use(limiter.middleware);

  if (deps.adminQueues && deps.adminQueues.length > 0) {
    const board = new ExpressAdapter();
    board.setBasePath('/admin/queues');
    createBullBoard({ queues: deps.adminQueues.map((q) => new BullMQAdapter(q)), serverAdapter: board });
    app.use('/admin/queues', adminAuthMiddleware({ token: deps.config.authToken }), board.getRouter());
  }

  app.use(authMiddleware({ token: deps.config.authToken, authReads: deps.config.authReads }));
  app.use(express.json({ limit: deps.config.jsonBodyLimit }));

  app.use(systemRoutes(routeDeps));
  if (deps.registry) app.use(adaptersRoutes({ ...routeDeps, registry: deps.registry }));
  if (deps.merges) app.use(mergesRoutes({ ...routeDeps, merges: deps.merges }));
  if (deps.engine) {
    const withEngine = { ...routeDeps, engine: deps.engine };
    app.use(openaiRoutes(withEngine));
    app.use(compareRoutes(withEngine));
    registerInferenceMetrics(deps.metrics.registry, deps.engine);
  }
  if (deps.arena) app.use(arenaRoutes({ ...routeDeps, arena: deps.arena }));
  if (deps.evals) app.use(evalsRoutes({ ...routeDeps, evals: deps.evals }));
  if (deps.routers) app.use(routersRoutes({ ...routeDeps, routers: deps.routers }));

  app.use(notFoundHandler);
  app.use(errorHandler(deps.log));
  if (deps.registry) {
    const readsNeedAuth = Boolean(deps.config.authToken) && deps.config.authReads;
    serveHotListAhead(app, { registry: deps.registry, limiter, securityHeaders, metrics: deps.metrics, log: deps.log, readsNeedAuth });
  }
  return app;
}
