// GET /v1/adapters without a query is the API's hot read: the bot's autocomplete and dashboards poll it, and the
// answer is the registry's cached JSON. Express's per-request setup (prototype swaps, router) halved the
// throughput of that answer, so it is served ahead of express with the same security headers, rate limit,
// ETag / 304, metrics and access log (test/server/hot-list.test.ts holds the two answers side by side).
// Whenever the request needs more than the common case it goes to express, so each rule lives in one place:
// HEAD, a query, reads that need the token, X-Forwarded-For (express's trust-proxy rules), a client over its
// limit (express then answers the 429), or a registry error.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import type { Registry } from '../registry/registry.js';
import type { Logger } from '../util/log.js';
import { logWhenDone } from './access-log.js';
import { bearerToken } from './auth.js';
import type { Metrics } from './metrics.js';
import type { RateLimiter } from './ratelimit.js';
import { listEtag, matchesEtag } from './routes/adapters.js';
import type { HeaderList } from './security-headers.js';

export const HOT_LIST_PATH = '/v1/adapters';

export interface HotListDeps {
  registry: Registry;
  limiter: RateLimiter;
  securityHeaders: HeaderList;
  metrics: Metrics;
  log: Logger;
  /** reads need the token (server.authReads with a token set): then express's auth answers */
  readsNeedAuth: boolean;
}

/** Answers the request and returns true, or returns false having sent nothing (express takes it). */
async function serveList(deps: HotListDeps, req: IncomingMessage, res: ServerResponse, started: number): Promise<boolean> {
  const snapshot = await deps.registry.snapshot();
  const limit = await deps.limiter.hit(bearerToken(req), req.socket.remoteAddress ?? 'unknown');
  // over the limit: express counts it again (no change for a client already out of budget) and answers the 429
  if (limit.over) return false;

  const etag = listEtag(snapshot.version);
  const headers: string[] = [];
  for (const [name, value] of deps.securityHeaders) headers.push(name, value);
  for (const [name, value] of limit.headers) headers.push(name, value);
  headers.push('ETag', etag);
  const notModified = matchesEtag(req.headers['if-none-match'], etag);
  if (!notModified) headers.push('Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(snapshot.json.length));

  logWhenDone(deps.log, req, res, started);
  res.once('finish', () => {
    deps.metrics.httpDuration.observe({ method: 'GET', route: HOT_LIST_PATH, status: String(res.statusCode) }, (performance.now() - started) / 1000);
  });
  res.writeHead(notModified ? 304 : 200, headers);
  res.end(notModified ? undefined : snapshot.json);
  return true;
}

type Handle = (req: IncomingMessage, res: ServerResponse, next?: unknown) => void;

/**
 * Puts the fast list route in front of `app`, by wrapping `app.handle` (where express starts on every request;
 * not in its typings), so every server and test that uses the app gets it.
 */
export function serveHotListAhead(app: express.Express, deps: HotListDeps): void {
  const target = app as unknown as { handle: Handle };
  const handle = target.handle.bind(app);
  target.handle = (req, res, next) => {
    if (req.method !== 'GET' || req.url !== HOT_LIST_PATH || deps.readsNeedAuth || req.headers['x-forwarded-for'] !== undefined) {
      return handle(req, res, next);
    }
    const started = performance.now();
    serveList(deps, req, res, started).then(
      (answered) => answered || handle(req, res, next),
      () => handle(req, res, next), // a registry error: express answers it with the API's error shape
    );
  };
}
