// Bearer-token auth from config: writes always need the token when one is set; reads too when `authReads`.
// Health probes stay open so orchestrators can reach them.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHandler } from 'express';
import { UnauthorizedError } from '../errors.js';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const OPEN_PATHS = new Set(['/healthz', '/readyz']);

export function bearerToken(req: { headers: IncomingHttpHeaders }): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1]?.trim();
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function authMiddleware(options: { token?: string; authReads: boolean }): RequestHandler {
  if (!options.token) return (_req, _res, next) => next();
  const expected = digest(options.token);
  return (req, _res, next) => {
    if (OPEN_PATHS.has(req.path)) return next();
    if (READ_METHODS.has(req.method) && !options.authReads) return next();
    const given = bearerToken(req);
    // compare digests so the comparison takes the same time whatever the given token's length
    if (given !== undefined && timingSafeEqual(digest(given), expected)) return next();
    next(new UnauthorizedError());
  };
}

/**
 * The admin UI (bull-board) needs the token for every request, reads included. Browsers cannot send a bearer
 * header, so HTTP Basic with the token as password is accepted too, and a 401 asks the browser for it.
 */
export function adminAuthMiddleware(options: { token?: string }): RequestHandler {
  if (!options.token) return (_req, _res, next) => next();
  const expected = digest(options.token);
  return (req, res, next) => {
    let given = bearerToken(req);
    const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization?.trim() ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      given = decoded.slice(decoded.indexOf(':') + 1);
    }
    if (given !== undefined && timingSafeEqual(digest(given), expected)) return next();
    res.setHeader('WWW-Authenticate', 'Basic realm="loraforge admin", charset="UTF-8"');
    next(new UnauthorizedError('the admin UI needs the API token: send it as bearer token or as the Basic auth password'));
  };
}
