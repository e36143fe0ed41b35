// Scoring inside the engine core (the worker's scheduler): rows on the base model and on adapters from the slot
// pool, checked against log-probs from the float64 reference's full logits; more adapters than slots; scoring
// interleaved with generation without changing what is generated; cancellation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError } from '../../../src/errors.js';
import { referenceLogits } from '../reference.js';
import { CoreHarness, makeTestModel, removeTestModel, type TestModel } from './model.js';

function referenceSum(model: TestModel, ids: number[], targetStart: number, adapter?: number): number {
  const logits = referenceLogits(model.cfg, (n) => model.tensors.get(n), ids, adapter === undefined ? undefined : model.adapters[adapter]);
  let sum = 0;
  for (let t = targetStart - 1; t < ids.length - 1; t++) {
    const row = logits[t]!;
    const max = Math.max(...row);
    sum += row[ids[t + 1]!]! - max - Math.log(row.reduce((z, v) => z + Math.exp(v - max), 0));
  }
  return sum;
}

const seq = (n: number, seed: number, vocab: number) => Array.from({ length: n }, (_, i) => (seed * 37 + i * 11 + ((i * i) % 5)) % vocab);

describe('scoring in the engine core', () => {
  let model: TestModel;
  beforeAll(async () => {
    model = await makeTestModel({ score: true, slots: 2 });
  });
  afterAll(() => removeTestModel(model));

  it('scores rows on the base model and on more adapters than the pool has slots, as the reference says', async () => {
    // slots: 2 = slot 0 plus one adapter slot, for three adapters: the job runs in several passes and swaps adapters
    const harness = await CoreHarness.open(model, {}, { maxBatch: 4, maxTokens: 64 });
    try {
      const vocab = model.cfg.vocab_size as number;
      const rows = [
        { ids: seq(14, 1, vocab), targetStart: 6 },
        { ids: seq(9, 2, vocab), targetStart: 3, adapter: 0 },
        { ids: seq(20, 3, vocab), targetStart: 10, adapter: 1 },
        { ids: seq(9, 2, vocab), targetStart: 3, adapter: 2 },
        { ids: seq(11, 4, vocab), targetStart: 1, adapter: 0 },
      ];
      const result = await harness.score(rows).result;
      expect(result.passes).toBeGreaterThanOrEqual(3);
      rows.forEach((row, i) => {
        const expected = referenceSum(model, row.ids, row.targetStart, row.adapter);
        expect(result.rows[i]!.tokens).toBe(row.ids.length - row.targetStart);
        expect(Math.abs(result.rows[i]!.logprobSum - expected) / Math.abs(expected), `row ${i}`).toBeLessThan(1e-4);
      });
      expect(harness.core.snapshot().scoreTokens).toBe(rows.reduce((n, r) => n + r.ids.length, 0));
    } finally {
      await harness.close();
    }
  });

  it('takes turns with generation, which generates exactly what it does alone', async () => {
    const harness = await CoreHarness.open(model, {}, { maxBatch: 2, maxTokens: 40 });
    try {
      const vocab = model.cfg.vocab_size as number;
      const prompt = seq(7, 9, vocab);
      const alone = harness.submit([{ prompt }, { prompt, adapter: 0 }], { maxTokens: 12 });
      await alone.result.done;
      const scoreRows = Array.from({ length: 8 }, (_, i) => ({ ids: seq(15, 20 + i, vocab), targetStart: 5, adapter: i % 2 === 0 ? 0 : undefined }));
      const scored = harness.score(scoreRows);
      const together = harness.submit([{ prompt }, { prompt, adapter: 0 }], { maxTokens: 12 });
      const [result] = await Promise.all([scored.result, together.result.done]);
      expect(together.result.tokens).toEqual(alone.result.tokens);
      expect(result.rows).toHaveLength(8);
      expect(result.rows[0]!.logprobSum).toBeCloseTo(referenceSum(model, scoreRows[0]!.ids, 5, 0), 3);
    } finally {
      await harness.close();
    }
  });

  it('a cancelled job fails with CancelledError; a model without a score graph refuses scoring', async () => {
    const harness = await CoreHarness.open(model, {}, { maxBatch: 1, maxTokens: 16 });
    try {
      const vocab = model.cfg.vocab_size as number;
      const job = harness.score(Array.from({ length: 30 }, (_, i) => ({ ids: seq(12, i, vocab), targetStart: 4 })));
      harness.core.cancel(job.id);
      await expect(job.result).rejects.toBeInstanceOf(CancelledError);
    } finally {
      await harness.close();
    }
    const plain = await CoreHarness.open(model);
    try {
      await expect(plain.score([{ ids: [1, 2, 3], targetStart: 1 }]).result).rejects.toThrow(/no score graph/);
    } finally {
      await plain.close();
    }
  });
});
