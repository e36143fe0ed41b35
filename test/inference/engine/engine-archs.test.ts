// The serving engine's core (scheduler, JS-owned KV cache, adapter pool) on built graphs of the new architectures,
// checked against the float64 reference: greedy tokens and logprobs; a ragged batch of rows on different adapters
// with chunked prefill and KV growth, past each model's sliding window.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../../src/inference/builder/index.js';
import { makeDemoTokenizer } from '../../../src/inference/demo-tokenizer.js';
import { CoreHarness, type TestModel } from './model.js';
import { GEMMA3_CONFIG, GPT2_CONFIG, PHI3_CONFIG, QWEN3_CONFIG, TINY_HEAD_CONFIG, randomCheckpointTensors, randomLora, readCheckpointTensors, writeCheckpoint } from '../checkpoints.js';
import { argmax, referenceLogits, type RawConfig, type ReferenceLora } from '../reference.js';

const CASES: { name: string; cfg: RawConfig; modules: string[] }[] = [
  { name: 'gpt2', cfg: GPT2_CONFIG, modules: ['attn.c_attn', 'attn.c_proj', 'mlp.c_proj'] },
  { name: 'gemma3', cfg: GEMMA3_CONFIG, modules: ['self_attn.q_proj', 'self_attn.v_proj', 'mlp.down_proj'] },
  { name: 'phi3', cfg: PHI3_CONFIG, modules: ['self_attn.qkv_proj', 'mlp.gate_up_proj'] },
  { name: 'qwen3', cfg: QWEN3_CONFIG, modules: ['self_attn.q_proj', 'self_attn.k_proj'] },
  { name: 'head_dim 4 (plain attention)', cfg: TINY_HEAD_CONFIG, modules: ['self_attn.q_proj', 'self_attn.o_proj'] },
];

const prompt = (seed: number, length: number, vocab: number) => Array.from({ length }, (_, i) => 3 + ((seed * 131 + i * 71) % (vocab - 3)));

const tok = makeDemoTokenizer();

describe.each(CASES)('engine core on a $name graph', ({ cfg: base, modules }) => {
  let model: TestModel;
  let harness: CoreHarness;
  // the demo tokenizer's vocabulary: the engine needs a tokenizer, these tests feed ids
  const cfg: RawConfig = { ...base, vocab_size: tok.vocabSize };
  const vocab = tok.vocabSize;

  beforeAll(async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'lf-archs-'));
    const checkpointDir = path.join(root, 'checkpoint');
    await writeCheckpoint(checkpointDir, cfg, randomCheckpointTensors(cfg, 17));
    writeFileSync(path.join(checkpointDir, 'tokenizer.json'), JSON.stringify(tok.tokenizerJson));
    writeFileSync(path.join(checkpointDir, 'tokenizer_config.json'), JSON.stringify(tok.tokenizerConfig));
    const built = await buildModel(checkpointDir, { dataDir: path.join(root, 'data'), dtype: 'fp32', slots: 3, maxRank: 4, heads: ['generate'], targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] });
    model = {
      cfg,
      checkpointDir,
      modelDir: built.dir,
      tensors: await readCheckpointTensors(checkpointDir),
      adapters: [randomLora(cfg, modules, 4, 8, 201), randomLora(cfg, modules.slice(0, 1), 2, 4, 202)],
      eosTokenId: -1,
      root,
    };
    // small chunks: long prompts are prefilled in pieces and the cache grows while rows decode
    harness = await CoreHarness.open(model, { prefillChunk: 5, kvChunk: 4 });
  });
  afterAll(async () => {
    await harness.close();
    rmSync(model.root, { recursive: true, force: true });
  });

  function referenceGreedy(p: number[], n: number, lora?: ReferenceLora): { tokens: number[]; logprobs: number[] } {
    const seq = [...p];
    const tokens: number[] = [];
    const logprobs: number[] = [];
    for (let i = 0; i < n; i++) {
      const last = referenceLogits(cfg, (name) => model.tensors.get(name), seq, lora).at(-1)!;
      const t = argmax(last);
      const max = Math.max(...last);
      logprobs.push(last[t]! - max - Math.log(last.reduce((s, v) => s + Math.exp(v - max), 0)));
      tokens.push(t);
      seq.push(t);
    }
    return { tokens, logprobs };
  }

  it('greedy tokens and logprobs match the float64 reference, on an adapter', async () => {
    const p = prompt(1, 7, vocab);
    const { result } = harness.submit([{ prompt: p, adapter: 0 }], { maxTokens: 8, logprobs: 0 });
    await result.done;
    expect(result.error).toBeNull();
    const ref = referenceGreedy(p, 8, model.adapters[0]);
    expect(result.tokens[0]).toEqual(ref.tokens);
    result.logprobs[0]!.forEach((lp, i) => expect(Math.abs(lp - ref.logprobs[i]!)).toBeLessThan(1e-4));
  });

  it('a ragged batch on two adapters and none, one prompt longer than a prefill chunk, gives the reference', async () => {
    const rows = [{ prompt: prompt(2, 3, vocab) }, { prompt: prompt(3, 11, vocab), adapter: 0 }, { prompt: prompt(4, 6, vocab), adapter: 1 }];
    const batch = harness.submit(rows, { maxTokens: 6 });
    await batch.result.done;
    expect(batch.result.error).toBeNull();
    for (const [i, row] of rows.entries()) {
      expect(batch.result.tokens[i]).toEqual(referenceGreedy(row.prompt, 6, row.adapter === undefined ? undefined : model.adapters[row.adapter]).tokens);
    }
  });
});
