// POST /v1/chat/completions: a chat answered by the base model, an adapter or a router (the member it chose is
// named in the `loraforge` field and the X-Loraforge-Routed-To header).
import { InvalidInputError, UnsupportedError } from '../../errors.js';
import type { Delta, GenerateHooks, GenerateRequest, InferenceEngine, TokenLogprob } from '../../inference/engine/index.js';
import type { ApiRouter } from '../openapi.js';
import {
  ChunkStream,
  chatMessages,
  clientGone,
  envelope,
  routedField,
  samplingSettings,
  setRoutedHeader,
  streamResult,
  usage,
} from './openai-common.js';
import { ChatCompletionRequestSchema } from './openai-schemas.js';

function chatLogprob(t: TokenLogprob) {
  return {
    token: t.text,
    logprob: t.logprob,
    bytes: t.bytes,
    top_logprobs: t.top.map((a) => ({ token: a.text, logprob: a.logprob, bytes: a.bytes })),
  };
}

export function chatCompletionsEndpoint(api: ApiRouter, engine: InferenceEngine): void {
  api.post(
    '/v1/chat/completions',
    {
      summary: 'Chat completion (OpenAI-compatible); `model` is the base model, an adapter, a merge or a router',
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
      const head = envelope('chatcmpl', body.model);
      const controller = clientGone(req, res);
      if (!body.stream) {
        const result = await engine.generate(request, { signal: controller.signal, onRouted: (r) => setRoutedHeader(res, r) });
        res.setHeader('x-loraforge-seed', String(result.seed));
        return {
          ...head,
          object: 'chat.completion',
          choices: result.choices.map((c) => ({
            index: c.index,
            message: { role: 'assistant', content: c.text, refusal: null },
            logprobs: c.logprobs ? { content: c.logprobs.map(chatLogprob), refusal: null } : null,
            finish_reason: c.finishReason,
            ...(body.return_token_ids ? { prompt_token_ids: result.promptIds, token_ids: c.tokenIds } : {}),
          })),
          usage: usage(result.usage),
          ...(result.routedTo ? { loraforge: routedField(result.routedTo) } : {}),
        };
      }
      const includeUsage = body.stream_options?.include_usage === true;
      const stream = new ChunkStream(res);
      const chunk = (choices: unknown[]) => ({
        ...head,
        object: 'chat.completion.chunk',
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
        onRouted: (r) => setRoutedHeader(res, r),
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

}
