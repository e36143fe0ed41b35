// On the demo model: experts built to favour each suite's reference text (test/eval/expert.ts) score better than
// the base model on their own category, through the scoring kernel (determinism: eval-run.test.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from '../../src/util/onnxruntime.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { byCategory, loadSuites, type SuiteItem } from '../../src/eval/suite.js';
import { buildModel, type ModelManifest } from '../../src/inference/builder/index.js';
import { makeDemoModel } from '../../src/inference/demo.js';
import { ScoreRunner, planScorePasses, type ScoreRowInput } from '../../src/inference/engine/scorer.js';
import { ModelTokenizer } from '../../src/inference/tokenizer.js';
import { loraPool, rowFactors } from '../inference/runner.js';
import { makeExperts, type Expert } from './expert.js';

describe('experts on the demo model', () => {
  let root: string;
  let manifest: ModelManifest;
  let runner: ScoreRunner;
  let experts: Expert[];
  let items: SuiteItem[];
  let rows: Array<{ ids: number[]; targetStart: number }>;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-experts-'));
    const demo = await makeDemoModel(path.join(root, 'demo'));
    const built = await buildModel(demo.checkpointDir, { dataDir: path.join(root, 'data'), maxRank: 16, slots: 5 });
    manifest = built.manifest;
    items = await loadSuites();
    experts = await makeExperts({ modelDir: built.dir, manifest, checkpointDir: demo.checkpointDir, items, outDir: path.join(root, 'experts') });
    const tokenizer = await ModelTokenizer.load(built.dir);
    rows = items.map((item) => tokenizer.encodeForScoring({ kind: 'chat', messages: [{ role: 'user', content: item.prompt }] }, item.reference));
    const session = await ort.InferenceSession.create(path.join(built.dir, manifest.graphs.score!.file), { intraOpNumThreads: 2, logSeverityLevel: 3 });
    runner = new ScoreRunner(session, manifest);
  });
  afterAll(async () => {
    await runner?.release();
    await rm(root, { recursive: true, force: true });
  });

  /** Mean NLL per item of every (item, slot) row, run in planned passes. */
  async function score(slots: number[]): Promise<number[][]> {
    const shape = { numLayers: manifest.config.numLayers, numKvHeads: 0, headDim: 0, vocabSize: 0, lora: manifest.lora.inputs };
    const lora = loraPool(shape, experts.map((e) => e.lora), manifest.lora.maxRank);
    const all: ScoreRowInput[] = slots.flatMap((slot) => rows.map((r) => ({ ...r, slot })));
    const out = new Array<number>(all.length);
    for (const pass of planScorePasses(all.map((r) => r.ids.length), { maxBatch: 16, maxTokens: 2048 })) {
      const batch = pass.map((i) => all[i]!);
      const results = await runner.run(batch, rowFactors(lora, batch.map((r) => r.slot)));
      pass.forEach((i, k) => (out[i] = -results[k]!.logprobSum / results[k]!.tokens));
    }
    return slots.map((_, s) => out.slice(s * rows.length, (s + 1) * rows.length));
  }

  it('each expert beats the base model on its own category', async () => {
    const [base, ...perExpert] = await score([0, 1, 2, 3, 4]);
    const categories = [...byCategory(items).keys()];
    expect(experts.map((e) => e.category)).toEqual(categories);
    const mean = (nll: number[], category: string) => {
      const idx = items.flatMap((item, i) => (item.category === category ? [i] : []));
      return idx.reduce((s, i) => s + nll[i]!, 0) / idx.length;
    };
    experts.forEach((expert, e) => {
      const own = mean(perExpert[e]!, expert.category);
      const baseOwn = mean(base!, expert.category);
      expect(own, expert.category).toBeLessThan(baseOwn - 0.05);
    });
  });
});
