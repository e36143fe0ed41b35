// The failure kinds of loraforge. Every layer throws one of these with a message a user can act on; the API maps
// `status` to the HTTP status, the bot to an ephemeral reply, the CLI to exit code 2 and one line on stderr.
// Anything else that escapes is a bug (HTTP 500, CLI exit 1).
//
// This module imports nothing and may be imported from every folder, formats included.

export type ErrorCode =
  | 'invalid_input'
  | 'invalid_file'
  | 'unsupported'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'unauthorized'
  | 'forbidden'
  | 'rate_limited'
  | 'unavailable'
  | 'cancelled';

const STATUS: Record<ErrorCode, number> = {
  invalid_input: 400,
  invalid_file: 422,
  unsupported: 422,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unauthorized: 401,
  forbidden: 403,
  rate_limited: 429,
  unavailable: 503,
  cancelled: 499,
};

export class LoraforgeError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return STATUS[this.code];
  }
}

/** A request or argument that is wrong as given: a bad option value, a weight count that does not match. */
export class InvalidInputError extends LoraforgeError {
  constructor(message: string, details?: unknown) {
    super('invalid_input', message, details);
  }
}

/** A file that cannot be read as what it claims to be (malformed safetensors, broken config). Names the file. */
export class InvalidFileError extends LoraforgeError {
  readonly file: string;
  constructor(file: string, message: string, details?: unknown, options?: { cause?: unknown }) {
    super('invalid_file', `${file}: ${message}`, details, options);
    this.file = file;
  }
}

/** Valid input that loraforge deliberately does not handle (DoRA, pickle weights, an unknown architecture). */
export class UnsupportedError extends LoraforgeError {
  constructor(message: string, details?: unknown) {
    super('unsupported', message, details);
  }
}

export class NotFoundError extends LoraforgeError {
  constructor(message: string, details?: unknown) {
    super('not_found', message, details);
  }
}

export class ConflictError extends LoraforgeError {
  constructor(message: string, details?: unknown) {
    super('conflict', message, details);
  }
}

export class TooLargeError extends LoraforgeError {
  constructor(message: string, details?: unknown) {
    super('too_large', message, details);
  }
}

export class UnauthorizedError extends LoraforgeError {
  constructor(message = 'missing or wrong bearer token: send "Authorization: Bearer <token>"') {
    super('unauthorized', message);
  }
}

export class ForbiddenError extends LoraforgeError {
  constructor(message: string) {
    super('forbidden', message);
  }
}

/** Too much work queued: the caller should retry after `retryAfterSeconds`. */
export class RateLimitedError extends LoraforgeError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super('rate_limited', message, { retryAfterSeconds });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A dependency is down (Redis, the API, the model engine). */
export class UnavailableError extends LoraforgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, undefined, options);
  }
}

export class CancelledError extends LoraforgeError {
  constructor(message = 'cancelled') {
    super('cancelled', message);
  }
}

export function isLoraforgeError(err: unknown): err is LoraforgeError {
  return err instanceof LoraforgeError;
}

/**
 * `text` cut to at most `max` characters, with an ellipsis where it was cut: for names and values from the
 * outside echoed in messages, so one hostile name cannot make an error line of megabytes.
 */
export function clip(text: string, max = 120): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  // never cut a surrogate pair in two
  if (end > 0 && /[\uD800-\uDBFF]/.test(text[end - 1]!)) end--;
  return `${text.slice(0, end)}…`;
}
