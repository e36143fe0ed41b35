// Retention of one model at a time on a set of suite items, as evals compute it (src/eval/metrics.ts), for the
// benches that compare many models on the same items: the base and the experts (one adapter per category, named by
// it) are scored once, then each model asked about alone.
import { scoreItems, type EvalEngine } from '../src/eval/evaluate.js';
import { aggregate, type ItemScore, type ScoredModel } from '../src/eval/metrics.js';
import type { SuiteItem } from '../src/eval/suite.js';

export interface Retention {
  worst: number | null;
  mean: number | null;
  perCategory: Record<string, number | null>;
}

export async function retentionScorer(engine: EvalEngine, items: SuiteItem[], categories: string[]): Promise<(model: string) => Promise<Retention>> {
  const fixed: ScoredModel[] = [{ name: engine.modelId, kind: 'base' }, ...categories.map((c) => ({ name: c, kind: 'adapter' as const, category: c }))];
  const unchecked = (scores: Array<{ nll: number; tokens: number }>): ItemScore[] => scores.map((s) => ({ nll: s.nll, tokens: s.tokens, passed: null }));
  const baseline = [...(await scoreItems(engine, items, fixed.map((m) => m.name), 'chat'))].map(([name, scores]) => [name, unchecked(scores)] as const);
  const experts = Object.fromEntries(categories.map((c) => [c, c]));
  return async (model) => {
    const scores = new Map([...baseline, [model, unchecked((await scoreItems(engine, items, [model], 'chat')).get(model)!)] as const]);
    const agg = aggregate({ items, models: [...fixed, { name: model, kind: 'merge' }], scores, experts });
    const report = agg.models.find((m) => m.model === model)!;
    return {
      worst: report.overall.worstRetention,
      mean: report.overall.meanRetention,
      perCategory: Object.fromEntries(Object.entries(report.categories).map(([c, s]) => [c, s.retention])),
    };
  };
}
