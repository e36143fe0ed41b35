// The scoring kernel (score.onnx through ScoreRunner) against a plain reference: full logits from the float64
// reference forward pass, log-softmax in JS, the reference tokens' log-probs summed. Rows of different lengths and
// adapters share padded runs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from '../../src/util/onnxruntime.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors.js';
import { buildModel, checkManifest, type ModelManifest } from '../../src/inference/builder/index.js';
import { ScoreRunner, checkScoreRow, planScorePasses, tokensForLogitBudget, type ScoreRowInput } from '../../src/inference/engine/scorer.js';
import { LLAMA_CONFIG, randomCheckpointTensors, randomLora, readCheckpointTensors, writeCheckpoint } from '../inference/checkpoints.js';
import { referenceLogits, type ReferenceLora } from '../inference/reference.js';
import { loraPool, rowFactors } from '../inference/runner.js';

/** Σ log softmax(logits_t)[ids[t+1]] over the scored tokens, in float64. */
function referenceLogprobSum(logits: Float64Array[], ids: readonly number[], targetStart: number): number {
  let sum = 0;
  for (let t = targetStart - 1; t < ids.length - 1; t++) {
    const row = logits[t]!;
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - max);
    sum += row[ids[t + 1]!]! - max - Math.log(z);
  }
  return sum;
}

describe('planScorePasses', () => {
  it('puts rows of similar length together within the limits, each row once', () => {
    const lengths = [5, 40, 7, 38, 6, 100, 39];
    const passes = planScorePasses(lengths, { maxBatch: 3, maxTokens: 120 });
    expect(passes.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    for (const pass of passes) {
      expect(pass.length).toBeLessThanOrEqual(3);
      const width = Math.max(...pass.map((i) => lengths[i]!));
      if (pass.length > 1) expect(pass.length * width).toBeLessThanOrEqual(120);
    }
    expect(passes[0]).toEqual([5]); // 100 tokens: alone (two would be 200 > 120)
    expect(passes[1]).toEqual([1, 6, 3]); // the ~40-token rows share a run
  });

  it('keeps to the adapters a run may hold, and plans adapters in groups that load once', () => {
    const lengths = [10, 10, 10, 10, 10, 10, 9, 9];
    const keys = ['a', 'b', null, 'c', 'a', 'b', 'c', null];
    const passes = planScorePasses(lengths, { maxBatch: 8, maxTokens: 1000 }, { keys, maxAdapters: 2 });
    // group 1: a, b and the base rows; group 2: c
    expect(passes).toEqual([[0, 1, 2, 4, 5, 7], [3, 6]]);
    const tight = planScorePasses(lengths, { maxBatch: 8, maxTokens: 1000 }, { keys: ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b'], maxAdapters: 3 });
    for (const pass of tight) expect(new Set(pass.map((i) => ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b'][i])).size).toBeLessThanOrEqual(3);
    expect(planScorePasses(lengths, { maxBatch: 3, maxTokens: 1000 }, { keys, maxAdapters: 2 })).toEqual(
      planScorePasses(lengths, { maxBatch: 3, maxTokens: 1000 }, { keys, maxAdapters: 2 }),
    );
  });

  it('derives tokens per run from a logits budget', () => {
    expect(tokensForLogitBudget(128_256, 256 * 1024 ** 2)).toBe(261);
    expect(tokensForLogitBudget(1e9, 1)).toBe(1);
  });

  it('refuses rows with nothing to score or too long for the model', () => {
    expect(() => checkScoreRow({ ids: [1, 2], targetStart: 2, slot: 0 }, 64)).toThrow(InvalidInputError);
    expect(() => checkScoreRow({ ids: [1, 2], targetStart: 0, slot: 0 }, 64)).toThrow(InvalidInputError);
    expect(() => checkScoreRow({ ids: new Array(65).fill(1), targetStart: 3, slot: 0 }, 64)).toThrow(/64 positions/);
    expect(() => checkScoreRow({ ids: [1, 2, 3], targetStart: 1, slot: 0 }, 64)).not.toThrow();
  });
});

describe('ScoreRunner', () => {
  const cfg = LLAMA_CONFIG;
  let root: string;
  let manifest: ModelManifest;
  let runner: ScoreRunner;
  let weights: Map<string, Float32Array>;
  const adapters: ReferenceLora[] = [
    randomLora(cfg, ['self_attn.q_proj', 'self_attn.v_proj'], 4, 8, 31),
    randomLora(cfg, ['self_attn.o_proj'], 2, 2, 32, [1]),
  ];

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-scorer-'));
    const ckpt = path.join(root, 'ckpt');
    await writeCheckpoint(ckpt, cfg, randomCheckpointTensors(cfg, 7));
    weights = await readCheckpointTensors(ckpt);
    const built = await buildModel(ckpt, { dataDir: path.join(root, 'data'), dtype: 'fp32', maxRank: 4, slots: 3 });
    manifest = built.manifest;
    const session = await ort.InferenceSession.create(path.join(built.dir, manifest.graphs.score!.file), {
      intraOpNumThreads: 1,
      logSeverityLevel: 3,
    });
    checkManifest(session, manifest, 'score');
    runner = new ScoreRunner(session, manifest);
  });
  afterAll(async () => {
    await runner?.release();
    await rm(root, { recursive: true, force: true });
  });

  it('matches log-probs summed from full reference logits, rows of any length and adapter in one padded run', async () => {
    const vocab = cfg.vocab_size as number;
    const seq = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (seed * 31 + i * 17 + ((i * i) % 7)) % vocab);
    const rows: ScoreRowInput[] = [
      { ids: seq(12, 1), targetStart: 5, slot: 0 },
      { ids: seq(30, 2), targetStart: 20, slot: 1 },
      { ids: seq(7, 3), targetStart: 1, slot: 2 },
      { ids: seq(19, 4), targetStart: 18, slot: 1 },
    ];
    const lora = loraPool(
      { numLayers: 2, numKvHeads: 2, headDim: 16, vocabSize: vocab, lora: manifest.lora.inputs },
      adapters,
      manifest.lora.maxRank,
    );
    const results = await runner.run(rows, rowFactors(lora, rows.map((r) => r.slot)));
    const tensor = (name: string) => weights.get(name);
    rows.forEach((row, i) => {
      const adapter = row.slot === 0 ? undefined : adapters[row.slot - 1];
      const expected = referenceLogprobSum(referenceLogits(cfg, tensor, row.ids, adapter), row.ids, row.targetStart);
      expect(results[i]!.tokens).toBe(row.ids.length - row.targetStart);
      expect(Math.abs(results[i]!.logprobSum - expected) / Math.abs(expected)).toBeLessThan(1e-4);
    });

    // the same rows alone give the same numbers: padding and neighbours do not leak into a row
    for (const [i, row] of rows.entries()) {
      const [alone] = await runner.run([row], rowFactors(lora, [row.slot]));
      expect(alone!.logprobSum).toBeCloseTo(results[i]!.logprobSum, 4);
    }
  });
});
