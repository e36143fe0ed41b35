// The OpenAI-compatible API, as vLLM and LoRAX serve it: `model` picks the base model, any registered adapter
// (merges included) or a router, answered from one loaded graph with no reload. Streams are SSE in OpenAI's chunk
// format ending with `data: [DONE]`; errors carry OpenAI's {message, type, param, code} so the stock `openai`
// client surfaces them (plus our `details`). One file per endpoint; what they share is in openai-common.ts.
import type { Router } from 'express';
import type { InferenceEngine } from '../../inference/engine/index.js';
import type { RouteDeps } from '../app.js';
import { ApiRouter } from '../openapi.js';
import { chatCompletionsEndpoint } from './openai-chat.js';
import { openaiErrorHandler } from './openai-common.js';
import { completionsEndpoint } from './openai-completions.js';
import { modelsEndpoints } from './openai-models.js';

export { chatMessages, samplingSettings } from './openai-common.js';

export function openaiRoutes(deps: RouteDeps & { engine: InferenceEngine }): Router {
  const api = new ApiRouter(deps.openapi);
  modelsEndpoints(api, deps.engine);
  chatCompletionsEndpoint(api, deps.engine);
  completionsEndpoint(api, deps.engine);
  api.router.use(openaiErrorHandler(deps));
  return api.router;
}
