// One log line per request, written when it ends. Successful reads are most of the traffic (list polling, bot
// autocomplete) and log at debug; writes at info; 4xx at warn, 5xx and aborted requests at error / warn. The
// line is only built when its level is on: a per-request child logger (pino-http) cost ~15% of a list request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { Logger } from '../util/log.js';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** Logs `req` once its response is sent or abandoned; `started` is its performance.now() on arrival. */
export function logWhenDone(log: Logger, req: IncomingMessage, res: ServerResponse, started: number): void {
  // read now: by 'close' a destroyed request has let go of its socket (req.socket is null), and a throw in
  // this listener would end the process
  const remoteAddress = req.socket.remoteAddress;
  // 'close' comes after 'finish', and alone when the client went away before the answer was sent
  res.once('close', () => {
    const status = res.statusCode;
    const finished = res.writableFinished;
    const level = !finished ? 'warn' : status >= 500 ? 'error' : status >= 400 ? 'warn' : READS.has(req.method ?? '') ? 'debug' : 'info';
    if (!log.isLevelEnabled(level)) return;
    log[level](
      {
        req: { method: req.method, url: (req as { originalUrl?: string }).originalUrl ?? req.url, remoteAddress },
        res: { statusCode: status },
        responseTime: Math.round(performance.now() - started),
      },
      finished ? 'request completed' : 'request aborted',
    );
  });
}

export function accessLogMiddleware(log: Logger): RequestHandler {
  return (req, res, next) => {
    if (!QUIET_PATHS.has(req.path)) logWhenDone(log, req, res, performance.now());
    next();
  };
}
