// From per-item scores to the numbers an eval reports, per model and category: perplexity, check pass rate, and
// retention = (ppl_base − ppl_model) / (ppl_base − ppl_expert). Pure functions, no I/O.
//
// Choices, documented in docs/eval.md:
//  - an item's score is the mean negative log-likelihood per reference token; a category's mean NLL averages its
//    items with equal weight (a long answer does not outweigh short ones), and its perplexity is exp of that:
//    retention uses this item-weighted perplexity. The token-weighted one (total NLL over total reference
//    tokens, what language-model papers report) is given beside it;
//  - the expert of a category is the adapter registered with that category (registry `category`), or the one
//    the request names; with several, the best on the category's suite, so retention is never flattered;
//  - retention is undefined (null, with a note) when the category has no expert, or when the expert does not
//    beat the base there: a ratio over a gain that is not there would be noise or sign-flipped.
import type { EvalModelKind, CategoryScore, ExpertInfo, ModelReport } from './report.js';

export interface ScoredModel {
  name: string;
  kind: EvalModelKind;
  /** registry category, for adapters */
  category?: string;
}

export interface ItemScore {
  /** mean negative log-likelihood per reference token, in nats */
  nll: number;
  tokens: number;
  /** whether the generated answer passed the item's checks; null = not checked */
  passed: boolean | null;
}

export interface ItemRef {
  category: string;
}

interface CategoryStats {
  items: number;
  tokens: number;
  meanNll: number;
  /** Σ over items of nll·tokens: the category's total NLL */
  totalNll: number;
  passed: number;
  checked: number;
}

function categoryStats(items: readonly ItemRef[], scores: readonly ItemScore[]): Map<string, CategoryStats> {
  const out = new Map<string, CategoryStats>();
  items.forEach((item, i) => {
    const s = scores[i]!;
    let c = out.get(item.category);
    if (!c) out.set(item.category, (c = { items: 0, tokens: 0, meanNll: 0, totalNll: 0, passed: 0, checked: 0 }));
    c.items += 1;
    c.tokens += s.tokens;
    c.meanNll += s.nll;
    c.totalNll += s.nll * s.tokens;
    if (s.passed !== null) {
      c.checked += 1;
      if (s.passed) c.passed += 1;
    }
  });
  for (const c of out.values()) c.meanNll /= c.items;
  return out;
}

/** Picks each category's expert. `explicit` (category → model name) wins; names there must be among `models`. */
export function chooseExperts(
  categories: readonly string[],
  models: readonly ScoredModel[],
  meanNll: (model: string, category: string) => number,
  explicit: Readonly<Record<string, string>> = {},
): Map<string, ExpertInfo> {
  const out = new Map<string, ExpertInfo>();
  for (const category of categories) {
    const named = explicit[category];
    if (named !== undefined) {
      out.set(category, { model: named, note: null });
      continue;
    }
    const candidates = models.filter((m) => m.kind === 'adapter' && m.category === category);
    if (candidates.length === 0) {
      out.set(category, {
        model: null,
        note: `no adapter registered with category "${category}": retention is undefined (register the skill's adapter with --category ${category}, or name the expert)`,
      });
    } else if (candidates.length === 1) {
      out.set(category, { model: candidates[0]!.name, note: null });
    } else {
      const best = candidates.reduce((a, b) => (meanNll(b.name, category) < meanNll(a.name, category) ? b : a));
      out.set(category, {
        model: best.name,
        note: `${candidates.length} adapters have category "${category}" (${candidates.map((c) => c.name).join(', ')}): the best on its suite, ${best.name}, is the expert`,
      });
    }
  }
  return out;
}

/** (ppl_base − ppl_model) / (ppl_base − ppl_expert), or null with the reason when that is not defined. */
export function retention(pplBase: number, pplModel: number, pplExpert: number | null, expertName: string | null): { value: number | null; note: string | null } {
  if (pplExpert === null || expertName === null) return { value: null, note: 'no expert for this category' };
  const gain = pplBase - pplExpert;
  if (!(gain > 0)) {
    return {
      value: null,
      note: `the expert ${expertName} does not beat the base here (ppl ${pplExpert.toFixed(3)} vs ${pplBase.toFixed(3)}): retention is undefined`,
    };
  }
  return { value: (pplBase - pplModel) / gain, note: null };
}

export interface AggregateInput {
  items: readonly ItemRef[];
  /** the base model first */
  models: readonly ScoredModel[];
  /** per model name, one score per item, aligned with `items` */
  scores: ReadonlyMap<string, readonly ItemScore[]>;
  /** category → expert model name, overriding the registry categories */
  experts?: Readonly<Record<string, string>>;
}

export interface Aggregate {
  categories: string[];
  experts: Record<string, ExpertInfo>;
  models: ModelReport[];
}

export function aggregate(input: AggregateInput): Aggregate {
  const { items, models, scores } = input;
  const base = models.find((m) => m.kind === 'base');
  if (!base) throw new Error('aggregate: the base model must be among the models');
  const stats = new Map(models.map((m) => [m.name, categoryStats(items, scores.get(m.name)!)] as const));
  const categories = [...stats.get(base.name)!.keys()];
  const nllOf = (model: string, category: string) => stats.get(model)!.get(category)!.meanNll;
  const experts = chooseExperts(categories, models, nllOf, input.experts);

  const reports = models.map((m): ModelReport => {
    const perCategory: Record<string, CategoryScore> = {};
    const retained: number[] = [];
    let nllSum = 0;
    let totalNll = 0;
    let tokens = 0;
    let checked = 0;
    let passed = 0;
    for (const category of categories) {
      const c = stats.get(m.name)!.get(category)!;
      const expert = experts.get(category)!;
      const pplBase = Math.exp(nllOf(base.name, category));
      const ppl = Math.exp(c.meanNll);
      const r = retention(pplBase, ppl, expert.model === null ? null : Math.exp(nllOf(expert.model, category)), expert.model);
      if (r.value !== null) retained.push(r.value);
      nllSum += c.meanNll;
      totalNll += c.totalNll;
      tokens += c.tokens;
      checked += c.checked;
      passed += c.passed;
      perCategory[category] = {
        items: c.items,
        tokens: c.tokens,
        meanNll: c.meanNll,
        perplexity: ppl,
        tokenNll: tokenNll(c.totalNll, c.tokens),
        tokenPerplexity: Math.exp(tokenNll(c.totalNll, c.tokens)),
        passRate: c.checked > 0 ? c.passed / c.checked : null,
        retention: r.value,
        ...(r.note ? { note: r.note } : {}),
      };
    }
    const meanNll = nllSum / categories.length;
    return {
      model: m.name,
      kind: m.kind,
      ...(m.category ? { category: m.category } : {}),
      categories: perCategory,
      overall: {
        meanNll,
        perplexity: Math.exp(meanNll),
        tokens,
        tokenNll: tokenNll(totalNll, tokens),
        tokenPerplexity: Math.exp(tokenNll(totalNll, tokens)),
        passRate: checked > 0 ? passed / checked : null,
        worstRetention: retained.length > 0 ? Math.min(...retained) : null,
        meanRetention: retained.length > 0 ? retained.reduce((a, b) => a + b, 0) / retained.length : null,
        retainedCategories: retained.length,
      },
    };
  });
  return { categories, experts: Object.fromEntries(experts), models: reports };
}

/** Total NLL over total reference tokens (0 for no tokens, as an empty category scores nothing). */
const tokenNll = (total: number, tokens: number) => (tokens > 0 ? total / tokens : 0);

type Ranked = Pick<ModelReport['overall'], 'worstRetention' | 'meanRetention' | 'meanNll'>;

/** Orders by the worst category's retention, then the mean (both descending); undefined retention last. */
export function compareByRetention(a: Ranked, b: Ranked): number {
  const worst = (b.worstRetention ?? -Infinity) - (a.worstRetention ?? -Infinity);
  if (worst !== 0 && !Number.isNaN(worst)) return worst;
  const mean = (b.meanRetention ?? -Infinity) - (a.meanRetention ?? -Infinity);
  if (mean !== 0 && !Number.isNaN(mean)) return mean;
  return a.meanNll - b.meanNll;
}
