// Runs an eval on the inference engine: every item under every model scored by teacher forcing (and, with checks,
// answered greedily and checked), then aggregated into the report. The engine does the batching: rows are sent item
// by item, each item under every model, so the rows of one pass mostly share their length and pad nothing.
import { CancelledError } from '../errors.js';
import type { PromptInput } from '../inference/engine/index.js';
import { aggregate, type ItemScore, type ScoredModel } from './metrics.js';
import type { EvalReport } from './report.js';
import { routingScore } from './routing.js';
import type { EvalPart } from './split.js';
import type { SuiteItem } from './suite.js';
import { CheckThread, hasRegex, passesChecks } from './checks.js';

/** What an eval needs of the inference engine (InferenceEngine implements it). */
export interface EvalEngine {
  readonly modelId: string;
  score(
    request: { rows: Array<{ model: string; input: PromptInput; continuation: string }> },
    hooks?: { signal?: AbortSignal },
  ): Promise<{ rows: Array<{ logprobSum: number; tokens: number; routedTo?: { model: string; fallback: boolean; blend?: { members: string[] } } }> }>;
  generate(
    request: { model: string; input: PromptInput; maxTokens: number; temperature: number; seed: number },
    hooks?: { signal?: AbortSignal },
  ): Promise<{ choices: Array<{ text: string }> }>;
}

export type EvalFormat = 'chat' | 'raw';

export interface EvalProgress {
  phase: 'score' | 'generate';
  done: number;
  total: number;
}

export interface EvalHooks {
  signal?: AbortSignal;
  onProgress?: (progress: EvalProgress) => void;
}

/** Rows per engine call: small enough for prompt progress and cancellation, large enough to fill passes. */
const ROWS_PER_CALL = 64;
/** Engine calls in flight: the next one is tokenized on this thread while the engine's thread runs the current one. */
const CALLS_IN_FLIGHT = 2;
/** Generations in flight at once when answering for checks (the engine batches them). */
const GENERATIONS_IN_FLIGHT = 8;

export function promptInput(item: Pick<SuiteItem, 'prompt'>, format: EvalFormat): PromptInput {
  return format === 'chat' ? { kind: 'chat', messages: [{ role: 'user', content: item.prompt }] } : { kind: 'text', text: item.prompt };
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError('the eval was cancelled');
}

/** One item under one model; `routedTo` when the model is a router. */
export interface ScoredItem {
  nll: number;
  tokens: number;
  routedTo?: { model: string; fallback: boolean; blend: boolean };
}

/** Each item's mean NLL per reference token under each model: model name → scores aligned with `items`. */
export async function scoreItems(
  engine: EvalEngine,
  items: readonly SuiteItem[],
  models: readonly string[],
  format: EvalFormat,
  hooks: EvalHooks = {},
): Promise<Map<string, Array<ScoredItem>>> {
  const rows = items.flatMap((item, i) => models.map((model) => ({ item: i, model, input: promptInput(item, format), continuation: item.reference })));
  const out = new Map(models.map((m) => [m, new Array<ScoredItem>(items.length)]));
  hooks.onProgress?.({ phase: 'score', done: 0, total: rows.length });
  const chunks: Array<typeof rows> = [];
  for (let start = 0; start < rows.length; start += ROWS_PER_CALL) chunks.push(rows.slice(start, start + ROWS_PER_CALL));
  let done = 0;
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      throwIfAborted(hooks.signal);
      const chunk = chunks[next++]!;
      const result = await engine.score({ rows: chunk.map(({ model, input, continuation }) => ({ model, input, continuation })) }, { signal: hooks.signal });
      chunk.forEach((row, k) => {
        const r = result.rows[k]!;
        out.get(row.model)![row.item] = {
          nll: -r.logprobSum / r.tokens,
          tokens: r.tokens,
          ...(r.routedTo ? { routedTo: { model: r.routedTo.model, fallback: r.routedTo.fallback, blend: r.routedTo.blend !== undefined } } : {}),
        };
      });
      done += chunk.length;
      hooks.onProgress?.({ phase: 'score', done, total: rows.length });
    }
  };
  await Promise.all(Array.from({ length: Math.min(CALLS_IN_FLIGHT, chunks.length) }, worker));
  return out;
}

/** Whether each model's greedy answer to each item passes the item's checks (null for items without checks). */
export async function checkItems(
  engine: EvalEngine,
  items: readonly SuiteItem[],
  models: readonly string[],
  format: EvalFormat,
  maxTokens: number,
  hooks: EvalHooks = {},
): Promise<Map<string, Array<boolean | null>>> {
  const out = new Map(models.map((m) => [m, items.map(() => null as boolean | null)]));
  const jobs = items.flatMap((item, i) => (item.checks ? models.map((model) => ({ i, model })) : []));
  let done = 0;
  hooks.onProgress?.({ phase: 'generate', done, total: jobs.length });
  let next = 0;
  // regexes run off this thread, which serves the API (checks.ts says why)
  const regex = items.map((item) => hasRegex(item.checks));
  const thread = regex.some(Boolean) ? new CheckThread() : null;
  const worker = async () => {
    while (next < jobs.length) {
      throwIfAborted(hooks.signal);
      const { i, model } = jobs[next++]!;
      const item = items[i]!;
      const answer = await engine.generate(
        { model, input: promptInput(item, format), maxTokens, temperature: 0, seed: 0 },
        { signal: hooks.signal },
      );
      const text = answer.choices[0]!.text;
      out.get(model)![i] = thread && regex[i] ? await thread.passes(text, item.checks!) : passesChecks(text, item.checks);
      hooks.onProgress?.({ phase: 'generate', done: ++done, total: jobs.length });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(GENERATIONS_IN_FLIGHT, jobs.length) }, worker));
  } finally {
    await thread?.close();
  }
  return out;
}

export interface EvalPlan {
  items: readonly SuiteItem[];
  /** the base model first; kinds and registry categories decide the experts */
  models: readonly ScoredModel[];
  format: EvalFormat;
  checks: boolean;
  maxTokens: number;
  experts?: Readonly<Record<string, string>>;
  /** the part of the suites the items are, reported as is */
  part?: EvalPart;
  /** routers among the models: member → category, for routing accuracy */
  routers?: Readonly<Record<string, Readonly<Record<string, string | null>>>>;
}

/** Scores (and optionally checks) every model on every item and aggregates the report. */
export async function runEval(engine: EvalEngine, plan: EvalPlan, hooks: EvalHooks = {}): Promise<EvalReport> {
  const names = plan.models.map((m) => m.name);
  const t0 = performance.now();
  const nll = await scoreItems(engine, plan.items, names, plan.format, hooks);
  const t1 = performance.now();
  const passed = plan.checks ? await checkItems(engine, plan.items, names, plan.format, plan.maxTokens, hooks) : null;
  const t2 = performance.now();
  const scores = new Map<string, ItemScore[]>(
    names.map((name) => [name, nll.get(name)!.map((s, i) => ({ ...s, passed: passed ? passed.get(name)![i]! : null }))]),
  );
  const agg = aggregate({ items: plan.items, models: plan.models, scores, experts: plan.experts });
  const routing = Object.entries(plan.routers ?? {}).map(([router, members]) => {
    const routed = nll.get(router)!.map((s, i) => ({
      category: plan.items[i]!.category,
      model: s.routedTo?.model ?? router,
      fallback: s.routedTo?.fallback ?? false,
      blend: s.routedTo?.blend ?? false,
    }));
    return [router, routingScore(routed, members)] as const;
  });
  return {
    baseModel: engine.modelId,
    format: plan.format,
    checks: plan.checks,
    categories: agg.categories,
    experts: agg.experts,
    items: plan.items.map((i) => ({ id: i.id, category: i.category })),
    models: agg.models,
    itemNll: Object.fromEntries(names.map((n) => [n, nll.get(n)!.map((s) => s.nll)])),
    timings: {
      scoreSeconds: (t1 - t0) / 1000,
      generateSeconds: (t2 - t1) / 1000,
      tokensScored: [...nll.values()].reduce((sum, list) => sum + list.reduce((s, x) => s + x.tokens, 0), 0),
    },
    ...(plan.part ? { part: plan.part } : {}),
    ...(routing.length > 0 ? { routing: Object.fromEntries(routing) } : {}),
  };
}
