// Prometheus metrics of one API process, on a registry of its own (no prom-client global), so several apps in
// one test process do not collide. Domains register their own metrics on `registry` (jobs by state, merge times).
import type { RequestHandler } from 'express';
import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'loraforge_' });
  const httpDuration = new Histogram({
    name: 'loraforge_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    registers: [registry],
  });
  return { registry, httpDuration };
}

/** Times every request; the route label is the declared path (`/v1/adapters/:name`), never the raw URL. */
export function httpMetricsMiddleware(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.httpDuration.startTimer();
    res.once('finish', () => {
      // mounted sub-apps (the admin UI) are labelled by their mount path, not by their many inner routes
      const path: unknown = req.route?.path;
      const route = typeof path === 'string' ? `${req.baseUrl}${path}` : req.baseUrl || 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };
}
