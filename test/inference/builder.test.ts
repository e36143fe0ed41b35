// The builder's graph against an independent float64 reference (test/inference/reference.ts), through real
// onnxruntime-node sessions: every supported architecture, with and without adapters, batched prefill, cached
// decode steps and chunked prefill; per-row adapters in one batch; the scoring head; int4; caching; refusals.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from '../../src/util/onnxruntime.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, InvalidFileError, UnsupportedError } from '../../src/errors.js';
import { buildModel, checkManifest, type LoraTarget, type ModelManifest } from '../../src/inference/builder/index.js';
import { normalizeConfig } from '../../src/inference/builder/config.js';
import { OnnxModel } from '../../src/formats/onnx.js';
import { writeAdapter, type LoraAdapter } from '../../src/formats/peft.js';
import { foldIntoCheckpoint } from '../../src/merge/fold.js';
import { dequantizeInt4, quantizeInt4 } from '../../src/inference/builder/quantize.js';
import { adapterConfig } from '../helpers/adapters.js';
import { fixture, fixturesSkipReason, haveFixtures } from '../helpers/fixtures.js';
import {
  GEMMA2_CONFIG,
  GEMMA3_CONFIG,
  GPT2_CONFIG,
  LLAMA_CONFIG,
  MISTRAL_CONFIG,
  PHI3_CONFIG,
  QWEN2_CONFIG,
  QWEN3_CONFIG,
  TINY_HEAD_CONFIG,
  randomCheckpointTensors,
  randomLora,
  readCheckpointTensors,
  writeCheckpoint,
} from './checkpoints.js';
import { argmax, referenceLogits, relativeError, type RawConfig, type ReferenceLora } from './reference.js';
import { GraphRunner, loraPool, rowFactors } from './runner.js';

const SESSION: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, logSeverityLevel: 3 };
/** fp32 graph vs float64 reference: the bound; observed values are around 1e-6 */
const FP32_TOLERANCE = 1e-4;

let root: string;
let dataDir: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'loraforge-builder-'));
  dataDir = path.join(root, 'data');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A test adapter as the PEFT adapter formats/peft writes. */
function peftAdapter(lora: ReferenceLora, fanInFanOut = false): LoraAdapter {
  const first = [...lora.values()][0]!;
  const modules = new Map(
    [...lora].map(([name, m]) => [
      name,
      { name, kind: 'linear' as const, rank: m.rank, alpha: m.scaling * m.rank, scaling: m.scaling, inFeatures: m.A.length / m.rank, outFeatures: m.B.length / m.rank, A: m.A, B: m.B },
    ]),
  );
  return {
    config: adapterConfig({
      r: first.rank,
      loraAlpha: first.scaling * first.rank,
      targetModules: [...new Set([...lora.keys()].map((n) => n.split('.').at(-1)!))],
      fanInFanOut,
    }),
    modules,
    savedModules: new Map(),
    dtype: 'F32',
    warnings: [],
  };
}

function runnerShape(manifest: ModelManifest) {
  const { numLayers, numKvHeads, headDim, vocabSize } = { ...manifest.kvCache, vocabSize: manifest.config.vocabSize };
  return { numLayers, numKvHeads, headDim, vocabSize, lora: manifest.lora.inputs };
}

async function openSession(dir: string, manifest: ModelManifest, head: 'generate' | 'score' = 'generate'): Promise<ort.InferenceSession> {
  const session = await ort.InferenceSession.create(path.join(dir, manifest.graphs[head]!.file), SESSION);
  checkManifest(session, manifest, head);
  return session;
}

interface Case {
  name: string;
  cfg: RawConfig;
  dtype?: 'F32' | 'BF16';
  maxShardBytes?: number;
  /** the modules of the two test adapters (PEFT names, relative to a layer) */
  adapterModules?: [string[], string[]];
}

const LLAMA_MODULES: [string[], string[]] = [
  ['self_attn.q_proj', 'self_attn.v_proj', 'mlp.down_proj'],
  ['self_attn.k_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj'],
];

const CASES: Case[] = [
  { name: 'llama (GQA, llama3 rope scaling, untied)', cfg: LLAMA_CONFIG },
  { name: 'mistral (bf16, sharded, sliding window, linear rope scaling, head_dim)', cfg: MISTRAL_CONFIG, dtype: 'BF16', maxShardBytes: 40_000 },
  { name: 'qwen2 (q/k/v bias, tied, theta 1e6, `dtype` key)', cfg: QWEN2_CONFIG, dtype: 'BF16' },
  { name: 'qwen3 (q/k norms, head_dim > hidden/heads, tied)', cfg: QWEN3_CONFIG, dtype: 'BF16' },
  {
    name: 'phi3 (fused qkv_proj and gate_up_proj with LoRA on them, sliding window)',
    cfg: PHI3_CONFIG,
    dtype: 'BF16',
    adapterModules: [['self_attn.qkv_proj', 'mlp.down_proj'], ['self_attn.o_proj', 'mlp.gate_up_proj']],
  },
  { name: 'gemma3 (scaled embeddings, (1+w) norms ×4, q/k norms, GELU, local and global layers)', cfg: GEMMA3_CONFIG, dtype: 'BF16' },
  { name: 'gemma2 (attention and final logit soft-caps, alternating windows)', cfg: GEMMA2_CONFIG },
  {
    name: 'gpt2 (learned positions, LayerNorm, Conv1D, fused c_attn, tied, no transformer. prefix)',
    cfg: GPT2_CONFIG,
    adapterModules: [['attn.c_attn', 'mlp.c_proj'], ['attn.c_proj', 'mlp.c_fc']],
  },
  { name: 'head_dim 4 (plain attention subgraph, GQA 2:1, sliding window)', cfg: TINY_HEAD_CONFIG },
];

describe.each(CASES)('fp32 graph matches the float64 reference: $name', ({ cfg, dtype, maxShardBytes, adapterModules }) => {
  let weights: Map<string, Float32Array>;
  let manifest: ModelManifest;
  let dir: string;
  let session: ort.InferenceSession;
  const modules = adapterModules ?? LLAMA_MODULES;
  const adapters: ReferenceLora[] = [randomLora(cfg, modules[0], 4, 8, 11), randomLora(cfg, modules[1], 2, 4, 12)];

  beforeAll(async () => {
    const ckpt = path.join(root, `ckpt-${String(cfg.model_type)}-${String(cfg.hidden_size ?? cfg.n_embd)}`);
    await writeCheckpoint(ckpt, cfg, randomCheckpointTensors(cfg, 7), { dtype, maxShardBytes });
    weights = await readCheckpointTensors(ckpt);
    ({ dir, manifest } = await buildModel(ckpt, {
      dataDir,
      dtype: 'fp32',
      targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'],
      maxRank: 4,
      slots: 3,
    }));
    session = await openSession(dir, manifest);
  });

  const reference = (tokens: number[], adapter?: ReferenceLora) => referenceLogits(cfg, (n) => weights.get(n), tokens, adapter);

  it('batched right-padded prefill, rows on two adapters and on none, then cached decode steps', async () => {
    const runner = new GraphRunner(session, runnerShape(manifest), loraPool(runnerShape(manifest), adapters, 4), 3, 16);
    const prompts = [
      [5, 9, 17, 3, 44, 2, 8],
      [1, 2, 3],
      [100, 42, 7, 7, 9],
    ];
    const slots = [1, 0, 2];
    const rowAdapters = [adapters[0], undefined, adapters[1]];
    const seqs = prompts.map((p) => [...p]);
    const errors: number[] = [];
    (await runner.prefill(prompts, slots)).forEach((logits, b) => errors.push(relativeError(logits, reference(seqs[b]!, rowAdapters[b]).at(-1)!)));
    for (let step = 0; step < 3; step++) {
      const next = [11 + step, 22 + step, 33 + step];
      next.forEach((t, b) => seqs[b]!.push(t));
      (await runner.decode(next)).forEach((logits, b) => errors.push(relativeError(logits, reference(seqs[b]!, rowAdapters[b]).at(-1)!)));
    }
    expect(Math.max(...errors)).toBeLessThan(FP32_TOLERANCE);
  });

  it('rows that share an adapter, fed its factors once ([1, in, r], broadcast over the batch)', async () => {
    const runner = new GraphRunner(session, runnerShape(manifest), loraPool(runnerShape(manifest), adapters, 4), 2, 16, true);
    const prompts = [
      [5, 9, 17, 3],
      [100, 42, 7, 7, 9, 1],
    ];
    const seqs = prompts.map((p) => [...p]);
    const errors = (await runner.prefill(prompts, [2, 2])).map((logits, b) => relativeError(logits, reference(seqs[b]!, adapters[1]).at(-1)!));
    const next = [11, 22];
    next.forEach((t, b) => seqs[b]!.push(t));
    (await runner.decode(next)).forEach((logits, b) => errors.push(relativeError(logits, reference(seqs[b]!, adapters[1]).at(-1)!)));
    expect(Math.max(...errors)).toBeLessThan(FP32_TOLERANCE);
  });

  it('single-row chunked prefill on top of a cache', async () => {
    const runner = new GraphRunner(session, runnerShape(manifest), loraPool(runnerShape(manifest), adapters, 4), 1, 16);
    await runner.prefill([[3, 1, 4, 1]], [2]);
    const logits = await runner.extend([5, 9, 2, 6]);
    expect(relativeError(logits, reference([3, 1, 4, 1, 5, 9, 2, 6], adapters[1]).at(-1)!)).toBeLessThan(FP32_TOLERANCE);
  });

  it('the score graph returns log p(target) at every position', async () => {
    const score = await openSession(dir, manifest, 'score');
    const tokens = [7, 3, 9, 12, 5];
    const targets = [3, 9, 12, 5, 1];
    const shape = runnerShape(manifest);
    const feeds: Record<string, ort.Tensor> = rowFactors(loraPool(shape, adapters, 4), [1]);
    feeds.input_ids = new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [1, tokens.length]);
    feeds.target_ids = new ort.Tensor('int64', BigInt64Array.from(targets.map(BigInt)), [1, tokens.length]);
    feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from(tokens.map((_, i) => BigInt(i))), [1, tokens.length]);
    feeds.seqlens_k = new ort.Tensor('int32', Int32Array.from([tokens.length - 1]), [1]);
    feeds.total_seq_len = new ort.Tensor('int32', Int32Array.from([tokens.length]), []);
    for (let l = 0; l < shape.numLayers; l++) {
      const empty = new ort.Tensor('float32', new Float32Array(0), [1, shape.numKvHeads, 0, shape.headDim]);
      feeds[`past_key_values.${l}.key`] = empty;
      feeds[`past_key_values.${l}.value`] = empty;
    }
    const out = await score.run(feeds);
    expect(out.target_logprobs!.dims).toEqual([1, tokens.length]);
    const ref = reference(tokens, adapters[0]).map((logits, t) => {
      const max = Math.max(...logits);
      const lse = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
      return logits[targets[t]!]! - lse;
    });
    expect(relativeError(out.target_logprobs!.data as Float32Array, ref)).toBeLessThan(FP32_TOLERANCE);
  });
});

describe('batching and adapters', () => {
  const cfg = LLAMA_CONFIG;
  let weights: Map<string, Float32Array>;
  let ckpt: string;
  let manifest: ModelManifest;
  let session: ort.InferenceSession;
  const a1 = randomLora(cfg, ['self_attn.q_proj', 'self_attn.v_proj'], 8, 16, 21);
  const a2 = randomLora(cfg, ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj'], 4, 4, 22);
  const a3 = randomLora(cfg, ['self_attn.o_proj'], 2, 2, 23, [1]);

  beforeAll(async () => {
    ckpt = path.join(root, 'ckpt-batching');
    await writeCheckpoint(ckpt, cfg, randomCheckpointTensors(cfg, 99));
    weights = await readCheckpointTensors(ckpt);
    let dir: string;
    ({ dir, manifest } = await buildModel(ckpt, { dataDir, dtype: 'fp32', maxRank: 8, slots: 4 }));
    session = await openSession(dir, manifest);
  });

  it('one batch with rows on different adapters and one on none equals the rows run one at a time', async () => {
    const shape = runnerShape(manifest);
    const pool = loraPool(shape, [a1, a2, a3], 8);
    const prompts = [[4, 8, 15, 16], [23, 42], [1, 1, 2, 3, 5, 8], [13, 21, 34]];
    const slots = [1, 0, 3, 2];
    const batched = new GraphRunner(session, shape, pool, 4, 12);
    const together = [await batched.prefill(prompts, slots), await batched.decode([7, 7, 7, 7]), await batched.decode([9, 8, 7, 6])];
    for (let b = 0; b < prompts.length; b++) {
      const single = new GraphRunner(session, shape, pool, 1, 12);
      const alone = [await single.prefill([prompts[b]!], [slots[b]!]), await single.decode([7]), await single.decode([[9, 8, 7, 6][b]!])];
      for (let step = 0; step < 3; step++) expect(relativeError(together[step]![b]!, alone[step]![0]!)).toBeLessThan(1e-5);
    }
  });

  it('LoRA fed as inputs equals LoRA folded into the base weights (merge/fold.ts)', async () => {
    const adapterDir = path.join(root, 'adapter-a2');
    await writeAdapter(adapterDir, peftAdapter(a2), { dtype: 'F32' });
    const folded = path.join(root, 'ckpt-folded');
    await foldIntoCheckpoint(ckpt, adapterDir, folded);
    const built = await buildModel(folded, { dataDir, dtype: 'fp32', maxRank: 8, slots: 4 });
    const foldedSession = await openSession(built.dir, built.manifest);
    const shape = runnerShape(manifest);
    const prompt = [[3, 14, 15, 92, 65, 35]];
    const withInputs = new GraphRunner(session, shape, loraPool(shape, [a2], 8), 1, 10);
    const withFold = new GraphRunner(foldedSession, shape, loraPool(shape, [], 8), 1, 10);
    expect(relativeError((await withInputs.prefill(prompt, [1]))[0]!, (await withFold.prefill(prompt, [0]))[0]!)).toBeLessThan(FP32_TOLERANCE);
    expect(relativeError((await withInputs.decode([8]))[0]!, (await withFold.decode([8]))[0]!)).toBeLessThan(FP32_TOLERANCE);
  });

  it('rank-0 pool tensors give the base model exactly', async () => {
    const shape = runnerShape(manifest);
    const base = new GraphRunner(session, shape, loraPool(shape, [a1], 8), 1, 8);
    const rank0 = new GraphRunner(session, shape, loraPool(shape, [a1], 0), 1, 8);
    const a = (await base.prefill([[5, 6, 7]], [0]))[0]!;
    const b = (await rank0.prefill([[5, 6, 7]], [0]))[0]!;
    expect(relativeError(b, a)).toBe(0);
    expect(relativeError(a, referenceLogits(cfg, (n) => weights.get(n), [5, 6, 7]).at(-1)!)).toBeLessThan(FP32_TOLERANCE);
  });
});

/** The weights an int4 build computes with: every projection, the embedding (when hidden is a multiple of 32)
 * and the head quantized and dequantized; Conv1D weights quantized as [out, in]; position tables as they are. */
function int4Weights(cfg: RawConfig, weights: Map<string, Float32Array>, seed: number, blockSize = 32): Map<string, Float32Array> {
  const shapes = new Map(randomCheckpointTensors(cfg, seed).map((t) => [t.name, t.shape]));
  const roundTrip = (w: Float32Array, n: number, k: number) => dequantizeInt4(quantizeInt4(w, n, k, blockSize));
  const transpose = (w: Float32Array, r: number, c: number) => Float32Array.from({ length: w.length }, (_, i) => w[(i % r) * c + Math.floor(i / r)]!);
  const out = new Map<string, Float32Array>();
  const embedName = cfg.model_type === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight';
  for (const [name, w] of weights) {
    const shape = shapes.get(name)!;
    if (shape.length !== 2 || name === 'wpe.weight') out.set(name, w);
    else if (name === embedName && shape[1]! % blockSize !== 0) {
      // the table stays fp32 for the lookup, the tied head is quantized
      out.set(name, w);
      out.set('lm_head.weight', roundTrip(w, shape[0]!, shape[1]!));
    } else if (cfg.model_type === 'gpt2' && name !== embedName) {
      const [i, o] = shape as [number, number];
      out.set(name, transpose(roundTrip(transpose(w, i, o), o, i), o, i));
    } else out.set(name, roundTrip(w, shape[0]!, shape[1]!));
  }
  return out;
}

const INT4_CASES: (Case & { blockSize?: number })[] = [
  { name: 'llama', cfg: LLAMA_CONFIG },
  { name: 'llama, blocks of 64', cfg: LLAMA_CONFIG, blockSize: 64 },
  { name: 'qwen3', cfg: QWEN3_CONFIG },
  { name: 'phi3 (LoRA on fused qkv)', cfg: PHI3_CONFIG, adapterModules: [['self_attn.qkv_proj', 'mlp.gate_up_proj'], []] },
  { name: 'gemma3 (hidden 48: fp32 table, int4 head)', cfg: GEMMA3_CONFIG },
  { name: 'gpt2 (Conv1D)', cfg: GPT2_CONFIG, adapterModules: [['attn.c_attn', 'mlp.c_fc'], []] },
];

describe.each(INT4_CASES)('int4 with fp32 activations equals the reference run on the dequantized weights: $name', ({ cfg, adapterModules, blockSize = 32 }) => {
  it('prefill and a decode step, with an adapter', async () => {
    const ckpt = path.join(root, `ckpt-int4-${String(cfg.model_type)}-${blockSize}`);
    await writeCheckpoint(ckpt, cfg, randomCheckpointTensors(cfg, 5));
    const dequantized = int4Weights(cfg, await readCheckpointTensors(ckpt), 5, blockSize);
    const targets: LoraTarget[] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
    const { dir, manifest } = await buildModel(ckpt, { dataDir, dtype: 'int4', accuracyLevel: 0, int4BlockSize: blockSize, maxRank: 4, slots: 2, targets });
    const shape = runnerShape(manifest);
    const adapter = randomLora(cfg, (adapterModules ?? [['self_attn.q_proj', 'self_attn.o_proj']])[0], 4, 8, 3);
    const runner = new GraphRunner(await openSession(dir, manifest), shape, loraPool(shape, [adapter], 4), 1, 12);
    const tokens = [9, 8, 7, 6, 5];
    const logits = (await runner.prefill([tokens], [1]))[0]!;
    expect(relativeError(logits, referenceLogits(cfg, (n) => dequantized.get(n), tokens, adapter).at(-1)!)).toBeLessThan(FP32_TOLERANCE);
    const next = (await runner.decode([4]))[0]!;
    expect(relativeError(next, referenceLogits(cfg, (n) => dequantized.get(n), [...tokens, 4], adapter).at(-1)!)).toBeLessThan(FP32_TOLERANCE);
    expect(manifest.quantization).toEqual({ bits: 4, blockSize, accuracyLevel: 0, scheme: 'symmetric-rtn' });
  });
});

const EVERY_LLAMA_MODULE = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];

describe.each([
  { name: 'llama', cfg: LLAMA_CONFIG },
  { name: 'qwen2 (q/k/v bias)', cfg: QWEN2_CONFIG },
])('q/k/v and gate/up fused at build time equal the separate projections: $name', ({ cfg }) => {
  let ckpt: string;
  let weights: Map<string, Float32Array>;
  const everywhere = randomLora(cfg, EVERY_LLAMA_MODULE, 4, 8, 61);
  const onlyK = randomLora(cfg, ['self_attn.k_proj', 'mlp.up_proj'], 2, 4, 62);
  const prompt = [7, 3, 9, 12, 5, 40];

  beforeAll(async () => {
    ckpt = path.join(root, `ckpt-fuse-${String(cfg.model_type)}`);
    await writeCheckpoint(ckpt, cfg, randomCheckpointTensors(cfg, 17));
    weights = await readCheckpointTensors(ckpt);
  });

  async function open(options: { dtype: 'fp32' | 'int4'; accuracyLevel?: number; fuseProjections: boolean }) {
    const built = await buildModel(ckpt, { dataDir, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], maxRank: 4, slots: 3, ...options });
    return { ...built, session: await openSession(built.dir, built.manifest), onnx: await readFile(path.join(built.dir, 'model.onnx')) };
  }

  /** `steps` greedy tokens after the prompt on `slot`, with every step's logits. */
  async function greedy(session: ort.InferenceSession, manifest: ModelManifest, slot: number, steps: number, forced?: number[]) {
    const shape = runnerShape(manifest);
    const runner = new GraphRunner(session, shape, loraPool(shape, [everywhere, onlyK], 4), 1, 24);
    const logits = [(await runner.prefill([prompt], [slot]))[0]!];
    const tokens: number[] = [];
    for (let i = 0; i < steps; i++) {
      tokens.push(argmax(logits.at(-1)!));
      logits.push((await runner.decode([forced?.[i] ?? tokens.at(-1)!]))[0]!);
    }
    return { tokens, logits };
  }

  it('fp32: the same logits (and the reference) and greedy tokens, with an adapter on every target and on one part', async () => {
    const separate = await open({ dtype: 'fp32', fuseProjections: false });
    const fused = await open({ dtype: 'fp32', fuseProjections: true });
    // the fused weights are in the graph, and the LoRA inputs and every graph input are as before
    expect(fused.onnx.includes('loraforge_fused_qkv')).toBe(true);
    expect(fused.onnx.includes('loraforge_fused_gate_up')).toBe(true);
    expect(separate.onnx.includes('loraforge_fused_')).toBe(false);
    expect(fused.manifest.lora).toEqual(separate.manifest.lora);
    expect(fused.manifest.graphs.generate.inputs).toEqual(separate.manifest.graphs.generate.inputs);
    for (const [slot, adapter] of [[0, undefined], [1, everywhere], [2, onlyK]] as const) {
      const a = await greedy(separate.session, separate.manifest, slot, 6);
      const b = await greedy(fused.session, fused.manifest, slot, 6);
      expect(b.tokens).toEqual(a.tokens);
      for (let i = 0; i < a.logits.length; i++) expect(relativeError(b.logits[i]!, a.logits[i]!)).toBeLessThan(FP32_TOLERANCE);
      const expected = referenceLogits(cfg, (n) => weights.get(n), [...prompt, ...b.tokens], adapter);
      expect(relativeError(b.logits.at(-1)!, expected.at(-1)!)).toBeLessThan(FP32_TOLERANCE);
      // each adapter moves the logits well beyond the tolerance, so a delta on the wrong slice would show
      if (adapter) expect(relativeError(b.logits[0]!, (await greedy(fused.session, fused.manifest, 0, 0)).logits[0]!)).toBeGreaterThan(1e-2);
    }
  });

  it('int4: the same quantized weights, so the same logits with fp32 and with int8 activations', async () => {
    for (const accuracyLevel of [0, 4]) {
      const separate = await open({ dtype: 'int4', accuracyLevel, fuseProjections: false });
      const fused = await open({ dtype: 'int4', accuracyLevel, fuseProjections: true });
      for (const slot of [0, 1]) {
        const a = await greedy(separate.session, separate.manifest, slot, 6);
        // teacher-forced on the separate build's tokens, so one close call does not change every later step
        const b = await greedy(fused.session, fused.manifest, slot, 6, a.tokens);
        expect(b.tokens).toEqual(a.tokens);
        for (let i = 0; i < a.logits.length; i++) expect(relativeError(b.logits[i]!, a.logits[i]!)).toBeLessThan(FP32_TOLERANCE);
      }
    }
  });
});

describe('gpt2: LoRA on Conv1D layers', () => {
  it('fed as inputs equals the adapter folded into the checkpoint (merge/fold.ts adds (B·A)ᵀ to [in, out] weights)', async () => {
    const cfg = GPT2_CONFIG;
    const ckpt = path.join(root, 'ckpt-gpt2-fold-base');
    await writeCheckpoint(ckpt, cfg, randomCheckpointTensors(cfg, 41));
    const lora = randomLora(cfg, ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'], 4, 8, 42);
    const adapterDir = path.join(root, 'adapter-gpt2');
    await writeAdapter(adapterDir, peftAdapter(lora, true), { dtype: 'F32' });
    const folded = path.join(root, 'ckpt-gpt2-folded');
    await foldIntoCheckpoint(ckpt, adapterDir, folded);
    const options = { dataDir, dtype: 'fp32' as const, targets: ['q', 'o', 'up', 'down'] as LoraTarget[], maxRank: 4, slots: 2 };
    const base = await buildModel(ckpt, options);
    const fold = await buildModel(folded, options);
    const shape = runnerShape(base.manifest);
    const prompt = [[3, 14, 15, 92, 65, 35]];
    const withInputs = new GraphRunner(await openSession(base.dir, base.manifest), shape, loraPool(shape, [lora], 4), 1, 10);
    const withFold = new GraphRunner(await openSession(fold.dir, fold.manifest), shape, loraPool(shape, [], 4), 1, 10);
    expect(relativeError((await withInputs.prefill(prompt, [1]))[0]!, (await withFold.prefill(prompt, [0]))[0]!)).toBeLessThan(FP32_TOLERANCE);
    expect(relativeError((await withInputs.decode([8]))[0]!, (await withFold.decode([8]))[0]!)).toBeLessThan(FP32_TOLERANCE);
  });
});

describe('int4', () => {
  const cfg = LLAMA_CONFIG;
  let ckpt: string;

  beforeAll(async () => {
    ckpt = path.join(root, 'ckpt-int4');
    await writeCheckpoint(ckpt, cfg, randomCheckpointTensors(cfg, 5));
  });

  it('stores 4-bit weights: the int4 dir is much smaller than the fp32 one', async () => {
    const fp32 = await buildModel(ckpt, { dataDir, dtype: 'fp32', heads: ['generate'] });
    const int4 = await buildModel(ckpt, { dataDir, dtype: 'int4', heads: ['generate'] });
    const size = (m: ModelManifest) => m.files.bytes['model.onnx']!;
    expect(size(int4.manifest)).toBeLessThan(size(fp32.manifest) / 4);
  });
});

describe('build cache, files and refusals', () => {
  let ckpt: string;
  beforeAll(async () => {
    ckpt = path.join(root, 'ckpt-cache');
    await writeCheckpoint(ckpt, QWEN2_CONFIG, randomCheckpointTensors(QWEN2_CONFIG, 1));
  });

  it('rebuilding an unchanged checkpoint is a no-op; other options get another dir', async () => {
    const first = await buildModel(ckpt, { dataDir, dtype: 'fp32' });
    expect(first.cached).toBe(false);
    const again = await buildModel(ckpt, { dataDir, dtype: 'fp32' });
    expect(again).toMatchObject({ dir: first.dir, cached: true });
    expect((await stat(path.join(first.dir, 'model.onnx'))).mtimeMs).toBe((await stat(path.join(again.dir, 'model.onnx'))).mtimeMs);
    const other = await buildModel(ckpt, { dataDir, dtype: 'fp32', targets: ['q', 'v'] });
    expect(other.dir).not.toBe(first.dir);
    expect(other.manifest.lora.inputs.map((l) => l.target)).toEqual(['q', 'v', 'q', 'v']);
    // no temp dirs left behind
    expect((await readdir(path.join(dataDir, 'models'))).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('reports progress, and a cancelled build leaves nothing behind', async () => {
    const phases = new Set<string>();
    let converted = 0;
    const controller = new AbortController();
    const cancelled = buildModel(ckpt, {
      dataDir,
      dtype: 'int4',
      slots: 3,
      signal: controller.signal,
      onProgress: (p) => {
        phases.add(p.phase);
        if (p.phase === 'convert' && p.done === 5) controller.abort();
        if (p.phase === 'convert') converted = p.done;
      },
    });
    await expect(cancelled).rejects.toThrow(CancelledError);
    expect(converted).toBe(5);
    expect((await readdir(path.join(dataDir, 'models'))).filter((n) => n.startsWith('.'))).toEqual([]);
    const done = await buildModel(ckpt, { dataDir, dtype: 'int4', slots: 3, onProgress: (p) => phases.add(p.phase) });
    expect(done.cached).toBe(false);
    expect([...phases]).toEqual(['fingerprint', 'convert', 'graph', 'finish']);
  });

  it('clears what a killed build of the same model left behind', async () => {
    const first = await buildModel(ckpt, { dataDir, dtype: 'fp32', slots: 5 });
    await rm(first.dir, { recursive: true });
    const deadPid = spawnSync('true').pid;
    const stale = path.join(path.dirname(first.dir), `.${path.basename(first.dir)}.tmp-${deadPid}-0badc0de`);
    await mkdir(stale);
    const again = await buildModel(ckpt, { dataDir, dtype: 'fp32', slots: 5 });
    expect(again).toMatchObject({ dir: first.dir, cached: false });
    await expect(stat(stale)).rejects.toThrow(/ENOENT/);
  });

  it("removes this checkpoint's builds by older builder versions once a new one is made, and nothing else", async () => {
    const models = path.join(dataDir, 'models');
    const first = await buildModel(ckpt, { dataDir, dtype: 'fp32', slots: 6 });
    await rm(first.dir, { recursive: true });
    const [hash] = path.basename(first.dir).split('-');
    const version = Number(/-b(\d+)-/.exec(path.basename(first.dir))![1]);
    const older = [`${hash}-b${version - 1}-fp32-0000aaaa`, `${hash}-b1-int4-0000bbbb`];
    const kept = [`${hash}-b${version + 1}-fp32-0000cccc`, `0123456789abcdef-b${version - 1}-fp32-0000dddd`];
    for (const name of [...older, ...kept]) {
      await mkdir(path.join(models, name));
      await writeFile(path.join(models, name, 'model.onnx'), 'x');
    }
    const again = await buildModel(ckpt, { dataDir, dtype: 'fp32', slots: 6 });
    expect(again.cached).toBe(false);
    expect(again.removed.sort()).toEqual([...older].sort());
    const left = await readdir(models);
    for (const name of older) expect(left).not.toContain(name);
    for (const name of kept) expect(left).toContain(name);
    expect((await buildModel(ckpt, { dataDir, dtype: 'fp32', slots: 6 })).removed).toEqual([]);
    for (const name of kept) await rm(path.join(models, name), { recursive: true });
  });

  it('writes weights to an external data file when large, and both graphs share it', async () => {
    const inline = await buildModel(ckpt, { dataDir, dtype: 'fp32' });
    const ext = await buildModel(ckpt, { dataDir, dtype: 'fp32', externalDataThreshold: 0 });
    expect(ext.manifest.files.externalData).toBe('model.onnx.data');
    expect(inline.manifest.files.externalData).toBeNull();
    expect(ext.manifest.files.bytes['model.onnx']!).toBeLessThan(100_000);
    const shape = runnerShape(ext.manifest);
    const a = new GraphRunner(await openSession(ext.dir, ext.manifest), shape, loraPool(shape, [], 1), 1, 8);
    const b = new GraphRunner(await openSession(inline.dir, inline.manifest), shape, loraPool(shape, [], 1), 1, 8);
    expect(relativeError((await a.prefill([[1, 2, 3]], [0]))[0]!, (await b.prefill([[1, 2, 3]], [0]))[0]!)).toBe(0);
    await openSession(ext.dir, ext.manifest, 'score');
  });

  it('refuses other architectures by name, and broken checkpoints with the tensor at fault', async () => {
    const neox = path.join(root, 'ckpt-neox');
    await writeCheckpoint(neox, { architectures: ['GPTNeoXForCausalLM'], model_type: 'gpt_neox' }, [{ name: 'embed_in.weight', shape: [2, 2], data: new Float32Array(4) }]);
    await expect(buildModel(neox, { dataDir })).rejects.toThrow(UnsupportedError);
    await expect(buildModel(neox, { dataDir })).rejects.toThrow(
      /^architecture GPTNeoXForCausalLM is not supported: loraforge builds LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, GPT2LMHeadModel checkpoints$/,
    );

    const gpt2 = path.join(root, 'ckpt-gpt2-positions');
    await writeCheckpoint(gpt2, GPT2_CONFIG, randomCheckpointTensors(GPT2_CONFIG, 1));
    await expect(buildModel(gpt2, { dataDir, maxPositions: 65 })).rejects.toThrow("maxPositions 65 is beyond this gpt2 model's learned positions (64)");
    await expect(buildModel(gpt2, { dataDir, targets: ['gate'] })).rejects.toThrow('LoRA targets gate: a gpt2 model has none of them');
    await expect(buildModel(gpt2, { dataDir, int4BlockSize: 48 })).rejects.toThrow('int4BlockSize must be a power of 2 from 16 to 256, not 48');

    const yarn = path.join(root, 'ckpt-yarn');
    await writeCheckpoint(yarn, { ...LLAMA_CONFIG, rope_scaling: { rope_type: 'yarn', factor: 4 } }, randomCheckpointTensors(LLAMA_CONFIG, 1));
    await expect(buildModel(yarn, { dataDir })).rejects.toThrow(/rope_scaling type "yarn" is not supported/);

    const missing = path.join(root, 'ckpt-missing');
    await writeCheckpoint(missing, LLAMA_CONFIG, randomCheckpointTensors(LLAMA_CONFIG, 1).filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight'));
    await expect(buildModel(missing, { dataDir })).rejects.toThrow(InvalidFileError);
    await expect(buildModel(missing, { dataDir })).rejects.toThrow(/model\.layers\.1\.mlp\.up_proj\.weight is missing/);

    const wrong = path.join(root, 'ckpt-wrong');
    await writeCheckpoint(wrong, { ...LLAMA_CONFIG, intermediate_size: 64 }, randomCheckpointTensors(LLAMA_CONFIG, 1));
    await expect(buildModel(wrong, { dataDir })).rejects.toThrow(/gate_proj\.weight has shape \[96, 64\], config\.json implies \[64, 64\]/);
  });

  it('checkManifest catches a LoRA input hidden by an initializer', async () => {
    const { manifest } = await buildModel(ckpt, { dataDir, dtype: 'fp32' });
    // a real session of a graph whose lora.0.q.A also has an initializer: onnxruntime-node hides it
    const m = new OnnxModel({ opsets: { '': 21 } });
    for (const spec of manifest.graphs.generate.inputs) m.input(spec.name, spec.dtype, spec.shape);
    m.initializer('lora.0.q.A', 'float32', [1, 64, 0], new Float32Array(0));
    m.node('Identity', ['input_ids'], ['logits']);
    m.output('logits', 'int64', ['batch', 'seq']);
    const session = await ort.InferenceSession.create(m.encode(), SESSION);
    expect(session.inputNames).not.toContain('lora.0.q.A');
    expect(() => checkManifest({ inputNames: session.inputNames, outputNames: [...session.outputNames, ...manifest.graphs.generate.outputs.map((o) => o.name)] }, manifest)).toThrow(/LoRA inputs lora\.0\.q\.A are not session inputs/);
  });
});

describe.skipIf(!haveFixtures)(`a real synthetic checkpoint with no "architectures" and "dtype" ${haveFixtures ? '' : fixturesSkipReason}`, () => {
  it('has its config understood, and is served with plain attention for its head size 4', async () => {
    const ckpt = fixture('checkpoints/candle-llama-synthetic-milkdrift');
    const raw = JSON.parse(await readFile(path.join(ckpt, 'config.json'), 'utf8')) as RawConfig;
    expect(raw.architectures).toBeUndefined();
    // config tolerance: model_type instead of architectures, dtype instead of torch_dtype
    expect(normalizeConfig(raw)).toMatchObject({ architecture: 'llama', sourceDtype: 'float32', numLayers: 1, vocabSize: 16, headDim: 4, tieWordEmbeddings: false });
    const { dir, manifest } = await buildModel(ckpt, { dataDir, dtype: 'fp32', maxRank: 2, slots: 2 });
    const weights = await readCheckpointTensors(ckpt);
    const shape = runnerShape(manifest);
    const adapter = randomLora(raw, ['self_attn.q_proj', 'self_attn.v_proj'], 2, 4, 5);
    const runner = new GraphRunner(await openSession(dir, manifest), shape, loraPool(shape, [adapter], 2), 2, 12);
    const prompts = [[3, 1, 4, 1, 5], [9, 2]];
    const reference = (tokens: number[], lora?: ReferenceLora) => referenceLogits(raw, (n) => weights.get(n), tokens, lora).at(-1)!;
    const first = await runner.prefill(prompts, [1, 0]);
    expect(relativeError(first[0]!, reference(prompts[0]!, adapter))).toBeLessThan(FP32_TOLERANCE);
    expect(relativeError(first[1]!, reference(prompts[1]!))).toBeLessThan(FP32_TOLERANCE);
    const next = await runner.decode([6, 7]);
    expect(relativeError(next[0]!, reference([...prompts[0]!, 6], adapter))).toBeLessThan(FP32_TOLERANCE);
    expect(relativeError(next[1]!, reference([...prompts[1]!, 7]))).toBeLessThan(FP32_TOLERANCE);
  });
});
