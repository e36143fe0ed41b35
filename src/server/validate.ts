// Request validation: every route names zod schemas for its path params, query and body; the parsed values are
// what the handler sees. A mismatch is a 400 whose message names each bad field and whose details list zod's issues.
import type { Request } from 'express';
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';

export interface RequestSchemas {
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
}

type Out<S, Fallback> = S extends z.ZodType ? z.output<S> : Fallback;

export interface ParsedInput<S extends RequestSchemas> {
  params: Out<S['params'], Record<string, string>>;
  query: Out<S['query'], Record<string, unknown>>;
  body: Out<S['body'], undefined>;
}

export function describeIssues(where: string, issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const field = [where, ...issue.path.map(String)].join('.');
      return `${field}: ${issue.message}`;
    })
    .join('; ');
}

export function parseInput<S extends RequestSchemas>(schemas: S, req: Request): ParsedInput<S> {
  if (schemas.body && req.body === undefined && !req.is('application/json')) {
    throw new InvalidInputError('expected a JSON body: send "Content-Type: application/json"');
  }
  const parts = { params: req.params as unknown, query: req.query as unknown, body: undefined as unknown };
  const messages: string[] = [];
  const details: unknown[] = [];
  for (const where of ['params', 'query', 'body'] as const) {
    const schema = schemas[where];
    const value = where === 'body' ? req.body : parts[where];
    if (!schema) continue;
    const result = schema.safeParse(value);
    if (result.success) {
      parts[where] = result.data;
      continue;
    }
    messages.push(describeIssues(where, result.error.issues));
    for (const i of result.error.issues) details.push({ in: where, path: i.path, message: i.message, code: i.code });
  }
  // every bad field at once, so the caller fixes them in one go
  if (messages.length > 0) throw new InvalidInputError(messages.join('; '), details);
  return parts as ParsedInput<S>;
}

/** A query flag: `?force`, `?force=true`, `?force=1` are true; `false`, `0` or absent are false. */
export const queryFlag = z
  .union([z.boolean(), z.enum(['', 'true', 'false', '1', '0'])])
  .optional()
  .transform((v) => v === true || v === '' || v === 'true' || v === '1');
