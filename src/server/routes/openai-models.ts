// GET /v1/models and /v1/models/:model: the base model, every adapter and merge, and every router (with its members).
import { LoraforgeError } from '../../errors.js';
import type { InferenceEngine, ServedModelInfo } from '../../inference/engine/index.js';
import type { ApiRouter } from '../openapi.js';
import { ModelListSchema } from './openai-schemas.js';

function modelObject(m: ServedModelInfo) {
  return {
    id: m.id,
    object: 'model' as const,
    created: m.created,
    owned_by: 'loraforge',
    root: m.parent ?? m.id,
    parent: m.parent,
    ...(m.members ? { loraforge: { router: true, members: m.members } } : {}),
  };
}

export function modelsEndpoints(api: ApiRouter, engine: InferenceEngine): void {
  api.get(
    '/v1/models',
    {
      summary: 'List the models that can be asked for: the base model, every adapter and merge, and every router (parent = the base model)',
      tags: ['inference'],
      responses: { 200: { description: 'the models', schema: ModelListSchema } },
    },
    async () => ({
      object: 'list' as const,
      data: (await engine.models()).map(modelObject),
    }),
  );

  api.get(
    '/v1/models/:model',
    { summary: 'One model', tags: ['inference'], responses: { 200: { description: 'the model' } } },
    async (_input, req) => {
      const id = String(req.params.model);
      const found = (await engine.models()).find((m) => m.id === id);
      if (!found) throw new LoraforgeError('not_found', `model '${id}' does not exist: GET /v1/models lists the models`);
      return modelObject(found);
    },
  );
}
