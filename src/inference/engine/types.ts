// What travels between the engine's front (main thread) and its core (worker thread): plain, structured-clone
// friendly data.
import type { SamplingParams, TokenLogprob } from './sampling.js';

/** An adapter as the core loads it: `key` identifies the content (the registry's sha256, or a path). */
export interface AdapterRef {
  key: string;
  /** PEFT adapter directory */
  dir: string;
  /** the name the user asked for, for messages */
  label: string;
  /** a router's blend (docs/ROUTERS.md): the sum of these adapters' updates, each times `weight`; `dir` is unused */
  blend?: { parts: AdapterRef[]; weight: number };
}

export interface RowRequest {
  promptIds: number[];
  adapter: AdapterRef | null;
  /** random stream of this row: the choice index for `n` > 1; rows with equal seed and stream draw alike */
  stream: number;
}

/**
 * Rows admitted together and prefilled in one batch: the `n` choices of a request, or the models of a compare.
 * They share sampling settings and the seed.
 */
export interface GroupRequest {
  id: string;
  rows: RowRequest[];
  sampling: SamplingParams;
  seed: number;
  maxTokens: number;
  stop: string[];
  /** alternatives to report per token (0 = only the chosen token's logprob); null = no logprobs */
  logprobs: number | null;
  ignoreEos: boolean;
  /** routing pass: also report per-prompt features of each row (see FeatureRequest) in its finish event */
  features?: FeatureRequest;
}

/**
 * Per-prompt features a routing pass reads from a prefill it runs anyway, with no extra graph output: the mean over
 * the prompt's positions of the value rows the graph hands back for the KV cache (V = W_v·RMSNorm(h), a linear view
 * of the hidden state entering each layer), and optionally the log-probs of the next token after the prompt.
 */
export interface FeatureRequest {
  /** layers whose mean value row is reported, in this order */
  layers: number[];
  /** append log-softmax of the logits at the prompt's last position */
  logprobs: boolean;
}

/** Teacher-forced scoring: each row's continuation (ids from targetStart on) scored given what precedes it. */
export interface ScoreJobRequest {
  id: string;
  rows: Array<{ ids: number[]; targetStart: number; adapter: AdapterRef | null }>;
}

export interface ScoreJobResult {
  id: string;
  /** per row: Σ log p of the scored tokens (nats) and their count */
  rows: Array<{ logprobSum: number; tokens: number }>;
  /** forward passes run, and seconds spent inside ONNX Runtime for them */
  passes: number;
  runSeconds: number;
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface TokenEvent {
  id: string;
  /** row within the group */
  index: number;
  token: number;
  /** text this token completes ('' while held back by an unfinished character or a possible stop string) */
  text: string;
  logprob?: number;
  top?: TokenLogprob[];
}

export interface FinishEvent {
  id: string;
  index: number;
  reason: FinishReason;
  /** text held back until the end (a partial stop string that never completed) */
  text: string;
  promptTokens: number;
  completionTokens: number;
  /** when the request asked for features: the layers' mean value rows, then the log-probs if asked, concatenated */
  features?: Float32Array;
}

export interface EngineStats {
  activeRows: number;
  waitingGroups: number;
  kvCapacity: number;
  kvBytes: number;
  poolRank: number;
  loadedAdapters: string[];
  steps: number;
  prefillTokens: number;
  decodeTokens: number;
  /** tokens run through the score graph (padding excluded) */
  scoreTokens: number;
  /** seconds inside ONNX Runtime, and of whole generate steps (runs plus feeds, KV scatter, sampling, detokenizing) */
  runSeconds: number;
  stepSeconds: number;
}

export interface SerializedError {
  name: string;
  code: string | null;
  message: string;
  retryAfterSeconds?: number;
}
