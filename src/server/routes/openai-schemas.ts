// Request bodies of the OpenAI-compatible endpoints, as OpenAI defines them, plus vLLM's common extras (top_k,
// repetition_penalty, ignore_eos). Unknown fields are ignored, as OpenAI-compatible servers do.
import { z } from 'zod';

const stop = z
  .union([z.string(), z.array(z.string()).max(16)])
  .nullish()
  .meta({ description: 'up to 16 sequences where generation stops; the stop sequence is not returned' });

const sampling = {
  model: z.string().min(1).meta({ description: 'the base model id or a registered adapter name (GET /v1/models)' }),
  temperature: z.number().min(0).max(2).nullish().meta({ description: 'default 1; 0 = greedy' }),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(-1).nullish().meta({ description: 'vLLM extension; 0 or -1 = off' }),
  repetition_penalty: z.number().gt(0).max(10).nullish().meta({ description: 'vLLM extension (HF semantics); 1 = off' }),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z.record(z.string(), z.number().min(-100).max(100)).nullish(),
  seed: z.number().int().nullish().meta({ description: 'same seed, same settings, same model: same tokens' }),
  stop,
  n: z.number().int().min(1).max(16).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  ignore_eos: z.boolean().nullish().meta({ description: 'vLLM extension: keep generating past end-of-sequence tokens' }),
  user: z.string().nullish(),
  return_token_ids: z.boolean().nullish().meta({ description: 'vLLM extension: add prompt_token_ids and token_ids to each choice' }),
};

const textPart = z.object({ type: z.literal('text'), text: z.string() });

export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(z.union([textPart, z.object({ type: z.string() }).loose()]))]).nullish(),
  name: z.string().nullish(),
});

export const ChatCompletionRequestSchema = z
  .object({
    ...sampling,
    messages: z.array(ChatMessageSchema).min(1),
    max_tokens: z.number().int().min(1).nullish().meta({ description: 'default: what is left of the context' }),
    max_completion_tokens: z.number().int().min(1).nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(20).nullish(),
    tools: z.array(z.unknown()).nullish().meta({ description: 'not supported: refused when non-empty' }),
    response_format: z.object({ type: z.string() }).loose().nullish().meta({ description: 'only {"type": "text"}' }),
  })
  .meta({ id: 'ChatCompletionRequest' });

export const CompletionRequestSchema = z
  .object({
    ...sampling,
    prompt: z.union([
      z.string(),
      z.array(z.string()).min(1),
      z.array(z.number().int().min(0)).min(1),
      z.array(z.array(z.number().int().min(0)).min(1)).min(1),
    ]),
    max_tokens: z.number().int().min(1).nullish().meta({ description: 'default 16, as OpenAI' }),
    logprobs: z.number().int().min(0).max(20).nullish(),
    echo: z.boolean().nullish(),
    best_of: z.number().int().min(1).nullish(),
    suffix: z.string().nullish(),
  })
  .meta({ id: 'CompletionRequest' });

export const CompareRequestSchema = z
  .object({
    models: z.array(z.string().min(1)).min(1).meta({ description: 'base model id and/or adapter names, answered in one batch' }),
    prompt: z.string().optional().meta({ description: 'a plain completion prompt (give this or messages)' }),
    messages: z.array(ChatMessageSchema).min(1).optional().meta({ description: 'a chat, rendered with the chat template' }),
    max_tokens: z.number().int().min(1).nullish(),
    temperature: sampling.temperature,
    top_p: sampling.top_p,
    top_k: sampling.top_k,
    repetition_penalty: sampling.repetition_penalty,
    frequency_penalty: sampling.frequency_penalty,
    presence_penalty: sampling.presence_penalty,
    seed: sampling.seed,
    stop,
  })
  .meta({ id: 'CompareRequest' });

export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;
export type CompareRequestBody = z.infer<typeof CompareRequestSchema>;

export const ModelSchema = z.object({
  id: z.string(),
  object: z.literal('model'),
  created: z.number(),
  owned_by: z.string(),
  root: z.string(),
  parent: z.string().nullable(),
  loraforge: z
    .object({ router: z.literal(true), members: z.array(z.string()) })
    .optional()
    .meta({ description: 'routers only (docs/ROUTERS.md): a request to it is answered by one of its members' }),
});

export const ModelListSchema = z.object({ object: z.literal('list'), data: z.array(ModelSchema) }).meta({ id: 'ModelList' });

export const UsageSchema = z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() });

export const CompareResponseSchema = z
  .object({
    id: z.string(),
    object: z.literal('compare'),
    created: z.number(),
    seed: z.number(),
    prompt_tokens: z.number(),
    answers: z.array(
      z.object({
        model: z.string(),
        text: z.string(),
        finish_reason: z.enum(['stop', 'length']),
        completion_tokens: z.number(),
        routed_to: z.string().optional().meta({ description: "when model is a router: the member that answered, its fallback, or two members joined by '+' (a blend)" }),
      }),
    ),
    usage: UsageSchema,
  })
  .meta({ id: 'CompareResponse' });

export type CompareResponse = z.infer<typeof CompareResponseSchema>;
