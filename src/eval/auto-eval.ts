// Merges measured as they finish (docs/eval.md#merges-measured-as-they-finish): when suites have items of the
// categories of a merge's inputs, a completed merge's status carries an eval of the merge on the test part of those
// suites and, once scored, its retention per category. The eval is queued once per merge, under an id made from the
// merge's, so every API process that reads the status (or hears the merge complete) asks for the same job. The bot's
// result card and GET /v1/merges/{id} show it. The merges of a sweep or of `loraforge tune` are left out (the search
// scores them). Off with eval.autoEvalMerges: false.
import { NotFoundError } from '../errors.js';
import type { MergeAutoEval, MergeStatus } from '../queue/types.js';
import type { Registry } from '../registry/registry.js';
import type { Logger } from '../util/log.js';
import type { EvalStatus } from './jobs.js';
import { EvalRequestSchema } from './requests.js';
import type { EvalService } from './service.js';
import { listSuites, loadSuites } from './suite.js';
import { sweepRegistrant } from './sweep.js';

/** Who registers the merges of a search: `sweep:<id>` (sweep.ts) and `tune:<prefix>` (`loraforge tune`). */
const SEARCH_REGISTRANTS = [sweepRegistrant(''), 'tune:'];
const SUITES_FRESH_MS = 60_000;

/** The auto-eval of merge `merge-<hex>` is `eval-<hex>`: a valid eval id, the same in every process. */
export const autoEvalId = (mergeId: string) => `eval-${mergeId.replace(/^merge-/, '')}`;

function view(status: EvalStatus, model: string, categories: string[]): MergeAutoEval {
  const out: MergeAutoEval = { id: status.id, state: status.state, part: 'test', categories };
  if (status.error) out.error = status.error.message;
  const report = status.report?.models.find((m) => m.model === model);
  if (report) {
    out.worstRetention = report.overall.worstRetention;
    out.meanRetention = report.overall.meanRetention;
    out.retention = Object.fromEntries(categories.map((c) => [c, report.categories[c]?.retention ?? null]));
  }
  return out;
}

export class MergeAutoEvals {
  private suites?: { at: number; map: Map<string, string[]> };

  constructor(
    private readonly evals: EvalService,
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {}

  /** The status with its `autoEval` (queued now if it was not); unchanged when there is nothing to score. */
  async decorate(status: MergeStatus): Promise<MergeStatus> {
    if (status.state !== 'completed') return status;
    try {
      const autoEval = await this.ensure(status);
      return autoEval ? { ...status, autoEval } : status;
    } catch (err) {
      // the merge's status never fails for its eval's sake
      this.log.warn({ err, merge: status.id }, 'could not queue or read the eval of a finished merge');
      return status;
    }
  }

  /** Suite names by the categories of their items, read again at most once a minute (suites change rarely). */
  private async suitesByCategory(): Promise<Map<string, string[]>> {
    if (this.suites && Date.now() - this.suites.at < SUITES_FRESH_MS) return this.suites.map;
    const map = new Map<string, string[]>();
    for (const name of await listSuites(this.evals.suitesDir)) {
      for (const category of new Set((await loadSuites([name], this.evals.suitesDir)).map((i) => i.category))) map.set(category, [...(map.get(category) ?? []), name]);
    }
    this.suites = { at: Date.now(), map };
    return map;
  }

  private async ensure(status: MergeStatus): Promise<MergeAutoEval | null> {
    const model = status.result?.name ?? status.name;
    const inputs = await Promise.all(status.adapters.map((a) => this.registry.find(a.name)));
    const categories = [...new Set(inputs.map((r) => r?.category).filter((c): c is string => typeof c === 'string'))].sort();
    const record = await this.registry.find(model);
    // the merges of a search (a sweep, `loraforge tune`) are scored by the search itself
    if (categories.length === 0 || !record || SEARCH_REGISTRANTS.some((prefix) => record.registeredBy.startsWith(prefix))) return null;
    // every later read of the status finds the eval queued
    const id = autoEvalId(status.id);
    const queued = await this.evals.evalStatus(id).catch((err: unknown) => {
      if (err instanceof NotFoundError) return null;
      throw err;
    });
    if (queued) return view(queued, model, categories);
    const byCategory = await this.suitesByCategory();
    const suites = [...new Set(categories.flatMap((c) => byCategory.get(c) ?? []))].sort();
    if (suites.length === 0) return null;
    const request = EvalRequestSchema.parse({ models: [model], suites, part: 'test' });
    return view(await this.evals.ensureEval(id, request), model, categories);
  }
}
