// Models, completions, chat (streaming) and compare: the OpenAI-compatible part of the API. Any OpenAI client works
// against it too; this one speaks loraforge's error kinds and needs no extra dependency.
import { errorFromResponse } from './errors.js';
import type { HttpClient } from './http.js';
import { readSseMessages } from './sse.js';

export interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  root: string;
  /** the base model for adapters; null for the base model */
  parent: string | null;
  /** routers only */
  loraforge?: { router: true; members: string[] };
}

export interface SamplingBody {
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  repetition_penalty?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
  seed?: number;
  stop?: string | string[];
}

export interface ChatMessageBody {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatBody extends SamplingBody {
  model: string;
  messages: ChatMessageBody[];
  n?: number;
  logprobs?: boolean;
  top_logprobs?: number;
  /** add prompt_token_ids and token_ids to each choice (vLLM extension) */
  return_token_ids?: boolean;
}

export interface CompletionBody extends SamplingBody {
  model: string;
  prompt: string | number[];
  n?: number;
  logprobs?: number;
  echo?: boolean;
  /** add prompt_token_ids and token_ids to each choice (vLLM extension) */
  return_token_ids?: boolean;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: { role: 'assistant'; content: string };
    logprobs: { content: ChatTokenLogprob[] } | null;
    finish_reason: 'stop' | 'length';
    prompt_token_ids?: number[];
    token_ids?: number[];
  }>;
  usage: Usage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: 'assistant'; content?: string };
    logprobs: { content: ChatTokenLogprob[] } | null;
    finish_reason: 'stop' | 'length' | null;
  }>;
  usage?: Usage | null;
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  text_offset: number[];
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    text: string;
    logprobs: CompletionLogprobs | null;
    finish_reason: 'stop' | 'length' | null;
    prompt_token_ids?: number[];
    token_ids?: number[];
  }>;
  usage?: Usage | null;
}

export interface CompareBody extends SamplingBody {
  /** base model id and/or adapter names */
  models: string[];
  prompt?: string;
  messages?: ChatMessageBody[];
}

export interface CompareResponse {
  id: string;
  object: 'compare';
  created: number;
  seed: number;
  prompt_tokens: number;
  answers: Array<{ model: string; text: string; finish_reason: 'stop' | 'length'; completion_tokens: number; routed_to?: string }>;
  usage: Usage;
}

/** Reads an OpenAI-style stream: `data: {json}` frames until `data: [DONE]`; an `{error}` frame throws. */
async function* readChunks<T>(response: Response): AsyncGenerator<T> {
  for await (const { data } of readSseMessages(response)) {
    if (data === '[DONE]') return;
    const parsed = JSON.parse(data) as { error?: unknown };
    if (parsed.error) throw errorFromResponse(500, parsed, null);
    yield parsed as Awaited<T>;
  }
}

export class InferenceClient {
  constructor(private readonly http: HttpClient) {}

  async models(): Promise<ModelEntry[]> {
    const list = await this.http.json<{ data: ModelEntry[] }>('GET', '/v1/models');
    return list.data;
  }

  chat(body: ChatBody, options: { signal?: AbortSignal } = {}): Promise<ChatCompletion> {
    return this.http.json('POST', '/v1/chat/completions', { json: { ...body, stream: false }, signal: options.signal, noTimeout: true });
  }

  /**
   * Streams a chat answer chunk by chunk; the last chunk before the end carries the usage. When `body.model` is a
   * router, `onRouted` gets the member that answers (the X-Loraforge-Routed-To header) before the first chunk.
   */
  async *chatStream(body: ChatBody, options: { signal?: AbortSignal; onRouted?: (model: string) => void } = {}): AsyncGenerator<ChatCompletionChunk> {
    const response = await this.http.send('POST', '/v1/chat/completions', {
      json: { ...body, stream: true, stream_options: { include_usage: true } },
      headers: { accept: 'text/event-stream' },
      signal: options.signal,
      noTimeout: true,
    });
    const routed = response.headers.get('x-loraforge-routed-to');
    if (routed) options.onRouted?.(routed);
    yield* readChunks<ChatCompletionChunk>(response);
  }

  completion(body: CompletionBody, options: { signal?: AbortSignal } = {}): Promise<Completion> {
    return this.http.json('POST', '/v1/completions', { json: { ...body, stream: false }, signal: options.signal, noTimeout: true });
  }

  async *completionStream(body: CompletionBody, options: { signal?: AbortSignal } = {}): AsyncGenerator<Completion> {
    const response = await this.http.send('POST', '/v1/completions', {
      json: { ...body, stream: true, stream_options: { include_usage: true } },
      headers: { accept: 'text/event-stream' },
      signal: options.signal,
      noTimeout: true,
    });
    yield* readChunks<Completion>(response);
  }

  /** One prompt answered by several models in one batch, with the same settings and seed. */
  compare(body: CompareBody, options: { signal?: AbortSignal } = {}): Promise<CompareResponse> {
    return this.http.json('POST', '/v1/compare', { json: body, signal: options.signal, noTimeout: true });
  }
}
