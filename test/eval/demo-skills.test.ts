// The shipped demo model (assets/demo) really has its four skills, measured as `loraforge eval` measures them: on
// the built-in suites (prompts the adapters never saw in training) each expert's perplexity is well below the
// base model's, and the exact linear merge of the four at weight 0.25 keeps part of every skill; each expert's greedy
// answers pass most of its suite's checks, the base's almost none.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEval } from '../../src/eval/evaluate.js';
import type { ScoredModel } from '../../src/eval/metrics.js';
import { byCategory, loadSuites, type SuiteItem } from '../../src/eval/suite.js';
import { buildModel } from '../../src/inference/builder/index.js';
import { DEMO_SKILLS } from '../../src/inference/demo.js';
import { checkDemoAssets, type DemoAssets } from '../../src/inference/demo-assets.js';
import type { InferenceEngine } from '../../src/inference/engine/index.js';
import { mergeToDirectory } from '../../src/merge/directory.js';
import { startTestEngine } from '../helpers/engine.js';

describe('the shipped demo model', () => {
  let root: string;
  let demo: DemoAssets;
  let engine: InferenceEngine;
  let items: SuiteItem[];

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-demo-skills-'));
    demo = await checkDemoAssets();
    await mergeToDirectory(
      DEMO_SKILLS.map((s) => demo.adapterDirs[s]),
      path.join(root, 'merge'),
      { method: 'linear', weights: DEMO_SKILLS.map(() => 0.25) },
    );
    const built = await buildModel(demo.checkpointDir, { dataDir: path.join(root, 'data'), targets: demo.targets, maxRank: 64, slots: 8 });
    items = await loadSuites();
    engine = await startTestEngine(built.dir, [...DEMO_SKILLS.map((s) => ({ dir: demo.adapterDirs[s], name: s })), { dir: path.join(root, 'merge'), name: 'merge' }], { maxBatch: 8, maxQueue: 256, kvChunk: 64 });
  }, 180_000);
  afterAll(async () => {
    await engine?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const experts = (): ScoredModel[] => DEMO_SKILLS.map((s): ScoredModel => ({ name: s, kind: 'adapter', category: s }));

  it('each expert beats the base on its own suite (perplexity ≤ 0.6×); the 0.25 linear merge keeps part of every skill', async () => {
    const models = [{ name: engine.modelId, kind: 'base' as const }, ...experts(), { name: 'merge', kind: 'adapter' as const }];
    const report = await runEval(engine, { items, models, format: 'chat', checks: false, maxTokens: 1 });
    const row = (name: string) => report.models.find((m) => m.model === name)!;
    for (const skill of DEMO_SKILLS) {
      expect(report.experts[skill]!.model).toBe(skill);
      expect(row(skill).categories[skill]!.perplexity, skill).toBeLessThan(0.6 * row(engine.modelId).categories[skill]!.perplexity);
      expect(row('merge').categories[skill]!.retention, `merge on ${skill}`).toBeGreaterThan(0);
    }
  }, 300_000);

  it("each expert's greedy answers pass at least 60% of its own suite's checks, the base's at most 20%", async () => {
    // measured on the int4 build as served (README): experts 75-93% of 40 items each, the base none
    for (const [skill, own] of byCategory(items)) {
      const report = await runEval(engine, { items: own, models: [{ name: engine.modelId, kind: 'base' }, { name: skill, kind: 'adapter', category: skill }], format: 'chat', checks: true, maxTokens: 96 });
      const rate = (name: string) => report.models.find((m) => m.model === name)!.categories[skill]!.passRate!;
      expect(rate(engine.modelId), `base on ${skill}`).toBeLessThanOrEqual(0.2);
      expect(rate(skill), skill).toBeGreaterThanOrEqual(0.6);
    }
  }, 300_000);
});
