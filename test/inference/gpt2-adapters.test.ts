// The real GPT-2 adapters of ../shared/fixtures (made by PEFT, fan_in_fan_out Conv1D layers) served the engine's
// way: read by formats/peft, checked and laid out by the engine's prepareAdapter and LoraPool, fed to a built
// GPT-2-shaped graph (768 wide, 2 layers, random weights), against the float64 reference applying them as PEFT does.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from '../../src/util/onnxruntime.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedError } from '../../src/errors.js';
import { readAdapter, type LoraAdapter } from '../../src/formats/peft.js';
import { archSpec, targetOfModule } from '../../src/inference/builder/arch.js';
import { buildModel, checkManifest, type ModelManifest } from '../../src/inference/builder/index.js';
import { LoraPool, prepareAdapter, type LoraSite } from '../../src/inference/engine/lora-pool.js';
import { fixture, fixturesSkipReason, haveFixtures } from '../helpers/fixtures.js';
import { GPT2_CONFIG, randomCheckpointTensors, readCheckpointTensors, writeCheckpoint } from './checkpoints.js';
import { referenceLogits, relativeError, type ReferenceLora } from './reference.js';
import { GraphRunner, poolTensors } from './runner.js';

const CFG = { ...GPT2_CONFIG, n_embd: 768, n_head: 12, n_layer: 2, vocab_size: 64, n_positions: 32, n_ctx: 32 };
const CAUSAL = ['si-rui126-text-gen-app-first-two-layers', 'gurvineet-peft-implementation-causal', 'blackspy369-story-generator'];

describe.skipIf(!haveFixtures)(`real GPT-2 adapters on a built GPT-2 graph ${haveFixtures ? '' : fixturesSkipReason}`, () => {
  let root: string;
  let manifest: ModelManifest;
  let session: ort.InferenceSession;
  let weights: Map<string, Float32Array>;
  let sites: LoraSite[];
  const limits = () => ({ maxRank: 8, targets: manifest.lora.targets, targetOf: (m: string) => targetOfModule(archSpec('gpt2'), m) });

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-gpt2-'));
    const ckpt = path.join(root, 'ckpt');
    await writeCheckpoint(ckpt, CFG, randomCheckpointTensors(CFG, 3));
    weights = await readCheckpointTensors(ckpt);
    let dir: string;
    // the serving default q,k,v,o becomes GPT-2's fused c_attn and attn.c_proj; down adds mlp.c_proj
    ({ dir, manifest } = await buildModel(ckpt, { dataDir: path.join(root, 'data'), dtype: 'fp32', targets: ['q', 'k', 'v', 'o', 'down'], maxRank: 8, slots: 3 }));
    session = await ort.InferenceSession.create(path.join(dir, manifest.graphs.generate.file), { intraOpNumThreads: 1, logSeverityLevel: 3 });
    checkManifest(session, manifest);
    sites = manifest.lora.inputs.map((i) => ({ module: i.module, inFeatures: i.inFeatures, outFeatures: i.outFeatures, inputA: i.a, inputB: i.b }));
  }, 120_000);
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** The adapter's blocks 0-1 (the built model's two layers). */
  const firstTwoLayers = (adapter: LoraAdapter): LoraAdapter => ({
    ...adapter,
    modules: new Map([...adapter.modules].filter(([name]) => /^transformer\.h\.[01]\./.test(name))),
  });

  it('builds q,k,v,o,down as c_attn, attn.c_proj and mlp.c_proj', () => {
    expect(manifest.lora.targets).toEqual(['qkv', 'o', 'down']);
    expect(manifest.lora.inputs.slice(0, 3).map((i) => [i.module, i.inFeatures, i.outFeatures])).toEqual([
      ['transformer.h.0.attn.c_attn', 768, 2304],
      ['transformer.h.0.attn.c_proj', 768, 768],
      ['transformer.h.0.mlp.c_proj', 3072, 768],
    ]);
  });

  it.each(CAUSAL)('%s: logits through the engine pool equal the reference with the adapter', async (name) => {
    const adapter = firstTwoLayers(await readAdapter(fixture(`peft/gpt2/${name}`)));
    const pool = new LoraPool(sites, 3, 8);
    pool.write(1, prepareAdapter(adapter, sites, limits(), name));
    const feeds = poolTensors(pool);
    const shape = { numLayers: 2, numKvHeads: 12, headDim: 64, vocabSize: 64, lora: manifest.lora.inputs };
    const runner = new GraphRunner(session, shape, feeds, 2, 12);
    const lora: ReferenceLora = new Map([...adapter.modules].map(([n, m]) => [n, { A: m.A, B: m.B, rank: m.rank, scaling: m.scaling }]));
    const prompt = [5, 17, 42, 8, 3];
    const [withAdapter, base] = await runner.prefill([prompt, prompt], [1, 0]);
    const reference = referenceLogits(CFG, (n) => weights.get(n), prompt, lora).at(-1)!;
    expect(relativeError(withAdapter!, reference)).toBeLessThan(1e-4);
    // the adapter changes the answer: the check above is not the base model's
    expect(relativeError(base!, reference)).toBeGreaterThan(1e-3);
    const [next] = await runner.decode([9, 9]);
    expect(relativeError(next!, referenceLogits(CFG, (n) => weights.get(n), [...prompt, 9], lora).at(-1)!)).toBeLessThan(1e-4);
  }, 60_000);

  it('refuses a SEQ_CLS adapter carrying a classifier head, and names the target a missing module needs', async () => {
    const seqCls = await readAdapter(fixture('peft/gpt2/sidmahurkar-gpt2-lora'));
    expect(() => prepareAdapter(firstTwoLayers(seqCls), sites, limits(), 'cls')).toThrow(/carries full weights for score\.weight \(modules_to_save\)/);
    const mlp = firstTwoLayers(await readAdapter(fixture('peft/gpt2/gurvineet-peft-implementation-causal')));
    const noDown = manifest.lora.inputs.filter((i) => i.target !== 'down').map((i) => ({ module: i.module, inFeatures: i.inFeatures, outFeatures: i.outFeatures, inputA: i.a, inputB: i.b }));
    expect(() => prepareAdapter(mlp, noDown, { ...limits(), targets: ['qkv', 'o'] }, 'mlp')).toThrow(UnsupportedError);
    expect(() => prepareAdapter(mlp, noDown, { ...limits(), targets: ['qkv', 'o'] }, 'mlp')).toThrow(/transformer\.h\.0\.mlp\.c_proj.*--targets including down/);
    // all twelve blocks on a two-layer model: not this base
    const whole = await readAdapter(fixture('peft/gpt2/gurvineet-peft-implementation-causal'));
    expect(() => prepareAdapter(whole, sites, limits(), 'whole')).toThrow(/transformer\.h\.2\.attn\.c_attn, which the served model does not have/);
  });
});
