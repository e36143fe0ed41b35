// An eval through the real inference engine (worker thread, tokenizer, chat template, slot pool) on the demo model
// with experts built to favour each suite: the report's perplexities, retention and check pass rates, and the
// same numbers on a second run.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEval } from '../../src/eval/evaluate.js';
import type { ScoredModel } from '../../src/eval/metrics.js';
import { loadSuites, validateItems, type SuiteItem } from '../../src/eval/suite.js';
import { buildModel } from '../../src/inference/builder/index.js';
import { makeDemoModel } from '../../src/inference/demo.js';
import type { InferenceEngine } from '../../src/inference/engine/index.js';
import { makeExperts, type Expert } from './expert.js';
import { startTestEngine } from '../helpers/engine.js';

describe('eval on the demo model', () => {
  let root: string;
  let engine: InferenceEngine;
  let experts: Expert[];
  let items: SuiteItem[];

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-eval-run-'));
    const demo = await makeDemoModel(path.join(root, 'demo'));
    const built = await buildModel(demo.checkpointDir, { dataDir: path.join(root, 'data'), maxRank: 16, slots: 8 });
    const all = await loadSuites();
    experts = await makeExperts({ modelDir: built.dir, manifest: built.manifest, checkpointDir: demo.checkpointDir, items: all, outDir: path.join(root, 'experts') });
    // 6 items per category keep the test short; the experts were fitted on all of them
    items = [...new Set(all.map((i) => i.category))].flatMap((c) => all.filter((i) => i.category === c).slice(0, 6));
    engine = await startTestEngine(built.dir, [...experts.map((e) => ({ dir: e.dir, name: `${e.category}-expert` })), { dir: demo.adapterDirs.code, name: 'demo-code' }], { threads: 2, maxBatch: 8, maxQueue: 64, kvChunk: 64 });
  });
  afterAll(async () => {
    await engine?.close();
    await rm(root, { recursive: true, force: true });
  });

  const models = (): ScoredModel[] => [
    { name: engine.modelId, kind: 'base' },
    ...experts.map((e): ScoredModel => ({ name: `${e.category}-expert`, kind: 'adapter', category: e.category })),
    { name: 'demo-code', kind: 'adapter' },
  ];

  it('reports perplexity and retention per model and category; experts keep their skill, and the numbers repeat', async () => {
    const plan = { items, models: models(), format: 'chat' as const, checks: false, maxTokens: 8 };
    const progress: number[] = [];
    const report = await runEval(engine, plan, { onProgress: (p) => progress.push(p.done) });
    expect(progress.at(-1)).toBe(items.length * models().length);
    expect(report.categories).toEqual(['code', 'linux-commands', 'python-automation', 'troubleshooting']);
    const base = report.models.find((m) => m.kind === 'base')!;
    for (const e of experts) {
      expect(report.experts[e.category]!.model).toBe(`${e.category}-expert`);
      const mine = report.models.find((m) => m.model === `${e.category}-expert`)!;
      expect(mine.categories[e.category]!.perplexity).toBeLessThan(base.categories[e.category]!.perplexity);
      expect(mine.categories[e.category]!.retention).toBe(1);
      expect(base.categories[e.category]!.retention).toBe(0);
    }
    // retention of any model follows from the perplexities in the report
    const other = report.models.find((m) => m.model === 'demo-code')!;
    const c = 'linux-commands';
    const expert = report.models.find((m) => m.model === `${c}-expert`)!;
    const expected = (base.categories[c]!.perplexity - other.categories[c]!.perplexity) / (base.categories[c]!.perplexity - expert.categories[c]!.perplexity);
    expect(other.categories[c]!.retention).toBeCloseTo(expected, 10);

    const again = await runEval(engine, plan);
    expect(again.itemNll).toEqual(report.itemNll);
  });

  it('generates answers and applies the checks when asked', async () => {
    const checked = validateItems([
      { category: 'code', prompt: 'Say anything.', reference: 'anything', checks: [{ regex: '^' }] },
      { category: 'code', prompt: 'Say the secret.', reference: 'the secret', checks: ['\u0000never-generated\u0000'] },
      { category: 'troubleshooting', prompt: 'No checks here.', reference: 'fine' },
    ]);
    const report = await runEval(engine, { items: checked, models: models().slice(0, 2), format: 'chat', checks: true, maxTokens: 4 });
    for (const m of report.models) {
      expect(m.categories.code!.passRate).toBe(0.5);
      expect(m.categories.troubleshooting!.passRate).toBeNull();
    }
    expect(report.timings.generateSeconds).toBeGreaterThan(0);
  });
});
