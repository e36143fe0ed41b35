// Per-client rate limits: a client is its bearer token when it sends one, else its IP address. Counters live in
// the process (express-rate-limit's memory store): with several API processes each enforces its own share.
import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit, type RateLimitInfo } from 'express-rate-limit';
import { RateLimitedError } from '../errors.js';
import { bearerToken } from './auth.js';

const UNLIMITED = new Set(['/healthz', '/readyz', '/metrics']);

export function rateLimitMiddleware(perMinute: number): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    skip: (req) => UNLIMITED.has(req.path),
    keyGenerator: (req) => {
      const token = bearerToken(req);
      if (token) return `token:${createHash('sha256').update(token).digest('hex').slice(0, 32)}`;
      return `ip:${ipKeyGenerator(req.ip ?? 'unknown')}`;
    },
    handler: (req, _res, next) => {
      const info = (req as typeof req & { rateLimit?: RateLimitInfo }).rateLimit;
      const reset = info?.resetTime?.getTime() ?? Date.now() + 60_000;
      const retryAfter = Math.max(1, Math.ceil((reset - Date.now()) / 1000));
      next(new RateLimitedError(`too many requests: at most ${perMinute} per minute per client; retry in ${retryAfter} s`, retryAfter));
    },
  });
}
