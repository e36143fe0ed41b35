// The API's error body {"error": {"code", "message", "details"}} turned back into the LoraforgeError kind the
// server threw, so callers (CLI, bot) handle a remote failure exactly like a local one.
import {
  CancelledError,
  ConflictError,
  ForbiddenError,
  InvalidFileError,
  InvalidInputError,
  NotFoundError,
  RateLimitedError,
  TooLargeError,
  UnauthorizedError,
  UnavailableError,
  UnsupportedError,
  type ErrorCode,
  type LoraforgeError,
} from '../errors.js';

export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** A server-side bug (HTTP 500) or an answer that is not the API's error shape. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const KINDS: Record<ErrorCode, (message: string, details: unknown, retryAfter: number | undefined) => LoraforgeError> = {
  invalid_input: (m, d) => new InvalidInputError(m, d),
  invalid_file: (m, d) => {
    // the server's message is "<file>: <what is wrong>"
    const cut = m.indexOf(': ');
    return cut > 0 ? new InvalidFileError(m.slice(0, cut), m.slice(cut + 2), d) : new InvalidFileError('(remote file)', m, d);
  },
  unsupported: (m, d) => new UnsupportedError(m, d),
  not_found: (m, d) => new NotFoundError(m, d),
  conflict: (m, d) => new ConflictError(m, d),
  too_large: (m, d) => new TooLargeError(m, d),
  unauthorized: (m) => new UnauthorizedError(m),
  forbidden: (m) => new ForbiddenError(m),
  rate_limited: (m, d, retryAfter) => {
    const fromDetails = (d as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    return new RateLimitedError(m, typeof fromDetails === 'number' ? fromDetails : (retryAfter ?? 1));
  },
  unavailable: (m) => new UnavailableError(m),
  cancelled: (m) => new CancelledError(m),
};

function isErrorBody(value: unknown): value is ApiErrorBody {
  const error = (value as ApiErrorBody | null)?.error;
  return typeof error === 'object' && error !== null && typeof error.code === 'string' && typeof error.message === 'string';
}

export function errorFromResponse(status: number, body: unknown, retryAfterHeader: string | null): Error {
  if (isErrorBody(body)) {
    const make = KINDS[body.error.code as ErrorCode];
    const retryAfter = retryAfterHeader ? Number(retryAfterHeader) : undefined;
    if (make) return make(body.error.message, body.error.details, Number.isFinite(retryAfter) ? retryAfter : undefined);
    return new ApiError(status, `API error ${status} (${body.error.code}): ${body.error.message}`);
  }
  return new ApiError(status, `API answered HTTP ${status} without an error body`);
}
