// POST /v1/completions: text completion (one prompt or several) by the base model, an adapter or a router.
import { UnsupportedError } from '../../errors.js';
import type { GenerateRequest, InferenceEngine, TokenLogprob } from '../../inference/engine/index.js';
import type { ApiRouter } from '../openapi.js';
import { ChunkStream, clientGone, envelope, routedField, samplingSettings, setRoutedHeader, streamResult, usage } from './openai-common.js';
import { CompletionRequestSchema } from './openai-schemas.js';

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

export function completionsEndpoint(api: ApiRouter, engine: InferenceEngine): void {
  api.post(
    '/v1/completions',
    {
      summary: 'Text completion (OpenAI-compatible); `model` is the base model, an adapter, a merge or a router',
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
      // decoded only when asked for: a long list of ids is not decoded for nothing
      const echoText = body.echo ? prompts.map((p) => (p.kind === 'text' ? p.text : engine.tokenizer.decode(p.ids))) : [];
      const head = envelope('cmpl', body.model);
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
      // one prompt refused (the queue full, a prompt too long) fails the request: the others stop, so no generation
      // goes on for an answer nobody will receive
      const orAbort = <T>(p: Promise<T>) =>
        p.catch((err: unknown) => {
          controller.abort();
          throw err;
        });
      if (!body.stream) {
        const results = await Promise.all(requests.map((r) => orAbort(engine.generate(r, { signal: controller.signal, onRouted: (to) => setRoutedHeader(res, to) }))));
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
        const routed = results.flatMap((r) => (r.routedTo ? [routedField(r.routedTo)] : []));
        return {
          ...head,
          object: 'text_completion',
          choices,
          usage: usage(total),
          // several prompts may go to several members: the first names the header, all are listed per prompt
          ...(routed.length > 0 ? { loraforge: { ...routed[0]!, ...(routed.length > 1 ? { per_prompt: routed } : {}) } } : {}),
        };
      }
      const includeUsage = body.stream_options?.include_usage === true;
      const stream = new ChunkStream(res);
      const chunk = (choices: unknown[]) => ({
        ...head,
        object: 'text_completion',
        choices,
        ...(includeUsage ? { usage: null } : {}),
      });
      const all = Promise.all(
        requests.map((r, p) => {
          if (body.echo) for (let j = 0; j < n; j++) stream.send(chunk([{ index: p * n + j, text: echoText[p], logprobs: null, finish_reason: null }]));
          return orAbort(
            engine.generate(r, {
              signal: controller.signal,
              onRouted: (to) => setRoutedHeader(res, to),
              onDelta: (d) => {
                if (d.text === '' && !d.logprob) return;
                const index = p * n + d.index;
                stream.send(chunk([{ index, text: d.text, logprobs: d.logprob ? logprobsFor(index, d.logprob) : null, finish_reason: null }]));
              },
            }),
          );
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

}
