// What the OpenAI-compatible endpoints share: OpenAI bodies to engine settings and messages, the SSE chunk stream,
// the error shape the stock `openai` client understands, and the `loraforge` extension field saying which member
// of a router answered (also the `X-Loraforge-Routed-To` header, set before a stream's first chunk).
import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, Request, Response } from 'express';
import { RateLimitedError, UnsupportedError, type LoraforgeError } from '../../errors.js';
import type { ChatMessage, GenerateResult, RoutedTo, SamplingSettings } from '../../inference/engine/index.js';
import type { RouteDeps } from '../app.js';
import { toLoraforgeError } from '../errors.js';
import type { ChatCompletionRequest } from './openai-schemas.js';

type Message = ChatCompletionRequest['messages'][number];

/** The engine's settings from the parts of an OpenAI body they share. */
export function samplingSettings(body: {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  repetition_penalty?: number | null;
  frequency_penalty?: number | null;
  presence_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  seed?: number | null;
  stop?: string | string[] | null;
  ignore_eos?: boolean | null;
}): SamplingSettings {
  return {
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    topK: body.top_k == null || body.top_k < 0 ? undefined : body.top_k,
    repetitionPenalty: body.repetition_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    logitBias: body.logit_bias ?? undefined,
    seed: body.seed ?? undefined,
    stop: body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop,
    ignoreEos: body.ignore_eos ?? undefined,
  };
}

/** OpenAI content (a string or text parts) as the plain string chat templates expect. */
export function chatMessages(messages: Message[]): ChatMessage[] {
  return messages.map((m, i) => {
    let content = '';
    if (typeof m.content === 'string') content = m.content;
    else if (Array.isArray(m.content)) {
      for (const part of m.content) {
        if (part.type !== 'text') {
          throw new UnsupportedError(`messages.${i}.content: only text parts are supported, not ${String(part.type)}`);
        }
        content += (part as { text: string }).text;
      }
    }
    // "developer" is OpenAI's newer name for the system role; chat templates know "system"
    return { role: m.role === 'developer' ? 'system' : m.role, content, ...(m.name ? { name: m.name } : {}) };
  });
}

export const now = () => Math.floor(Date.now() / 1000);

/** The fields every OpenAI response object and stream chunk of one request shares. */
export function envelope(prefix: 'chatcmpl' | 'cmpl', model: string) {
  return { id: `${prefix}-${randomUUID()}`, created: now(), model, system_fingerprint: null };
}

/** Aborted when the client goes away before the answer is complete: the engine frees the rows at the next step. */
export function clientGone(req: Request, res: Response): AbortController {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  void req;
  return controller;
}

/** Plain `data:` frames as OpenAI streams them (no event names), ending with `data: [DONE]`. */
export class ChunkStream {
  private started = false;

  constructor(private readonly res: Response) {}

  send(chunk: unknown): void {
    if (!this.started) {
      // an error response already answered the request (one of several prompts was refused): a late token is dropped
      if (this.res.headersSent) return;
      this.started = true;
      this.res.status(200);
      this.res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      this.res.setHeader('Cache-Control', 'no-cache, no-transform');
      this.res.setHeader('Connection', 'keep-alive');
      this.res.setHeader('X-Accel-Buffering', 'no');
      this.res.flushHeaders();
      this.res.req.socket.setNoDelay(true);
    }
    if (!this.res.writableEnded) this.res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  }

  end(): void {
    if (!this.res.writableEnded) {
      this.res.write('data: [DONE]\n\n');
      this.res.end();
    }
  }
}

export function usage(u: GenerateResult['usage']) {
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens };
}

const ROUTED_TO_HEADER = 'X-Loraforge-Routed-To';

/** The `loraforge` extension of a response to a router: who answered and how clearly. */
export function routedField(routed: RoutedTo) {
  return {
    router: routed.router,
    routed_to: routed.model,
    nearest: routed.nearest,
    fallback: routed.fallback,
    lead: routed.lead,
    ...(routed.blend ? { blend: routed.blend } : {}),
  };
}

/** Says who answered in the header, while headers can still be set (a stream's first chunk has not gone out). */
export function setRoutedHeader(res: Response, routed: RoutedTo): void {
  if (!res.headersSent && !res.hasHeader(ROUTED_TO_HEADER)) res.setHeader(ROUTED_TO_HEADER, routed.model);
}

/**
 * Waits for a streamed generation: on success sends the final chunks and [DONE]; on failure before anything was
 * sent answers with a normal error response, after that with an error chunk (the openai client raises it).
 */
export async function streamResult<T>(stream: ChunkStream, res: Response, work: Promise<T>, finish: (value: T) => void): Promise<void> {
  let value: T;
  try {
    value = await work;
  } catch (err) {
    if (!res.headersSent) throw err;
    if (!res.writableEnded && !res.destroyed) {
      const known = toLoraforgeError(err);
      stream.send({ error: errorBody(known ?? null, err) });
      stream.end();
    }
    return;
  }
  finish(value);
  stream.end();
}

const OPENAI_TYPES: Record<string, string> = {
  invalid_input: 'invalid_request_error',
  invalid_file: 'invalid_request_error',
  unsupported: 'invalid_request_error',
  not_found: 'invalid_request_error',
  conflict: 'invalid_request_error',
  too_large: 'invalid_request_error',
  unauthorized: 'authentication_error',
  forbidden: 'permission_error',
  rate_limited: 'rate_limit_error',
  unavailable: 'server_error',
  cancelled: 'invalid_request_error',
};

function errorBody(known: LoraforgeError | null, err: unknown) {
  if (!known) return { message: 'internal error (logged on the server)', type: 'server_error', param: null, code: 'internal' };
  const details = known.details as Array<{ path?: unknown[] }> | undefined;
  const param = Array.isArray(details) && Array.isArray(details[0]?.path) ? details[0]!.path!.join('.') || null : null;
  void err;
  return { message: known.message, type: OPENAI_TYPES[known.code] ?? 'invalid_request_error', param, code: known.code, details: known.details };
}

export function openaiErrorHandler(deps: RouteDeps): ErrorRequestHandler {
  return (err, req, res, next) => {
    const known = toLoraforgeError(err);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (!known) {
      next(err); // the app's handler logs it and answers 500
      return;
    }
    if (known instanceof RateLimitedError) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(known.retryAfterSeconds))));
    if (known.code === 'cancelled') {
      res.destroy(); // the client is gone: nobody to answer
      return;
    }
    deps.log.debug({ url: req.originalUrl, code: known.code }, known.message);
    res.status(known.status).json({ error: errorBody(known, err) });
  };
}
