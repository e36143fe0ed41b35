// InferenceEngine: the main-thread face of the engine. It resolves model names (the base model or a registered
// adapter), renders and encodes prompts, bounds the queue, and relays requests to the worker thread that runs the
// model (worker.ts), turning its token events into text deltas, logprobs and results.
import { randomUUID } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import {
  CancelledError,
  InvalidInputError,
  LoraforgeError,
  NotFoundError,
  RateLimitedError,
  UnavailableError,
  UnsupportedError,
} from '../../errors.js';
import { sameBaseModel } from '../../formats/peft.js';
import type { Logger } from '../../util/log.js';
import { siblingModule, startWorker } from '../../util/worker.js';
import { OffThreadTokenizer } from '../off-thread-tokenizer.js';
import { ModelTokenizer, type ChatMessage } from '../tokenizer.js';
import type { CoreOptions } from './core.js';
import type { GraphSpec } from './graph-spec.js';
import type { SessionSettings } from './ort-runner.js';
import { deserializeError, type FromWorker, type ReadyInfo, type ScoringSettings, type ToWorker, type WorkerInit } from './protocol.js';
import { randomSeed } from './rng.js';
import type { SamplingParams } from './sampling.js';
import { loadServedModel } from './served-model.js';
import { TokenTexts } from './token-bytes.js';
import { checkScoreRow } from './scorer.js';
import { chooseMember, featureRequest, ROUTING_PASSES_AT_ONCE, type Centroids, type ModelRoutingRule, type RoutingRule } from './routing.js';
import { projectText, textFeature } from './text-features.js';
import type { AdapterRef, EngineStats, FeatureRequest, FinishReason, GroupRequest, RowRequest, ScoreJobRequest, ScoreJobResult, TokenEvent } from './types.js';

export type { ChatMessage, EngineStats, GraphSpec, RoutingRule };

/** A router as the engine serves it (docs/ROUTERS.md): members are model names, the fallback one too (or null). */
export interface RouterSpec {
  name: string;
  rule: RoutingRule;
  margin: number;
  members: Array<{ model: string; category?: string }>;
  fallback: string | null;
  /** without a fallback: when no member is clearly nearest, the two nearest answer together, each at this weight */
  blend?: number | null;
  fitted: Centroids;
  /** seconds since the epoch */
  created?: number;
}

/** Where router names come from (the registry). */
export interface RouterResolver {
  resolve(name: string): Promise<RouterSpec | null>;
  list(): Promise<RouterSpec[]>;
}

/** Who answered a request to a router, and how clearly. */
export interface RoutedTo {
  router: string;
  /** the model that generated: the chosen member, the fallback, or a blend's members joined by '+' */
  model: string;
  /** the member nearest to the prompt (even when the margin sent it to the fallback) */
  nearest: string;
  fallback: boolean;
  /** the two nearest members answered together (the sum of their updates, each times `weight`), nearest first */
  blend?: { members: string[]; weight: number };
  /** best cosine similarity minus the runner-up's */
  lead: number;
}

/** Where adapter names come from (the registry, or a directory for the CLI). */
export interface AdapterResolver {
  resolve(name: string): Promise<ResolvedAdapter | null>;
  list(): Promise<ResolvedAdapter[]>;
}

export interface ResolvedAdapter {
  name: string;
  /** PEFT adapter directory */
  dir: string;
  /** identifies the content: a re-registered name with new weights is loaded afresh */
  key: string;
  baseModel: string | null;
  rank: number | null;
  /** seconds since the epoch */
  created?: number;
}

export interface EngineSettings extends SessionSettings, CoreOptions {
  /** requests (rows) waiting beyond the running batch before new ones get 429 */
  maxQueue: number;
  /** bounds of one scoring pass (default: 64 rows, 8192 tokens, 256 MiB of logits) */
  scoring?: Partial<ScoringSettings>;
}

export const DEFAULT_SCORING: ScoringSettings = { maxBatch: 64, maxTokens: 8192, logitsBudgetBytes: 256 * 1024 ** 2 };

export interface StartOptions extends EngineSettings {
  /** a built model directory (model.onnx + manifest.json + tokenizer files) */
  modelDir: string;
  adapters: AdapterResolver;
  log: Logger;
  /** the id the base model is served as; default: the manifest's base model name */
  modelId?: string;
  /** routers served by name (none when absent) */
  routers?: RouterResolver;
}

export type PromptInput = { kind: 'text'; text: string } | { kind: 'chat'; messages: ChatMessage[] } | { kind: 'ids'; ids: number[] };

export interface SamplingSettings {
  /** default: what is left of the context */
  maxTokens?: number;
  /** default 1; 0 = greedy */
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** token id → bias in [-100, 100] */
  logitBias?: Record<string, number>;
  /** default: random (reported in the result) */
  seed?: number;
  stop?: string[];
  /** alternatives per token to report (0 = the chosen token only); null/undefined = no logprobs */
  logprobs?: number | null;
  ignoreEos?: boolean;
}

export interface GenerateRequest extends SamplingSettings {
  /** the base model's id or an adapter's name */
  model: string;
  input: PromptInput;
  /** choices to generate (each its own random stream) */
  n?: number;
}

export interface CompareRequest extends SamplingSettings {
  /** base model id and/or adapter names; all answered in one batch with the same settings and seed */
  models: string[];
  input: PromptInput;
}

export interface TokenAlternative {
  token: number;
  text: string;
  bytes: number[];
  logprob: number;
}

export interface TokenLogprob extends TokenAlternative {
  top: TokenAlternative[];
}

/** A piece of one choice's text, with the token it came from (none for text released at the end). */
export interface Delta {
  index: number;
  text: string;
  token: number | null;
  logprob: TokenLogprob | null;
}

export interface GenerateHooks {
  onDelta?: (delta: Delta) => void;
  /** aborting frees the request's rows at the next step; the promise then rejects with CancelledError */
  signal?: AbortSignal;
  /** a request to a router: called once the member is chosen, before its first token */
  onRouted?: (routed: RoutedTo) => void;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface Choice {
  index: number;
  text: string;
  tokenIds: number[];
  logprobs: TokenLogprob[] | null;
  finishReason: Exclude<FinishReason, 'cancelled'>;
  completionTokens: number;
}

export interface GenerateResult {
  id: string;
  model: string;
  seed: number;
  promptIds: number[];
  choices: Choice[];
  usage: Usage;
  /** set when `model` is a router */
  routedTo?: RoutedTo;
}

export interface CompareAnswer extends Choice {
  model: string;
  routedTo?: RoutedTo;
}

export interface CompareResult {
  id: string;
  seed: number;
  promptIds: number[];
  answers: CompareAnswer[];
  usage: Usage;
}

export interface ScoreRequest {
  rows: Array<{
    /** the base model's id or an adapter's name */
    model: string;
    /** the context: chat messages (rendered with the template and the assistant header), text (with BOS) or ids */
    input: PromptInput;
    /** the text scored after it, encoded on its own without special tokens */
    continuation: string;
  }>;
}

export interface ScoreResult {
  rows: Array<{ logprobSum: number; tokens: number; promptTokens: number; routedTo?: RoutedTo }>;
  /** forward passes of the score graph, and seconds spent inside ONNX Runtime for them */
  passes: number;
  runSeconds: number;
}

export interface ServedModelInfo {
  id: string;
  /** the base model for adapters; null for the base model */
  parent: string | null;
  created: number;
  /** routers only: their members */
  members?: string[];
}

interface Pending {
  request: GroupRequest;
  choices: Choice[];
  open: number;
  onDelta?: (delta: Delta) => void;
  /** routing passes: each row's features from its finish event */
  features: Array<Float32Array | undefined>;
  resolve: (choices: Choice[]) => void;
  reject: (err: Error) => void;
  started: number;
}

const MAX_ALTERNATIVES = 20;
/** a few suites' worth of scored rows */
const SCORE_ENCODINGS_KEPT = 4096;
/** characters of a prompt whose text-routing feature is computed on the main thread: at most about a millisecond */
const MAIN_THREAD_TEXT_FEATURE = 4096;

export class InferenceEngine {
  readonly modelId: string;
  readonly contextLength: number;
  private worker!: Worker;
  private readonly pending = new Map<string, Pending>();
  private readonly statsCalls = new Map<number, (s: EngineStats) => void>();
  private readonly scoring = new Map<string, { resolve: (r: ScoreJobResult) => void; reject: (err: Error) => void }>();
  /** where requests' prompts are encoded; set by `start` once its thread is up (absent only if that failed) */
  private encoder!: OffThreadTokenizer;
  /** encodings of scored rows, so an eval's items are tokenized once for all its models and sweep points */
  private readonly scoreEncodings = new Map<string, { ids: number[]; targetStart: number }>();
  private nextCall = 0;
  private inFlightRows = 0;
  /** moving average of request seconds, for the 429 retry hint */
  private avgSeconds = 5;
  private closing = false;
  private restarts: number[] = [];
  private readonly texts: TokenTexts;
  private readonly created = Math.floor(Date.now() / 1000);
  /** features of routing passes, by their choice (read once by routeFeatures) */
  private readonly rowFeatures = new WeakMap<Choice, Float32Array>();
  info: ReadyInfo | null = null;

  private constructor(
    private readonly options: StartOptions,
    readonly spec: GraphSpec,
    readonly tokenizer: ModelTokenizer,
  ) {
    this.modelId = options.modelId ?? spec.baseModel;
    this.contextLength = spec.maxPositions;
    this.texts = new TokenTexts(tokenizer);
  }

  static async start(options: StartOptions): Promise<InferenceEngine> {
    // the tokenizer thread starts while the model is read and its worker starts (ONNX Runtime's session, the long part)
    const starting = OffThreadTokenizer.start(options.modelDir);
    let engine: InferenceEngine;
    try {
      const [model, tokenizer] = await Promise.all([loadServedModel(options.modelDir), ModelTokenizer.load(options.modelDir)]);
      engine = new InferenceEngine(options, model.spec, tokenizer);
    } catch (err) {
      await (await starting.catch(() => null))?.close();
      throw err;
    }
    const [spawned, encoder] = await Promise.allSettled([engine.spawn(), starting]);
    if (encoder.status === 'fulfilled') engine.encoder = encoder.value;
    if (spawned.status === 'rejected' || encoder.status === 'rejected') {
      if (spawned.status === 'fulfilled') await engine.close();
      else await engine.encoder?.close();
      throw spawned.status === 'rejected' ? spawned.reason : (encoder as PromiseRejectedResult).reason;
    }
    return engine;
  }

  private spawn(): Promise<void> {
    const { options } = this;
    const init: WorkerInit = {
      modelDir: options.modelDir,
      session: { threads: options.threads, executionProvider: options.executionProvider, spinning: options.spinning },
      core: {
        maxBatch: options.maxBatch,
        prefillChunk: options.prefillChunk,
        prefillTokenBudget: options.prefillTokenBudget,
        kvChunk: options.kvChunk,
      },
      scoring: { ...DEFAULT_SCORING, ...options.scoring },
    };
    const worker = startWorker(siblingModule(import.meta.url, 'worker'), { workerData: init });
    this.worker = worker;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: FromWorker) => {
        if (message.type === 'ready') {
          ready = true;
          this.info = message.info;
          const log = options.log;
          if (message.info.fallbackReason) {
            log.warn({ reason: message.info.fallbackReason }, 'CUDA execution provider unavailable: running on CPU');
          }
          log.info({ model: this.modelId, provider: message.info.provider, threads: message.info.threads }, 'inference engine ready');
          resolve();
        } else if (message.type === 'fatal') {
          const err = deserializeError(message.error);
          if (!ready) reject(err);
          else options.log.error({ err }, 'inference engine failed');
        } else {
          this.onMessage(message);
        }
      });
      worker.on('error', (err) => {
        if (!ready) reject(err);
        else options.log.error({ err }, 'inference worker crashed');
      });
      worker.on('exit', (code) => {
        if (!ready) reject(new UnavailableError(`the inference worker exited (code ${code}) before it was ready`));
        else if (!this.closing) this.onWorkerLost(code);
      });
    });
  }

  /** The worker died while serving: fail what it held, and start a new one (at most 3 times a minute). */
  private onWorkerLost(code: number): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      this.inFlightRows -= p.request.rows.length;
      p.reject(new UnavailableError(`the inference worker stopped (exit code ${code}); retry the request`));
    }
    for (const [id, p] of this.scoring) {
      this.scoring.delete(id);
      p.reject(new UnavailableError(`the inference worker stopped (exit code ${code}); retry the request`));
    }
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < 60_000);
    if (this.restarts.length >= 3) {
      this.options.log.error('inference worker keeps failing: not restarting it');
      return;
    }
    this.restarts.push(now);
    this.spawn().catch((err: unknown) => this.options.log.error({ err }, 'could not restart the inference worker'));
  }

  private onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'tokens':
        for (const event of message.events) this.onToken(event);
        break;
      case 'finished': {
        const { event } = message;
        const p = this.pending.get(event.id);
        if (!p) return;
        const choice = p.choices[event.index]!;
        if (event.text) {
          choice.text += event.text;
          p.onDelta?.({ index: event.index, text: event.text, token: null, logprob: null });
        }
        choice.completionTokens = event.completionTokens;
        if (event.features) p.features[event.index] = event.features;
        if (event.reason === 'cancelled') {
          this.settle(event.id, new CancelledError('the request was cancelled'));
          return;
        }
        choice.finishReason = event.reason;
        if (--p.open === 0) this.settle(event.id, null);
        break;
      }
      case 'failed': {
        const scoring = this.scoring.get(message.id);
        this.scoring.delete(message.id);
        if (scoring) scoring.reject(deserializeError(message.error));
        else this.settle(message.id, deserializeError(message.error));
        break;
      }
      case 'scored': {
        const scoring = this.scoring.get(message.result.id);
        this.scoring.delete(message.result.id);
        scoring?.resolve(message.result);
        break;
      }
      case 'stats': {
        const resolve = this.statsCalls.get(message.call);
        this.statsCalls.delete(message.call);
        resolve?.(message.stats);
        break;
      }
      default:
        break;
    }
  }

  private onToken(event: TokenEvent): void {
    const p = this.pending.get(event.id);
    if (!p) return;
    const choice = p.choices[event.index]!;
    choice.tokenIds.push(event.token);
    choice.text += event.text;
    let logprob: TokenLogprob | null = null;
    if (event.logprob !== undefined) {
      logprob = {
        token: event.token,
        ...this.texts.get(event.token),
        logprob: event.logprob,
        top: (event.top ?? []).map((t) => ({ token: t.token, ...this.texts.get(t.token), logprob: t.logprob })),
      };
      choice.logprobs!.push(logprob);
    }
    p.onDelta?.({ index: event.index, text: event.text, token: event.token, logprob });
  }

  private settle(id: string, err: Error | null): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.inFlightRows -= p.request.rows.length;
    const seconds = (Date.now() - p.started) / 1000;
    this.avgSeconds = 0.8 * this.avgSeconds + 0.2 * seconds;
    if (err) p.reject(err);
    else {
      p.choices.forEach((c, i) => {
        const f = p.features[i];
        if (f) this.rowFeatures.set(c, f);
      });
      p.resolve(p.choices);
    }
  }

  // ---- requests ----------------------------------------------------------------------------------------------

  /** The base model and every adapter that can be asked for by name. */
  async models(): Promise<ServedModelInfo[]> {
    const [adapters, routers] = await Promise.all([this.options.adapters.list(), this.options.routers?.list() ?? []]);
    return [
      { id: this.modelId, parent: null, created: this.created },
      ...adapters.map((a) => ({ id: a.name, parent: this.modelId, created: a.created ?? this.created })),
      ...routers.map((r) => ({ id: r.name, parent: this.modelId, created: r.created ?? this.created, members: r.members.map((m) => m.model) })),
    ];
  }

  async generate(request: GenerateRequest, hooks: GenerateHooks = {}): Promise<GenerateResult> {
    const n = request.n ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > this.options.maxBatch) {
      throw new InvalidInputError(`n must be an integer from 1 to ${this.options.maxBatch} (the engine's batch size)`);
    }
    // encoded first: a prompt too long for the context is refused before any routing work on it
    const promptIds = await this.encode(request.input);
    const routedTo = await this.routeModel(request.model, request.input, hooks);
    if (routedTo) hooks.onRouted?.(routedTo);
    const adapter = await this.resolveAnswering(request.model, routedTo);
    const rows: RowRequest[] = Array.from({ length: n }, (_, stream) => ({ promptIds, adapter, stream }));
    const { id, seed, choices } = await this.runGroup(rows, request, hooks);
    return { id, model: request.model, seed, promptIds, choices, usage: usage(promptIds.length, choices), ...(routedTo ? { routedTo } : {}) };
  }

  // ---- routers -----------------------------------------------------------------------------------------------

  /** The router of that name, or null (the base model and adapters are not routers). */
  async router(name: string): Promise<RouterSpec | null> {
    if (name === this.modelId || !this.options.routers) return null;
    return this.options.routers.resolve(name);
  }

  /**
   * The routing pass: one base-model prefill of the prompt through the same queue and batches as any request
   * (one greedy token is sampled and dropped), returning the features the rule reads (routing.ts).
   */
  async routeFeatures(input: PromptInput, rule: ModelRoutingRule, hooks: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    const promptIds = await this.encode(input);
    const features = featureRequest(rule, this.spec.layers);
    const { choices } = await this.runGroup([{ promptIds, adapter: null, stream: 0 }], { maxTokens: 1, temperature: 0, ignoreEos: true }, hooks, features);
    const out = this.rowFeatures.get(choices[0]!);
    if (!out) throw new UnavailableError('the routing pass returned no features; retry the request');
    return out;
  }

  /** Chooses a router's member for one prompt. */
  async route(router: RouterSpec, input: PromptInput, hooks: { signal?: AbortSignal } = {}): Promise<RoutedTo> {
    let feature: ArrayLike<number>;
    if (router.rule === 'text') {
      if (!router.fitted.dims) throw new InvalidInputError(`router '${router.name}' has no text buckets stored: recreate it`);
      const text = this.promptText(input);
      // a long prompt's n-grams in the tokenizer thread; a short one's here, where they cost less than the hop
      const sparse = text.length > MAIN_THREAD_TEXT_FEATURE ? await this.encoder.textFeature(text) : textFeature(text);
      feature = projectText(sparse, router.fitted.dims);
    } else {
      feature = await this.routeFeatures(input, router.rule, { signal: hooks.signal });
    }
    const choice = chooseMember(router.fitted, feature, router.margin);
    const nearest = router.members[choice.nearest]!.model;
    const routed = { router: router.name, model: nearest, nearest, fallback: false, lead: choice.lead };
    if (choice.member !== null) return routed;
    if (router.fallback !== null) return { ...routed, model: router.fallback, fallback: true };
    if (!router.blend || choice.runnerUp === null) return routed;
    const members = [nearest, router.members[choice.runnerUp]!.model];
    return { ...routed, model: members.join('+'), blend: { members, weight: router.blend } };
  }

  /** The routing decision when `model` names a router; null for any other model. */
  private async routeModel(model: string, input: PromptInput, hooks: { signal?: AbortSignal }): Promise<RoutedTo | null> {
    const router = await this.router(model);
    // only the signal: the routing pass's token is nobody's answer
    return router ? this.route(router, input, { signal: hooks.signal }) : null;
  }

  /** One prompt, several models, one batch: the same settings and seed for every answer (A/B battles). */
  async compare(request: CompareRequest, hooks: GenerateHooks = {}): Promise<CompareResult> {
    if (request.models.length < 1) throw new InvalidInputError('models must name at least one model');
    if (request.models.length > this.options.maxBatch) {
      throw new InvalidInputError(`at most ${this.options.maxBatch} models can be compared at once (the engine's batch size)`);
    }
    const promptIds = await this.encode(request.input);
    const routed = await Promise.all(request.models.map((m) => this.routeModel(m, request.input, hooks)));
    const adapters = await Promise.all(request.models.map((m, i) => this.resolveAnswering(m, routed[i]!)));
    // every row draws from stream 0 under the same seed: identical models give identical answers
    const rows: RowRequest[] = adapters.map((adapter) => ({ promptIds, adapter, stream: 0 }));
    const { id, seed, choices } = await this.runGroup(rows, request, hooks);
    return {
      id,
      seed,
      promptIds,
      answers: choices.map((c, i) => ({ ...c, model: request.models[i]!, ...(routed[i] ? { routedTo: routed[i] } : {}) })),
      usage: usage(promptIds.length * rows.length, choices),
    };
  }

  /**
   * Teacher-forced scoring: for each row, Σ log p of `continuation`'s tokens given `input` under `model`, by the
   * score graph in the worker, between generation steps. Rows on several models share passes. Used by evals.
   */
  async score(request: ScoreRequest, hooks: { signal?: AbortSignal } = {}): Promise<ScoreResult> {
    // encoded first: a row too long for the context is refused before any routing work on it
    const encodedRows = await Promise.all(
      request.rows.map(async (row, i) => {
        try {
          const encoded = await this.encodeScoreRow(row.input, row.continuation);
          checkScoreRow({ ...encoded, slot: 0 }, this.contextLength);
          return encoded;
        } catch (err) {
          if (!(err instanceof LoraforgeError) || err.code !== 'invalid_input') throw err;
          throw new InvalidInputError(`rows[${i}]: ${err.message}`);
        }
      }),
    );
    // rows on a router are scored on the member it routes their context to: each router is looked up once, and
    // its routing passes (one per distinct context) go ROUTING_PASSES_AT_ONCE at a time, inside the queue's bound
    const routers = new Map<string, RouterSpec | null>();
    for (const row of request.rows) if (!routers.has(row.model)) routers.set(row.model, await this.router(row.model));
    const routes = new Map<string, RoutedTo>();
    const contexts = request.rows.filter((row) => routers.get(row.model)).map((row) => ({ row, key: JSON.stringify([row.model, row.input]) }));
    const distinct = [...new Map(contexts.map((c) => [c.key, c.row])).entries()];
    for (let k = 0; k < distinct.length; k += ROUTING_PASSES_AT_ONCE) {
      const chunk = distinct.slice(k, k + ROUTING_PASSES_AT_ONCE);
      const chosen = await Promise.all(chunk.map(([, row]) => this.route(routers.get(row.model)!, row.input, { signal: hooks.signal })));
      chunk.forEach(([key], j) => routes.set(key, chosen[j]!));
    }
    const routedTo = request.rows.map((row) => routes.get(JSON.stringify([row.model, row.input])) ?? null);
    const modelOf = (i: number) => routedTo[i]?.model ?? request.rows[i]!.model;
    const refs = new Map<string, AdapterRef | null>();
    for (let i = 0; i < request.rows.length; i++) if (!refs.has(modelOf(i))) refs.set(modelOf(i), await this.resolveAnswering(request.rows[i]!.model, routedTo[i]!));
    const rows = encodedRows.map((encoded, i) => ({ ...encoded, adapter: refs.get(modelOf(i))! }));
    if (hooks.signal?.aborted) throw new CancelledError('the scoring request was cancelled');
    const job: ScoreJobRequest = { id: randomUUID(), rows };
    const done = new Promise<ScoreJobResult>((resolve, reject) => this.scoring.set(job.id, { resolve, reject }));
    const onAbort = () => this.post({ type: 'cancel', id: job.id });
    hooks.signal?.addEventListener('abort', onAbort, { once: true });
    this.post({ type: 'score', job });
    try {
      const result = await done;
      return {
        rows: result.rows.map((r, i) => ({ ...r, promptTokens: rows[i]!.targetStart, ...(routedTo[i] ? { routedTo: routedTo[i] } : {}) })),
        passes: result.passes,
        runSeconds: result.runSeconds,
      };
    } finally {
      hooks.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** In the tokenizer thread, as prompts are; kept for the evals that score the same items under many models. */
  private async encodeScoreRow(input: PromptInput, continuation: string): Promise<{ ids: number[]; targetStart: number }> {
    const key = JSON.stringify([input, continuation]);
    const cached = this.scoreEncodings.get(key);
    if (cached) {
      // refreshed: the map's order is least recently used first
      this.scoreEncodings.delete(key);
      this.scoreEncodings.set(key, cached);
      return cached;
    }
    if (input.kind === 'ids') this.checkedIds(input.ids);
    this.checkTurns(input);
    const encoded = await this.encoder.encodeForScoring(input, continuation, this.contextLength);
    this.scoreEncodings.set(key, encoded);
    if (this.scoreEncodings.size > SCORE_ENCODINGS_KEPT) this.scoreEncodings.delete(this.scoreEncodings.keys().next().value!);
    return encoded;
  }

  async stats(): Promise<EngineStats> {
    const call = this.nextCall++;
    return new Promise((resolve) => {
      this.statsCalls.set(call, resolve);
      this.post({ type: 'stats', call });
    });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.post({ type: 'shutdown' });
    const timer = setTimeout(() => void this.worker.terminate(), 10_000);
    await closed;
    clearTimeout(timer);
    for (const id of [...this.pending.keys()]) this.settle(id, new CancelledError('the engine was closed'));
    for (const [id, p] of this.scoring) {
      this.scoring.delete(id);
      p.reject(new CancelledError('the engine was closed'));
    }
    await this.encoder?.close();
  }

  /** What a prompt says, for the `text` routing rule: every message's content, a text, or token ids decoded. */
  promptText(input: PromptInput): string {
    if (input.kind === 'chat') return input.messages.map((m) => m.content).join('\n');
    if (input.kind === 'text') return input.text;
    return this.tokenizer.decode(this.checkedIds(input.ids));
  }

  /**
   * Token ids of a prompt (chat messages through the model's chat template, text with the tokenizer's specials),
   * encoded in the tokenizer thread: the main thread stays free for the other requests meanwhile.
   */
  private async encode(input: PromptInput): Promise<number[]> {
    if (input.kind === 'ids') return this.checkedIds(input.ids);
    this.checkTurns(input);
    const limit = this.contextLength;
    return nonEmpty(input.kind === 'chat' ? await this.encoder.encodeChat(input.messages, limit) : await this.encoder.encode(input.text, limit));
  }

  private checkedIds(ids: number[]): number[] {
    const bad = ids.find((t) => !Number.isInteger(t) || t < 0 || t >= this.spec.vocabSize);
    if (bad !== undefined) throw new InvalidInputError(`token id ${bad} is outside the vocabulary (0..${this.spec.vocabSize - 1})`);
    return nonEmpty(ids);
  }

  /** Every turn renders at least one token: a conversation longer than the context is refused before rendering. */
  private checkTurns(input: PromptInput): void {
    if (input.kind === 'chat' && input.messages.length > this.contextLength) {
      throw new InvalidInputError(`the conversation has ${input.messages.length} messages, more than this model's context of ${this.contextLength} tokens holds: shorten it`);
    }
  }

  /** What answers a request for `model`: itself, or what its router chose (a member, the fallback or a blend). */
  private async resolveAnswering(model: string, routed: RoutedTo | null): Promise<AdapterRef | null> {
    if (!routed?.blend) return this.resolveModel(routed?.model ?? model);
    const parts = (await Promise.all(routed.blend.members.map((m) => this.resolveModel(m)))).filter((p): p is AdapterRef => p !== null);
    if (parts.length === 0) return null;
    // the sum does not depend on the order: one key, so one slot, per pair and weight
    parts.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const { weight } = routed.blend;
    return { key: `blend:${weight}:${parts.map((p) => p.key).join('+')}`, dir: parts[0]!.dir, label: routed.model, blend: { parts, weight } };
  }

  private async resolveModel(model: string): Promise<AdapterRef | null> {
    if (model === this.modelId) return null;
    const found = await this.options.adapters.resolve(model);
    if (!found) {
      throw new NotFoundError(
        `model '${model}' does not exist: use '${this.modelId}' (the base model), a registered adapter or a router (GET /v1/models lists them)`,
      );
    }
    if (found.rank !== null && found.rank > this.spec.maxRank) {
      throw new UnsupportedError(
        `adapter ${model} has rank ${found.rank}, above the served graph's max rank ${this.spec.maxRank}: ` +
          `rebuild the model with --max-rank ${found.rank} or more`,
      );
    }
    if (found.baseModel && !sameBaseModel(found.baseModel, this.spec.baseModel)) {
      // names alone do not decide (local paths, mirrors): the worker refuses on shapes when loading
      this.options.log.debug({ adapter: model, baseModel: found.baseModel, served: this.spec.baseModel }, 'adapter names another base model');
    }
    return { key: found.key, dir: found.dir, label: model };
  }

  private async runGroup(
    rows: RowRequest[],
    settings: SamplingSettings,
    hooks: GenerateHooks,
    features?: FeatureRequest,
  ): Promise<{ id: string; seed: number; choices: Choice[] }> {
    const promptLength = rows[0]!.promptIds.length;
    const room = this.contextLength - promptLength;
    if (room < 1) {
      throw new InvalidInputError(
        `the prompt is ${promptLength} tokens, but this model's context is ${this.contextLength}: shorten the prompt`,
      );
    }
    const maxTokens = settings.maxTokens ?? room;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidInputError('max_tokens must be a positive integer');
    if (maxTokens > room) {
      throw new InvalidInputError(
        `this model's maximum context length is ${this.contextLength} tokens, but ${promptLength + maxTokens} were requested ` +
          `(${promptLength} in the prompt, ${maxTokens} to generate): lower max_tokens to at most ${room}`,
      );
    }
    const limit = this.options.maxBatch + this.options.maxQueue;
    if (this.inFlightRows + rows.length > limit) {
      const waitSeconds = Math.max(1, Math.ceil((this.avgSeconds * (this.inFlightRows + rows.length - this.options.maxBatch)) / this.options.maxBatch));
      throw new RateLimitedError(`the inference queue is full (${this.inFlightRows} requests in flight): retry in ${waitSeconds} s`, waitSeconds);
    }
    if (hooks.signal?.aborted) throw new CancelledError('the request was cancelled');
    const seed = settings.seed ?? randomSeed();
    const request: GroupRequest = {
      id: randomUUID(),
      rows,
      sampling: samplingParams(settings, this.spec.vocabSize),
      seed,
      maxTokens,
      stop: settings.stop ?? [],
      logprobs: settings.logprobs ?? null,
      ignoreEos: settings.ignoreEos ?? false,
      ...(features ? { features } : {}),
    };
    if (request.logprobs !== null && (!Number.isInteger(request.logprobs) || request.logprobs < 0 || request.logprobs > MAX_ALTERNATIVES)) {
      throw new InvalidInputError(`the number of logprob alternatives must be an integer from 0 to ${MAX_ALTERNATIVES}`);
    }
    const choices: Choice[] = rows.map((_, index) => ({
      index,
      text: '',
      tokenIds: [],
      logprobs: request.logprobs === null ? null : [],
      finishReason: 'stop',
      completionTokens: 0,
    }));
    this.inFlightRows += rows.length;
    const done = new Promise<Choice[]>((resolve, reject) => {
      this.pending.set(request.id, {
        request,
        choices,
        open: rows.length,
        onDelta: hooks.onDelta,
        features: rows.map(() => undefined),
        resolve,
        reject,
        started: Date.now(),
      });
    });
    const onAbort = () => this.post({ type: 'cancel', id: request.id });
    hooks.signal?.addEventListener('abort', onAbort, { once: true });
    this.post({ type: 'submit', request });
    try {
      return { id: request.id, seed, choices: await done };
    } finally {
      hooks.signal?.removeEventListener('abort', onAbort);
    }
  }

  private post(message: ToWorker): void {
    this.worker.postMessage(message);
  }
}

function usage(promptTokens: number, choices: Choice[]): Usage {
  const completionTokens = choices.reduce((sum, c) => sum + c.completionTokens, 0);
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens };
}

/** Validated sampling parameters (the API validates shapes; this guards the engine for every caller). */
export function samplingParams(s: SamplingSettings, vocabSize: number): SamplingParams {
  const num = (name: string, value: number | undefined, fallback: number, ok: (v: number) => boolean, rule: string) => {
    const v = value ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new InvalidInputError(`${name} must be ${rule}, not ${String(value)}`);
    return v;
  };
  let logitBias: Map<number, number> | null = null;
  if (s.logitBias && Object.keys(s.logitBias).length > 0) {
    logitBias = new Map();
    for (const [key, bias] of Object.entries(s.logitBias)) {
      const token = Number(key);
      if (!Number.isInteger(token) || token < 0 || token >= vocabSize) {
        throw new InvalidInputError(`logit_bias: ${key} is not a token id of this model (0..${vocabSize - 1})`);
      }
      logitBias.set(token, num(`logit_bias[${key}]`, bias, 0, (v) => v >= -100 && v <= 100, 'from -100 to 100'));
    }
  }
  return {
    temperature: num('temperature', s.temperature, 1, (v) => v >= 0 && v <= 100, 'from 0 to 100'),
    topP: num('top_p', s.topP, 1, (v) => v > 0 && v <= 1, 'in (0, 1]'),
    topK: num('top_k', s.topK, 0, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer (0 = off)'),
    repetitionPenalty: num('repetition_penalty', s.repetitionPenalty, 1, (v) => v > 0 && v <= 10, 'in (0, 10]'),
    frequencyPenalty: num('frequency_penalty', s.frequencyPenalty, 0, (v) => v >= -2 && v <= 2, 'from -2 to 2'),
    presencePenalty: num('presence_penalty', s.presencePenalty, 0, (v) => v >= -2 && v <= 2, 'from -2 to 2'),
    logitBias,
  };
}

function nonEmpty(ids: number[]): number[] {
  if (ids.length === 0) throw new InvalidInputError('the prompt is empty: give at least one token');
  return ids;
}
