// Per-client rate limits: a client is its bearer token when it sends one, else its IP address. Counters live in
// the process (express-rate-limit's memory store): with several API processes each enforces its own share. The
// fast list route (./hot-list.ts) counts into the same store through `hit`, so a client has one budget.
import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import { MemoryStore, ipKeyGenerator, rateLimit, type RateLimitInfo } from 'express-rate-limit';
import { RateLimitedError } from '../errors.js';
import { bearerToken } from './auth.js';

const UNLIMITED = new Set(['/healthz', '/readyz', '/metrics']);
const WINDOW_MS = 60_000;

export interface RateLimiter {
  middleware: RequestHandler;
  /** Counts one request of the client outside express: its RateLimit headers (draft-7, as the middleware sends), and whether it is over. */
  hit(token: string | undefined, ip: string): Promise<{ over: boolean; headers: Array<[string, string]> }>;
}

/** The counter a client's requests go to: its token's, else its address's (IPv6 by /56, as express-rate-limit advises). */
function clientKey(token: string | undefined, ip: string | undefined): string {
  if (token) return `token:${createHash('sha256').update(token).digest('hex').slice(0, 32)}`;
  return `ip:${ipKeyGenerator(ip ?? 'unknown')}`;
}

export function createRateLimiter(perMinute: number): RateLimiter {
  const store = new MemoryStore();
  const middleware = rateLimit({
    windowMs: WINDOW_MS,
    limit: perMinute,
    store,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    skip: (req) => UNLIMITED.has(req.path),
    keyGenerator: (req) => clientKey(bearerToken(req), req.ip),
    // its source check cannot see that clientKey calls ipKeyGenerator
    validate: { keyGeneratorIpFallback: false },
    handler: (req, _res, next) => {
      const info = (req as typeof req & { rateLimit?: RateLimitInfo }).rateLimit;
      const reset = info?.resetTime?.getTime() ?? Date.now() + WINDOW_MS;
      const retryAfter = Math.max(1, Math.ceil((reset - Date.now()) / 1000));
      next(new RateLimitedError(`too many requests: at most ${perMinute} per minute per client; retry in ${retryAfter} s`, retryAfter));
    },
  });
  return {
    middleware,
    async hit(token, ip) {
      const { totalHits, resetTime } = await store.increment(clientKey(token, ip));
      const reset = resetTime ? Math.max(0, Math.ceil((resetTime.getTime() - Date.now()) / 1000)) : WINDOW_MS / 1000;
      return {
        over: totalHits > perMinute,
        headers: [
          ['RateLimit-Policy', `${perMinute};w=${WINDOW_MS / 1000}`],
          ['RateLimit', `limit=${perMinute}, remaining=${Math.max(0, perMinute - totalHits)}, reset=${reset}`],
        ],
      };
    },
  };
}
