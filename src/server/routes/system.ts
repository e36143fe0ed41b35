// Probes, metrics and the API description: the routes every loraforge API process has, whatever it serves.
import express, { type Router } from 'express';
import { UnavailableError } from '../../errors.js';
import type { RouteDeps } from '../app.js';
import { sendError } from '../errors.js';

const PROBE_TIMEOUT_MS = 2_000;

async function probe(name: string, check: () => Promise<unknown>): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timeout]);
    return undefined;
  } catch (err) {
    return `${name}: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}

export function systemRoutes(deps: RouteDeps): Router {
  const router = express.Router();

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const failures = (await Promise.all(Object.entries(deps.readiness).map(([name, check]) => probe(name, check)))).filter(
      (f): f is string => f !== undefined,
    );
    if (failures.length > 0) {
      sendError(res, new UnavailableError(`not ready: ${failures.join('; ')}`));
      return;
    }
    res.json({ status: 'ready', checks: Object.keys(deps.readiness) });
  });

  router.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });

  // built on first request, when every domain has registered its routes
  let document: Record<string, unknown> | undefined;
  router.get('/openapi.json', (_req, res) => {
    document ??= deps.openapi.document();
    res.json(document);
  });

  return router;
}
