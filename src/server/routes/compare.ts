// POST /v1/compare: one prompt, several models, every answer generated in the same batch with the same sampling
// settings and seed, so the answers differ only by the model (the building block of the arena's battles).
import { randomUUID } from 'node:crypto';
import type { Router } from 'express';
import { InvalidInputError } from '../../errors.js';
import type { InferenceEngine } from '../../inference/engine/index.js';
import type { RouteDeps } from '../app.js';
import { ApiRouter } from '../openapi.js';
import { CompareRequestSchema, CompareResponseSchema, type CompareResponse } from './openai-schemas.js';
import { chatMessages, now, samplingSettings } from './openai-common.js';

export function compareRoutes(deps: RouteDeps & { engine: InferenceEngine }): Router {
  const { engine } = deps;
  const api = new ApiRouter(deps.openapi);
  api.post(
    '/v1/compare',
    {
      summary: 'Answer one prompt with several models in one batch, with the same settings and seed',
      tags: ['inference'],
      request: { body: CompareRequestSchema },
      responses: { 200: { description: 'one answer per model, in the order asked', schema: CompareResponseSchema } },
    },
    async ({ body }, req, res): Promise<CompareResponse | undefined> => {
      if ((body.prompt === undefined) === (body.messages === undefined)) {
        throw new InvalidInputError('give exactly one of prompt (plain text) or messages (a chat)');
      }
      const controller = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) controller.abort();
      });
      void req;
      const result = await engine.compare(
        {
          ...samplingSettings(body),
          models: body.models,
          input: body.messages ? { kind: 'chat', messages: chatMessages(body.messages) } : { kind: 'text', text: body.prompt! },
          maxTokens: body.max_tokens ?? undefined,
        },
        { signal: controller.signal },
      );
      return {
        id: `cmp-${randomUUID()}`,
        object: 'compare',
        created: now(),
        seed: result.seed,
        prompt_tokens: result.promptIds.length,
        answers: result.answers.map((a) => ({
          model: a.model,
          text: a.text,
          finish_reason: a.finishReason,
          completion_tokens: a.completionTokens,
          ...(a.routedTo ? { routed_to: a.routedTo.model } : {}),
        })),
        usage: {
          prompt_tokens: result.usage.promptTokens,
          completion_tokens: result.usage.completionTokens,
          total_tokens: result.usage.totalTokens,
        },
      };
    },
  );
  return api.router;
}
