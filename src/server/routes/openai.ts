// The OpenAI-compatible API, as vLLM and LoRAX serve it: `model` picks the base model or any registered adapter
// (merges included), answered from one loaded graph with no reload. Streams are SSE in OpenAI's chunk format
// ending with `data: [DONE]`; errors carry OpenAI's {message, type, param, code} so the stock `openai` client
// surfaces them (plus our `details`).
import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, Request, Response, Router } from 'express';
import { InvalidInputError, LoraforgeError, RateLimitedError, UnsupportedError } from '../../errors.js';
import type {
  ChatMessage,
  Delta,
  GenerateHooks,
  GenerateRequest,
  GenerateResult,
  InferenceEngine,
  SamplingSettings,
  TokenLogprob,
} from '../../inference/engine/index.js';
import type { RouteDeps } from '../app.js';
import { toLoraforgeError } from '../errors.js';
import { ApiRouter } from '../openapi.js';
import {
  ChatCompletionRequestSchema,
  CompletionRequestSchema,
  ModelListSchema,
  type ChatCompletionRequest,
} from './openai-schemas.js';

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

const now = () => Math.floor(Date.now() / 1000);

/** Aborted when the client goes away before the answer is complete: the engine frees the rows at the next step. */
function clientGone(req: Request, res: Response): AbortController {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  void req;
  return controller;
}

/** Plain `data:` frames as OpenAI streams them (no event names), ending with `data: [DONE]`. */
class ChunkStream {
  private started = false;

  constructor(private readonly res: Response) {}

  send(chunk: unknown): void {
    if (!this.started) {
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

function chatLogprob(t: TokenLogprob) {
  return {
    token: t.text,
    logprob: t.logprob,
    bytes: t.bytes,
    top_logprobs: t.top.map((a) => ({ token: a.text, logprob: a.logprob, bytes: a.bytes })),
  };
}

/** Completions' legacy logprobs object for a run of tokens; `offset` is where the first token starts in the text. */
function completionLogprobs(tokens: TokenLogprob[], offset: number) {
  const out = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Record<string, number>[], text_offset: [] as number[] };
  for (const t of tokens) {
    out.tokens.push(t.text);
    out.token_logprobs.push(t.logprob);
    const top: Record<string, number> = {};
    for (const a of t.top.length > 0 ? t.top : [t]) if (!(a.text in top)) top[a.text] = a.logprob;
    out.top_logprobs.push(top);
    out.text_offset.push(offset);
    offset += t.text.length;
  }
  return out;
}

function usage(u: GenerateResult['usage']) {
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens };
}

export function openaiRoutes(deps: RouteDeps & { engine: InferenceEngine }): Router {
  const { engine } = deps;
  const api = new ApiRouter(deps.openapi);

  api.get(
    '/v1/models',
    {
      summary: 'List the models that can be asked for: the base model and every adapter (parent = the base model)',
      tags: ['inference'],
      responses: { 200: { description: 'the models', schema: ModelListSchema } },
    },
    async () => ({
      object: 'list' as const,
      data: (await engine.models()).map((m) => ({
        id: m.id,
        object: 'model' as const,
        created: m.created,
        owned_by: 'loraforge',
        root: m.parent ?? m.id,
        parent: m.parent,
      })),
    }),
  );

  api.get(
    '/v1/models/:model',
    { summary: 'One model', tags: ['inference'], responses: { 200: { description: 'the model' } } },
    async (_input, req) => {
      const id = String(req.params.model);
      const found = (await engine.models()).find((m) => m.id === id);
      if (!found) throw new LoraforgeError('not_found', `model '${id}' does not exist: GET /v1/models lists the models`);
      return { id: found.id, object: 'model', created: found.created, owned_by: 'loraforge', root: found.parent ?? found.id, parent: found.parent };
    },
  );

  api.post(
    '/v1/chat/completions',
    {
      summary: 'Chat completion (OpenAI-compatible); `model` is the base model or an adapter name',
      tags: ['inference'],
      request: { body: ChatCompletionRequestSchema },
      responses: { 200: { description: 'a chat.completion, or an SSE stream of chat.completion.chunk when stream is true' } },
    },
    async ({ body }, req, res) => {
      const topLogprobs = body.logprobs ? (body.top_logprobs ?? 0) : null;
      if (body.top_logprobs != null && !body.logprobs) throw new InvalidInputError('top_logprobs needs logprobs: true');
      if (body.tools && body.tools.length > 0) throw new UnsupportedError('tools (function calling) are not supported: send the conversation without tools');
      if (body.response_format && body.response_format.type !== 'text') {
        throw new UnsupportedError(`response_format ${body.response_format.type} is not supported: only text answers (omit response_format)`);
      }
      const request: GenerateRequest = {
        ...samplingSettings(body),
        model: body.model,
        input: { kind: 'chat', messages: chatMessages(body.messages) },
        maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
        logprobs: topLogprobs,
        n: body.n ?? 1,
      };
      const id = `chatcmpl-${randomUUID()}`;
      const created = now();
      const controller = clientGone(req, res);
      if (!body.stream) {
        const result = await engine.generate(request, { signal: controller.signal });
        res.setHeader('x-loraforge-seed', String(result.seed));
        return {
          id,
          object: 'chat.completion',
          created,
          model: body.model,
          system_fingerprint: null,
          choices: result.choices.map((c) => ({
            index: c.index,
            message: { role: 'assistant', content: c.text, refusal: null },
            logprobs: c.logprobs ? { content: c.logprobs.map(chatLogprob), refusal: null } : null,
            finish_reason: c.finishReason,
            ...(body.return_token_ids ? { prompt_token_ids: result.promptIds, token_ids: c.tokenIds } : {}),
          })),
          usage: usage(result.usage),
        };
      }
      const includeUsage = body.stream_options?.include_usage === true;
      const stream = new ChunkStream(res);
      const chunk = (choices: unknown[]) => ({
        id,
        object: 'chat.completion.chunk',
        created,
        model: body.model,
        system_fingerprint: null,
        choices,
        ...(includeUsage ? { usage: null } : {}),
      });
      const opened = new Set<number>();
      const open = (index: number) => {
        if (opened.has(index)) return;
        opened.add(index);
        stream.send(chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
      };
      const hooks: GenerateHooks = {
        signal: controller.signal,
        onDelta: (d: Delta) => {
          open(d.index);
          if (d.text === '' && !d.logprob) return;
          stream.send(
            chunk([
              {
                index: d.index,
                delta: { content: d.text },
                logprobs: d.logprob ? { content: [chatLogprob(d.logprob)], refusal: null } : null,
                finish_reason: null,
              },
            ]),
          );
        },
      };
      await streamResult(stream, res, engine.generate(request, hooks), (result) => {
        for (const c of result.choices) {
          open(c.index);
          stream.send(chunk([{ index: c.index, delta: {}, logprobs: null, finish_reason: c.finishReason }]));
        }
        if (includeUsage) stream.send({ ...chunk([]), usage: usage(result.usage) });
      });
      return undefined;
    },
  );

  api.post(
    '/v1/completions',
    {
      summary: 'Text completion (OpenAI-compatible); `model` is the base model or an adapter name',
      tags: ['inference'],
      request: { body: CompletionRequestSchema },
      responses: { 200: { description: 'a text_completion, or an SSE stream of them when stream is true' } },
    },
    async ({ body }, req, res) => {
      if (body.suffix) throw new UnsupportedError('suffix (fill-in-the-middle) is not supported');
      const n = body.n ?? 1;
      if (body.best_of != null && body.best_of !== n) throw new UnsupportedError('best_of other than n is not supported');
      if (body.echo && body.logprobs != null) {
        throw new UnsupportedError('echo with logprobs is not supported: the graph returns logits for generated tokens only');
      }
      const prompts: Array<{ kind: 'text'; text: string } | { kind: 'ids'; ids: number[] }> =
        typeof body.prompt === 'string'
          ? [{ kind: 'text', text: body.prompt }]
          : typeof body.prompt[0] === 'number'
            ? [{ kind: 'ids', ids: body.prompt as number[] }]
            : (body.prompt as Array<string | number[]>).map((p) => (typeof p === 'string' ? { kind: 'text', text: p } : { kind: 'ids', ids: p }));
      const echoText = prompts.map((p) => (p.kind === 'text' ? p.text : engine.tokenizer.decode(p.ids)));
      const id = `cmpl-${randomUUID()}`;
      const created = now();
      const controller = clientGone(req, res);
      const settings = samplingSettings(body);
      // OpenAI's default for completions is 16 tokens
      const requests = prompts.map(
        (input): GenerateRequest => ({ ...settings, model: body.model, input, n, maxTokens: body.max_tokens ?? 16, logprobs: body.logprobs ?? null }),
      );
      // choice index across prompts, as OpenAI numbers them: prompt i, choice j → i·n + j
      const offsets = new Map<number, number>();
      const logprobsFor = (index: number, t: TokenLogprob) => {
        const offset = offsets.get(index) ?? 0;
        offsets.set(index, offset + t.text.length);
        return completionLogprobs([t], offset);
      };
      if (!body.stream) {
        const results = await Promise.all(requests.map((r) => engine.generate(r, { signal: controller.signal })));
        const choices = results.flatMap((result, p) =>
          result.choices.map((c) => {
            const prefix = body.echo ? echoText[p]! : '';
            return {
              index: p * n + c.index,
              text: prefix + c.text,
              logprobs: c.logprobs ? completionLogprobs(c.logprobs, prefix.length) : null,
              finish_reason: c.finishReason,
              ...(body.return_token_ids ? { prompt_token_ids: result.promptIds, token_ids: c.tokenIds } : {}),
            };
          }),
        );
        const total = results.reduce(
          (u, r) => ({
            promptTokens: u.promptTokens + r.usage.promptTokens,
            completionTokens: u.completionTokens + r.usage.completionTokens,
            totalTokens: u.totalTokens + r.usage.totalTokens,
          }),
          { promptTokens: 0, completionTokens: 0, totalTokens: 0 },
        );
        if (results.length === 1) res.setHeader('x-loraforge-seed', String(results[0]!.seed));
        return { id, object: 'text_completion', created, model: body.model, system_fingerprint: null, choices, usage: usage(total) };
      }
      const includeUsage = body.stream_options?.include_usage === true;
      const stream = new ChunkStream(res);
      const chunk = (choices: unknown[]) => ({
        id,
        object: 'text_completion',
        created,
        model: body.model,
        system_fingerprint: null,
        choices,
        ...(includeUsage ? { usage: null } : {}),
      });
      const all = Promise.all(
        requests.map((r, p) => {
          if (body.echo) for (let j = 0; j < n; j++) stream.send(chunk([{ index: p * n + j, text: echoText[p], logprobs: null, finish_reason: null }]));
          return engine.generate(r, {
            signal: controller.signal,
            onDelta: (d) => {
              if (d.text === '' && !d.logprob) return;
              const index = p * n + d.index;
              stream.send(chunk([{ index, text: d.text, logprobs: d.logprob ? logprobsFor(index, d.logprob) : null, finish_reason: null }]));
            },
          });
        }),
      ).then((results) => {
        let promptTokens = 0;
        let completionTokens = 0;
        results.forEach((result, p) => {
          promptTokens += result.usage.promptTokens;
          completionTokens += result.usage.completionTokens;
          for (const c of result.choices) stream.send(chunk([{ index: p * n + c.index, text: '', logprobs: null, finish_reason: c.finishReason }]));
        });
        return { promptTokens, completionTokens };
      });
      await streamResult(stream, res, all, (u) => {
        if (includeUsage) {
          stream.send({ ...chunk([]), usage: usage({ ...u, totalTokens: u.promptTokens + u.completionTokens }) });
        }
      });
      return undefined;
    },
  );

  api.router.use(openaiErrorHandler(deps));
  return api.router;
}

/**
 * Waits for a streamed generation: on success sends the final chunks and [DONE]; on failure before anything was
 * sent answers with a normal error response, after that with an error chunk (the openai client raises it).
 */
async function streamResult<T>(stream: ChunkStream, res: Response, work: Promise<T>, finish: (value: T) => void): Promise<void> {
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

function openaiErrorHandler(deps: RouteDeps): ErrorRequestHandler {
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
