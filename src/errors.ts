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

/** The longest error message any front door prints: a hostile file can hold megabytes in one name. */
export const MAX_MESSAGE_CHARS = 1000;

/**
 * `text` cut to at most `max` characters, ending with "…" when cut (never inside a surrogate pair). For quoting
 * user input (names, values) in messages: every folder uses this one.
 */
export function clip(text: string, max = 120): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--; // keep a pair whole
  return `${text.slice(0, end)}…`;
}

/** A user-given name as a JSON string for a message, clipped first (so the quotes survive the cut). */
export function quote(text: string, max = 120): string {
  return JSON.stringify(clip(text, max));
}

/**
 * One line (line breaks become "; "), at most MAX_MESSAGE_CHARS, without control characters (a hostile name
 * could carry terminal escapes): what the CLI and the API print.
 */
export function oneLine(message: string): string {
  const flat = message
    .replace(/\s*[\r\n]+\s*/g, '; ')
    .replace(/\t/g, ' ')
    // eslint-disable-next-line no-control-regex -- control characters are what this removes
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, '\ufffd');
  return clip(flat.trim(), MAX_MESSAGE_CHARS);
}

export class LoraforgeError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown, options?: { cause?: unknown }) {
    super(oneLine(message), options);
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
