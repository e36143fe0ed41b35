import { describe, expect, it } from 'vitest';
import { aggregate, chooseExperts, compareByRetention, retention, type ItemScore, type ScoredModel } from '../../src/eval/metrics.js';

const s = (nll: number, passed: boolean | null = null, tokens = 10): ItemScore => ({ nll, tokens, passed });

describe('retention', () => {
  it('is (ppl_base − ppl_model) / (ppl_base − ppl_expert)', () => {
    expect(retention(10, 10, 6, 'x').value).toBe(0);
    expect(retention(10, 6, 6, 'x').value).toBe(1);
    expect(retention(10, 8, 6, 'x').value).toBe(0.5);
    expect(retention(10, 12, 6, 'x').value).toBe(-0.5);
    expect(retention(10, 5, 6, 'x').value).toBe(1.25);
  });

  it('is undefined, with a note, without an expert or when the expert does not beat the base', () => {
    expect(retention(10, 8, null, null)).toEqual({ value: null, note: 'no expert for this category' });
    const worse = retention(10, 8, 11, 'code');
    expect(worse.value).toBeNull();
    expect(worse.note).toMatch(/expert code does not beat the base/);
    expect(retention(10, 8, 10, 'code').value).toBeNull();
  });
});

describe('chooseExperts', () => {
  const models: ScoredModel[] = [
    { name: 'base', kind: 'base' },
    { name: 'code-a', kind: 'adapter', category: 'code' },
    { name: 'code-b', kind: 'adapter', category: 'code' },
    { name: 'shell', kind: 'adapter', category: 'linux' },
    { name: 'merged', kind: 'merge', category: 'code' },
  ];
  const nll: Record<string, number> = { 'code-a': 2.0, 'code-b': 1.5, merged: 1.0 };

  it('takes the adapter registered for the category, the best of several, never a merge; an explicit choice wins', () => {
    const experts = chooseExperts(['code', 'linux', 'sql'], models, (m) => nll[m] ?? 3);
    expect(experts.get('linux')).toEqual({ model: 'shell', note: null });
    expect(experts.get('code')!.model).toBe('code-b');
    expect(experts.get('code')!.note).toMatch(/2 adapters have category "code"/);
    expect(experts.get('sql')!.model).toBeNull();
    expect(experts.get('sql')!.note).toMatch(/--category sql/);
    expect(chooseExperts(['code'], models, () => 0, { code: 'code-a' }).get('code')!.model).toBe('code-a');
  });
});

describe('aggregate', () => {
  // two categories, two items each; ln-space numbers chosen so perplexities are easy to read
  const items = [{ category: 'code' }, { category: 'code' }, { category: 'shell' }, { category: 'shell' }];
  const L = Math.log;
  const models: ScoredModel[] = [
    { name: 'base', kind: 'base' },
    { name: 'coder', kind: 'adapter', category: 'code' },
    { name: 'sheller', kind: 'adapter', category: 'shell' },
    { name: 'merge', kind: 'merge' },
  ];
  const scores = new Map<string, ItemScore[]>([
    ['base', [s(L(10)), s(L(10)), s(L(20), true), s(L(20), false)]],
    ['coder', [s(L(4)), s(L(4)), s(L(25), false), s(L(25), false)]],
    ['sheller', [s(L(12)), s(L(12)), s(L(10), true), s(L(10), true)]],
    // code: items at ppl 4 and 9 → mean NLL ln 6 → ppl 6 → retention (10−6)/(10−4) = 2/3
    ['merge', [s(L(4)), s(L(9)), s(L(15), true), s(L(15), null)]],
  ]);

  it('reports perplexity, pass rate and retention per model and category, worst and mean overall', () => {
    const report = aggregate({ items, models, scores });
    expect(report.categories).toEqual(['code', 'shell']);
    expect(report.experts.code!.model).toBe('coder');
    const merge = report.models.find((m) => m.model === 'merge')!;
    expect(merge.categories.code!.perplexity).toBeCloseTo(6, 10);
    expect(merge.categories.code!.retention).toBeCloseTo(2 / 3, 10);
    expect(merge.categories.shell!.perplexity).toBeCloseTo(15, 10);
    expect(merge.categories.shell!.retention).toBeCloseTo(0.5, 10);
    expect(merge.categories.shell!.passRate).toBe(1); // one checked item, passed; the unchecked one does not count
    expect(merge.categories.code!.passRate).toBeNull();
    expect(merge.overall.worstRetention).toBeCloseTo(0.5, 10);
    expect(merge.overall.meanRetention).toBeCloseTo(7 / 12, 10);
    expect(merge.overall.retainedCategories).toBe(2);

    const base = report.models.find((m) => m.model === 'base')!;
    expect(base.categories.code!.retention).toBe(0);
    expect(base.categories.shell!.passRate).toBe(0.5);
    const coder = report.models.find((m) => m.model === 'coder')!;
    expect(coder.categories.code!.retention).toBe(1);
    expect(coder.categories.shell!.retention).toBeCloseTo((20 - 25) / (20 - 10), 10);
  });

  it('gives the token-weighted perplexity beside the item-weighted one that retention uses', () => {
    // code items of 1 and 3 tokens at ppl 4 and 9: item-weighted ppl 6; token-weighted exp((ln 4 + 3·ln 9) / 4)
    const long = new Map(scores);
    long.set('merge', [{ nll: L(4), tokens: 1, passed: null }, { nll: L(9), tokens: 3, passed: null }, s(L(15), true), s(L(15), null)]);
    const merge = aggregate({ items, models, scores: long }).models.find((m) => m.model === 'merge')!;
    const code = merge.categories.code!;
    expect(code.tokens).toBe(4);
    expect(code.perplexity).toBeCloseTo(6, 10);
    expect(code.tokenPerplexity).toBeCloseTo(Math.exp((L(4) + 3 * L(9)) / 4), 10);
    expect(code.tokenNll).toBeCloseTo((L(4) + 3 * L(9)) / 4, 10);
    expect(code.retention).toBeCloseTo(2 / 3, 10); // from the item-weighted 6, as before
    const shellTokens = merge.categories.shell!.tokens;
    expect(merge.overall.tokens).toBe(4 + shellTokens);
    expect(merge.overall.tokenNll).toBeCloseTo((L(4) + 3 * L(9) + shellTokens * L(15)) / (4 + shellTokens), 10);
    expect(merge.overall.tokenPerplexity).toBeCloseTo(Math.exp(merge.overall.tokenNll), 10);
  });

  it('leaves retention undefined where the expert does not beat the base, and ranks on the rest', () => {
    const weak = new Map(scores);
    weak.set('sheller', [s(L(12)), s(L(12)), s(L(30)), s(L(30))]);
    const report = aggregate({ items, models, scores: weak });
    const merge = report.models.find((m) => m.model === 'merge')!;
    expect(merge.categories.shell!.retention).toBeNull();
    expect(merge.categories.shell!.note).toMatch(/does not beat the base/);
    expect(merge.overall.worstRetention).toBeCloseTo(2 / 3, 10);
    expect(merge.overall.retainedCategories).toBe(1);
  });

  it('orders by worst retention, then mean, undefined last', () => {
    const o = (worst: number | null, mean: number | null, meanNll = 1) => ({
      meanNll,
      perplexity: 0,
      passRate: null,
      worstRetention: worst,
      meanRetention: mean,
      retainedCategories: 0,
    });
    const list = [o(0.2, 0.9), o(null, null), o(0.4, 0.5), o(0.4, 0.6), o(null, null, 0.5)];
    expect(list.sort(compareByRetention).map((x) => [x.worstRetention, x.meanRetention, x.meanNll])).toEqual([
      [0.4, 0.6, 1],
      [0.4, 0.5, 1],
      [0.2, 0.9, 1],
      [null, null, 0.5],
      [null, null, 1],
    ]);
  });
});
