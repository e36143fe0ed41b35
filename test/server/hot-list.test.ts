// The fast list route (src/server/hot-list.ts) against the express route it stands in front of: the same answer,
// the same security headers as helmet, one rate-limit budget, 304s, and express taking every other case.
import express from 'express';
import helmet from 'helmet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helmetHeaders } from '../../src/server/security-headers.js';
import { writeTestAdapter } from '../helpers/adapters.js';
import { listen } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService({ name: 'hot-list', worker: false, server: { rateLimitPerMinute: 8 } });
  const dir = await writeTestAdapter(`${svc.dataDir}/src-a`, { hidden: 16, kv: 8, layers: 1, rank: 2 }, 5);
  await svc.client.adapters.upload(dir, { name: 'a', category: 'code' });
});
afterAll(() => svc?.close());

/** Headers that differ between any two answers: the date, and the client's remaining budget. */
const comparable = (h: Headers) => [...h.entries()].filter(([name]) => name !== 'date' && name !== 'ratelimit');

describe('GET /v1/adapters ahead of express', () => {
  it('answers as the express route does, 304 included, in one rate-limit budget with express', async () => {
    const fast = await fetch(`${svc.url}/v1/adapters`);
    const slow = await fetch(`${svc.url}/v1/adapters?via=express`); // a query: express's route
    expect(fast.status).toBe(200);
    expect(comparable(fast.headers)).toEqual(comparable(slow.headers));
    // the upload in beforeAll spent one request of the budget
    expect(fast.headers.get('ratelimit')).toMatch(/^limit=8, remaining=6, reset=\d+$/);
    expect(slow.headers.get('ratelimit')).toMatch(/^limit=8, remaining=5, reset=\d+$/);
    expect(await fast.text()).toBe(await slow.text());

    const etag = fast.headers.get('etag')!;
    expect(etag).toMatch(/^W\/"registry-\d+"$/);
    const fast304 = await fetch(`${svc.url}/v1/adapters`, { headers: { 'if-none-match': etag } });
    const slow304 = await fetch(`${svc.url}/v1/adapters?via=express`, { headers: { 'if-none-match': `"x", ${etag}` } });
    expect([fast304.status, slow304.status]).toEqual([304, 304]);
    expect(comparable(fast304.headers)).toEqual(comparable(slow304.headers));

    // behind a proxy on loopback the client is the forwarded address (express's trust-proxy rule): a budget of its own
    const viaProxy = await fetch(`${svc.url}/v1/adapters`, { headers: { 'x-forwarded-for': '10.0.0.9' } });
    expect(viaProxy.headers.get('ratelimit')).toMatch(/remaining=7,/);
    // over the shared budget, express answers the 429
    for (let i = 0; i < 3; i++) expect((await fetch(`${svc.url}/v1/adapters`)).status).toBe(200);
    const limited = await fetch(`${svc.url}/v1/adapters`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
  });

  it('is timed in /metrics under the route of the express one', async () => {
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    expect(text).toMatch(/loraforge_http_request_duration_seconds_count\{method="GET",route="\/v1\/adapters",status="200"\} [1-9]/);
    expect(text).toMatch(/loraforge_http_request_duration_seconds_count\{method="GET",route="\/v1\/adapters",status="304"\} [1-9]/);
  });

  it('leaves reads that need the token to express', async () => {
    const locked = await startTestService({ name: 'hot-list-auth', worker: false, server: { authToken: 'secret', authReads: true } });
    try {
      expect((await fetch(`${locked.url}/v1/adapters`)).status).toBe(401);
      const ok = await fetch(`${locked.url}/v1/adapters`, { headers: { authorization: 'Bearer secret' } });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ adapters: [] });
    } finally {
      await locked.close();
    }
  });
});

describe('security headers', () => {
  it('are the ones helmet sets, with and without the CSP', async () => {
    for (const options of [undefined, { contentSecurityPolicy: false }]) {
      const app = express();
      app.disable('x-powered-by');
      app.use(helmet(options));
      app.get('/', (_req, res) => res.end());
      const api = await listen(app);
      try {
        const res = await fetch(api.url);
        const real = Object.fromEntries(comparable(res.headers).filter(([n]) => !['connection', 'keep-alive', 'content-length'].includes(n)));
        const ours = Object.fromEntries(helmetHeaders(options).map(([n, v]) => [n.toLowerCase(), v]));
        expect(ours).toEqual(real);
      } finally {
        await api.close();
      }
    }
  });
});
