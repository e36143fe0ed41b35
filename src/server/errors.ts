// Every error the API answers with has one shape: {"error": {"code", "message", "details"}}, with the status of
// the LoraforgeError kind (src/errors.ts). Parser errors (malformed JSON, body too large) and unknown routes are
// turned into the same shape; anything else is a bug: logged with its stack, answered 500 without internals.
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { z } from 'zod';
import {
  InvalidInputError,
  NotFoundError,
  RateLimitedError,
  TooLargeError,
  isLoraforgeError,
  type LoraforgeError,
} from '../errors.js';
import type { Logger } from '../util/log.js';

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'machine-readable kind: invalid_input, not_found, conflict, ...' }),
      message: z.string().meta({ description: 'what went wrong and what to fix' }),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: 'Error' });

export type ErrorBody = z.infer<typeof ErrorBodySchema>;

export function sendError(res: Response, err: LoraforgeError): void {
  if (err instanceof RateLimitedError) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterSeconds))));
  // the message is one line of at most MAX_MESSAGE_CHARS already (LoraforgeError's constructor)
  const body: ErrorBody = { error: { code: err.code, message: err.message, details: err.details } };
  res.status(err.status).json(body);
}

/** Errors thrown by body-parser carry `type` and `status`; map the ones a client causes. */
function fromParserError(err: unknown): LoraforgeError | undefined {
  if (!err || typeof err !== 'object' || !('type' in err)) return undefined;
  const e = err as { type: string; message: string; limit?: number };
  switch (e.type) {
    case 'entity.parse.failed':
      return new InvalidInputError(`malformed JSON body: ${e.message}`);
    case 'entity.too.large':
      return new TooLargeError(`request body too large (limit ${e.limit ?? '?'} bytes)`, { limit: e.limit });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new InvalidInputError(e.message);
    case 'request.aborted':
      return new InvalidInputError('request aborted by the client');
    default:
      return undefined;
  }
}

export function toLoraforgeError(err: unknown): LoraforgeError | undefined {
  if (isLoraforgeError(err)) return err;
  return fromParserError(err);
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`no route ${req.method} ${req.path}; see GET /openapi.json for the API`));
};

export function errorHandler(log: Logger): ErrorRequestHandler {
  // express recognises an error handler by its four parameters
  return (err, req, res, _next) => {
    if (res.headersSent) {
      // a streaming response broke half-way: nothing left to answer with
      log.warn({ err, url: req.originalUrl }, 'error after the response started');
      res.destroy();
      return;
    }
    const known = toLoraforgeError(err);
    if (known) {
      sendError(res, known);
      return;
    }
    log.error({ err, method: req.method, url: req.originalUrl }, 'internal error');
    res.status(500).json({ error: { code: 'internal', message: 'internal error (logged on the server)' } });
  };
}
