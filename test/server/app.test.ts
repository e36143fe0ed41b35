import { Queue } from 'bullmq';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LoraforgeClient, readSse } from '../../src/client/index.js';
import { InvalidInputError, NotFoundError, RateLimitedError, UnauthorizedError, UnavailableError } from '../../src/errors.js';
import { createApp, type AppDeps } from '../../src/server/app.js';
import { errorHandler } from '../../src/server/errors.js';
import { createMetrics } from '../../src/server/metrics.js';
import { ApiRouter, OpenApiSpec } from '../../src/server/openapi.js';
import { openSse } from '../../src/server/sse.js';
import { silentLogger } from '../../src/util/log.js';
import { testPrefix, testRedis } from '../helpers/redis.js';
import { listen, type Listening } from '../helpers/http.js';

const redis = testRedis();

function deps(overrides: Partial<AppDeps['config']> = {}, readiness?: AppDeps['readiness']): AppDeps {
  return {
    config: {
      host: '127.0.0.1',
      port: 0,
      authReads: false,
      rateLimitPerMinute: 1000,
      jsonBodyLimit: '1kb',
      uploadLimitBytes: 1024,
      archiveMaxRatio: 100,
      archiveMaxEntries: 1000,
      ...overrides,
    },
    log: silentLogger(),
    metrics: createMetrics({ defaultMetrics: false }),
    readiness: readiness ?? { redis: () => redis.ping() },
  };
}

afterAll(async () => {
  await redis.quit();
});

describe('createApp: probes, errors, auth', () => {
  let api: Listening;
  let client: LoraforgeClient;
  beforeAll(async () => {
    api = await listen(createApp(deps({ authToken: 'secret' })));
    client = new LoraforgeClient({ baseUrl: api.url });
  });
  afterAll(() => api.close());

  it('answers /healthz and /readyz with Redis reachable', async () => {
    expect(await client.system.health()).toEqual({ status: 'ok' });
    expect(await client.system.ready()).toEqual({ status: 'ready', checks: ['redis'] });
  });

  it('answers unknown routes with the error shape', async () => {
    const res = await fetch(`${api.url}/v1/nothing-here`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('not_found');
    expect(body.error.message).toMatch(/GET \/v1\/nothing-here/);
  });

  it('refuses writes without the token, and malformed or oversized JSON with it', async () => {
    const noToken = await fetch(`${api.url}/v1/anything`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(noToken.status).toBe(401);
    expect(((await noToken.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    await expect(client.http.json('POST', '/v1/anything', { json: {} })).rejects.toBeInstanceOf(UnauthorizedError);

    const auth = { authorization: 'Bearer secret', 'content-type': 'application/json' };
    const malformed = await fetch(`${api.url}/v1/anything`, { method: 'POST', body: '{"a": ', headers: auth });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { message: string } }).error.message).toMatch(/malformed JSON/);

    const big = await fetch(`${api.url}/v1/anything`, { method: 'POST', body: JSON.stringify({ a: 'x'.repeat(4096) }), headers: auth });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('too_large');

    const withToken = new LoraforgeClient({ baseUrl: api.url, token: 'secret' });
    await expect(withToken.http.json('POST', '/v1/anything', { json: {} })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('serves metrics with the HTTP latency histogram, and an OpenAPI document', async () => {
    const text = await (await fetch(`${api.url}/metrics`)).text();
    expect(text).toMatch(/loraforge_http_request_duration_seconds_bucket\{.*route="\/healthz"/);
    const doc = await client.system.openapi();
    expect(doc.openapi).toBe('3.1.0');
  });

  it('sets helmet headers', async () => {
    const res = await fetch(`${api.url}/healthz`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-powered-by')).toBeNull();
  });
});

describe('createApp: the queue dashboard', () => {
  it('is behind the token, as bearer or as the Basic auth password', async () => {
    const queue = new Queue(`dash-${Date.now()}`, { connection: { host: '127.0.0.1', port: 6379 }, prefix: testPrefix('dash') });
    const api = await listen(createApp({ ...deps({ authToken: 'secret' }), adminQueues: [queue] }));
    try {
      const anonymous = await fetch(`${api.url}/admin/queues`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic/);
      const basic = await fetch(`${api.url}/admin/queues`, { headers: { authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}` } });
      expect(basic.status).toBe(200);
      expect(await basic.text()).toMatch(/<html/i);
      const bearer = await fetch(`${api.url}/admin/queues/api/queues`, { headers: { authorization: 'Bearer secret' } });
      expect(bearer.status).toBe(200);
      const wrong = await fetch(`${api.url}/admin/queues`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
    } finally {
      await api.close();
      await queue.obliterate({ force: true }); // the dashboard's read wrote the queue's meta key
      await queue.close();
    }
  });
});

describe('createApp: readiness and rate limits', () => {
  it('answers 503 when a dependency is down', async () => {
    const api = await listen(createApp(deps({}, { redis: () => Promise.reject(new Error('connection refused')) })));
    try {
      const client = new LoraforgeClient({ baseUrl: api.url });
      await expect(client.system.ready()).rejects.toThrow(UnavailableError);
      await expect(client.system.ready()).rejects.toThrow(/redis: connection refused/);
    } finally {
      await api.close();
    }
  });

  it('limits each client and says when to retry', async () => {
    const api = await listen(createApp(deps({ rateLimitPerMinute: 3 })));
    try {
      const client = new LoraforgeClient({ baseUrl: api.url });
      for (let i = 0; i < 3; i++) await expect(client.http.json('GET', '/v1/none')).rejects.toBeInstanceOf(NotFoundError);
      const err = await client.http.json('GET', '/v1/none').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RateLimitedError);
      expect((err as RateLimitedError).retryAfterSeconds).toBeGreaterThan(0);
      // probes are never limited
      expect(await client.system.health()).toEqual({ status: 'ok' });
    } finally {
      await api.close();
    }
  });

  it('reports an unreachable API as unavailable', async () => {
    const client = new LoraforgeClient({ baseUrl: 'http://127.0.0.1:1' });
    await expect(client.system.health()).rejects.toThrow(/cannot reach the loraforge API at http:\/\/127.0.0.1:1/);
  });
});

describe('ApiRouter and SSE helpers', () => {
  let api: Listening;
  let spec: OpenApiSpec;
  beforeAll(async () => {
    spec = new OpenApiSpec({ title: 't', version: '0' });
    const routes = new ApiRouter(spec);
    routes.post(
      '/items/:id',
      {
        summary: 'make an item',
        request: {
          params: z.object({ id: z.string().regex(/^[a-z]+$/) }),
          query: z.object({ n: z.coerce.number().int().min(1).default(1) }),
          body: z.object({ weights: z.array(z.number()).min(1) }),
        },
        responses: { 200: { description: 'the item', schema: z.object({ id: z.string(), total: z.number() }) } },
      },
      ({ params, query, body }) => ({ id: params.id, total: query.n * body.weights.reduce((a, b) => a + b, 0) }),
    );
    routes.get('/events', { summary: 'a stream', responses: { 200: { description: 'events' } } }, (_input, req, res) => {
      const sse = openSse(req, res, { heartbeatMs: 20 });
      let n = 0;
      const timer = setInterval(() => {
        sse.send('tick', { n: ++n });
        if (n === 3) {
          sse.send('done', { n });
          sse.close();
        }
      }, 30);
      sse.onClose(() => clearInterval(timer));
    });
    const app = express();
    app.use(express.json());
    app.use(routes.router);
    app.use(errorHandler(silentLogger()));
    api = await listen(app);
  });
  afterAll(() => api.close());

  it('parses params, query and body', async () => {
    const client = new LoraforgeClient({ baseUrl: api.url });
    expect(await client.http.json('POST', '/items/abc', { query: { n: 2 }, json: { weights: [1, 2] } })).toEqual({ id: 'abc', total: 6 });
  });

  it('names each bad field', async () => {
    const client = new LoraforgeClient({ baseUrl: api.url });
    const err = (await client.http.json('POST', '/items/ABC', { query: { n: 0 }, json: { weights: 'x' } }).catch((e: unknown) => e)) as InvalidInputError;
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(/params\.id/);
    expect(err.message).toMatch(/query\.n/);
    expect(err.message).toMatch(/body\.weights/);
    expect(Array.isArray(err.details)).toBe(true);
  });

  it('documents the operation from the same schemas', () => {
    const doc = spec.document() as { paths: Record<string, Record<string, { parameters: Array<{ name: string; in: string }>; requestBody: unknown }>> };
    const op = doc.paths['/items/{id}']!.post!;
    expect(op.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(['path:id', 'query:n']);
    expect(JSON.stringify(op.requestBody)).toMatch(/weights/);
  });

  it('streams events with heartbeats and ends', async () => {
    const response = await fetch(`${api.url}/events`);
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events = [];
    for await (const event of readSse<{ n: number }>(response)) events.push(event);
    expect(events.map((e) => `${e.event}:${e.data.n}`)).toEqual(['tick:1', 'tick:2', 'tick:3', 'done:3']);
  });
});
