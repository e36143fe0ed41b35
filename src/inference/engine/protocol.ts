// Messages between the engine front (main thread) and its worker thread.
import { LoraforgeError, RateLimitedError, type ErrorCode } from '../../errors.js';
import type { CoreOptions } from './core.js';
import type { SessionSettings } from './ort-runner.js';
import type { EngineStats, FinishEvent, GroupRequest, ScoreJobRequest, ScoreJobResult, SerializedError, TokenEvent } from './types.js';

export interface WorkerInit {
  modelDir: string;
  session: SessionSettings;
  core: CoreOptions;
  scoring: ScoringSettings;
}

/** Bounds of one scoring pass (see scorer.ts). */
export interface ScoringSettings {
  maxBatch: number;
  /** rows × padded length */
  maxTokens: number;
  /** memory for the score graph's internal [tokens, vocab] logits; lowers maxTokens for large vocabularies */
  logitsBudgetBytes: number;
}

export type ToWorker =
  | { type: 'submit'; request: GroupRequest }
  | { type: 'score'; job: ScoreJobRequest }
  | { type: 'cancel'; id: string }
  | { type: 'stats'; call: number }
  | { type: 'shutdown' };

export interface ReadyInfo {
  provider: string;
  threads: number;
  fallbackReason: string | null;
}

export type FromWorker =
  | { type: 'ready'; info: ReadyInfo }
  | { type: 'tokens'; events: TokenEvent[] }
  | { type: 'finished'; event: FinishEvent }
  | { type: 'scored'; result: ScoreJobResult }
  | { type: 'failed'; id: string; error: SerializedError }
  | { type: 'stats'; call: number; stats: EngineStats }
  | { type: 'fatal'; error: SerializedError }
  | { type: 'closed' };

const CODES = new Set<string>([
  'invalid_input',
  'invalid_file',
  'unsupported',
  'not_found',
  'conflict',
  'too_large',
  'unauthorized',
  'forbidden',
  'rate_limited',
  'unavailable',
  'cancelled',
]);

export function serializeError(err: unknown): SerializedError {
  if (err instanceof LoraforgeError) {
    const out: SerializedError = { name: err.name, code: err.code, message: err.message };
    if (err instanceof RateLimitedError) out.retryAfterSeconds = err.retryAfterSeconds;
    return out;
  }
  if (err instanceof Error) return { name: err.name, code: null, message: err.stack ?? err.message };
  return { name: 'Error', code: null, message: String(err) };
}

/** The error again on this side of the thread boundary: a LoraforgeError keeps its kind (and so its status). */
export function deserializeError(e: SerializedError): Error {
  if (e.code && CODES.has(e.code)) {
    if (e.code === 'rate_limited') return new RateLimitedError(e.message, e.retryAfterSeconds ?? 1);
    const err = new LoraforgeError(e.code as ErrorCode, e.message);
    err.name = e.name;
    return err;
  }
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}
