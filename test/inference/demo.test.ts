// The demo model: deterministic, real in format (read back by the same readers as downloaded files), built and run
// against the float64 reference with each of its adapters, and int4 against fp32.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from '../../src/util/onnxruntime.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../../src/errors.js';
import { Checkpoint } from '../../src/formats/checkpoint.js';
import { readAdapter } from '../../src/formats/peft.js';
import { buildModel, checkManifest, type ModelManifest } from '../../src/inference/builder/index.js';
import { DEMO_SKILLS, makeDemoModel, type DemoModel } from '../../src/inference/demo.js';
import { ModelTokenizer } from '../../src/inference/tokenizer.js';
import { readCheckpointTensors } from './checkpoints.js';
import { argmax, referenceLogits, relativeError, type RawConfig, type ReferenceLora } from './reference.js';
import { GraphRunner, loraPool, type RunnerShape } from './runner.js';

const SESSION: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, logSeverityLevel: 3 };
const PROMPTS = ['How do I list hidden files?', 'Write a Python function that renames files.', 'The service fails to start. Why?', 'Hello!'];
/** int4 with int8 activations (accuracy_level 4, the default) vs fp32, relative to the largest logit; observed ≤ 2.5e-2 */
const INT4_TOLERANCE = 5e-2;

let root: string;
let demo: DemoModel;
let tokenizer: ModelTokenizer;
let adapters: ReferenceLora[];
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'loraforge-demo-'));
  demo = await makeDemoModel(path.join(root, 'demo'), { seed: 3 });
  tokenizer = await ModelTokenizer.load(demo.checkpointDir);
  adapters = await Promise.all(DEMO_SKILLS.map(async (s) => (await readAdapter(demo.adapterDirs[s])).modules));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const shapeOf = (m: ModelManifest): RunnerShape => ({ ...m.kvCache, vocabSize: m.config.vocabSize, lora: m.lora.inputs });

async function session(dir: string, manifest: ModelManifest): Promise<ort.InferenceSession> {
  const s = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), SESSION);
  checkManifest(s, manifest);
  return s;
}

/** Greedy decoding of `steps` tokens; also returns the logits of every step. */
async function greedy(runner: GraphRunner, prompt: number[], slot: number, steps: number, forced?: number[]) {
  let logits = (await runner.prefill([prompt], [slot]))[0]!;
  const tokens: number[] = [];
  const all: Float32Array[] = [];
  for (let i = 0; i < steps; i++) {
    all.push(logits);
    const next = forced ? forced[i]! : argmax(logits);
    tokens.push(next);
    logits = (await runner.decode([next]))[0]!;
  }
  return { tokens, logits: all };
}

describe('makeDemoModel', () => {
  it('is deterministic from the seed', async () => {
    const again = await makeDemoModel(path.join(root, 'again'), { seed: 3 });
    const other = await makeDemoModel(path.join(root, 'other'), { seed: 4 });
    const bytes = (d: DemoModel, f: string) => readFile(path.join(d.checkpointDir, f));
    expect((await bytes(demo, 'model.safetensors')).equals(await bytes(again, 'model.safetensors'))).toBe(true);
    expect((await bytes(demo, 'model.safetensors')).equals(await bytes(other, 'model.safetensors'))).toBe(false);
    for (const s of DEMO_SKILLS) {
      const a = await readFile(path.join(demo.adapterDirs[s], 'adapter_model.safetensors'));
      expect(a.equals(await readFile(path.join(again.adapterDirs[s], 'adapter_model.safetensors')))).toBe(true);
    }
  });

  it('writes a real checkpoint, tokenizer and four PEFT adapters', async () => {
    expect((await readdir(demo.checkpointDir)).sort()).toEqual(
      ['README.md', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].sort(),
    );
    const checkpoint = await Checkpoint.open(demo.checkpointDir);
    expect(checkpoint.info('model.layers.0.self_attn.q_proj.weight')).toMatchObject({ dtype: 'BF16', shape: [128, 128] });
    await checkpoint.close();
    expect(tokenizer.hasChatTemplate).toBe(true);
    const ids = tokenizer.encodeChat([{ role: 'user', content: PROMPTS[0]! }]);
    expect(ids.filter((id) => id === tokenizer.bosTokenId)).toHaveLength(1);
    expect(tokenizer.eosTokenIds).toHaveLength(2);
    for (const [i, s] of DEMO_SKILLS.entries()) {
      const adapter = await readAdapter(demo.adapterDirs[s]);
      expect(adapter.config.baseModel).toBe('loraforge/demo-llama');
      expect(adapter.modules.size).toBe(16);
      expect(adapters[i]!.size).toBe(16);
    }
    await expect(makeDemoModel(path.join(root, 'demo'))).rejects.toThrow(ConflictError);
  });
});

describe('the demo model built', () => {
  let cfg: RawConfig;
  let weights: Map<string, Float32Array>;
  let fp32: { dir: string; manifest: ModelManifest };
  let fp32Session: ort.InferenceSession;

  beforeAll(async () => {
    cfg = JSON.parse(await readFile(path.join(demo.checkpointDir, 'config.json'), 'utf8')) as RawConfig;
    weights = await readCheckpointTensors(demo.checkpointDir);
    fp32 = await buildModel(demo.checkpointDir, { dataDir: path.join(root, 'data'), dtype: 'fp32', maxRank: 16, slots: 5 });
    fp32Session = await session(fp32.dir, fp32.manifest);
  });

  it('copies the tokenizer files next to the graph', async () => {
    expect(fp32.manifest.files.tokenizer.sort()).toEqual(['generation_config.json', 'tokenizer.json', 'tokenizer_config.json']);
    const copied = await ModelTokenizer.load(fp32.dir);
    expect(copied.encodeChat([{ role: 'user', content: 'hi' }])).toEqual(tokenizer.encodeChat([{ role: 'user', content: 'hi' }]));
    expect(fp32.manifest.baseModel).toBe('loraforge/demo-llama');
  });

  it('fp32 matches the reference on a chat prompt with each adapter and without, through cached decode steps', async () => {
    const shape = shapeOf(fp32.manifest);
    const prompt = tokenizer.encodeChat([{ role: 'user', content: PROMPTS[1]! }]);
    for (let slot = 0; slot <= DEMO_SKILLS.length; slot++) {
      const runner = new GraphRunner(fp32Session, shape, loraPool(shape, adapters, 16), 1, 64);
      const { tokens, logits } = await greedy(runner, prompt, slot, 3);
      const ref = referenceLogits(cfg, (n) => weights.get(n), [...prompt, ...tokens.slice(0, -1)], slot === 0 ? undefined : adapters[slot - 1]);
      for (let i = 0; i < 3; i++) expect(relativeError(logits[i]!, ref[prompt.length - 1 + i]!)).toBeLessThan(1e-4);
    }
  });

  it('int4 stores the demo weights exactly: with fp32 activations it gives fp32 greedy tokens', async () => {
    const int4 = await buildModel(demo.checkpointDir, { dataDir: path.join(root, 'data'), dtype: 'int4', accuracyLevel: 0, maxRank: 16, slots: 5 });
    const s = await session(int4.dir, int4.manifest);
    const shape = shapeOf(fp32.manifest);
    for (const text of PROMPTS) {
      const prompt = tokenizer.encodeChat([{ role: 'user', content: text }]);
      for (const slot of [0, 2]) {
        const a = await greedy(new GraphRunner(fp32Session, shape, loraPool(shape, adapters, 16), 1, 64), prompt, slot, 10);
        const b = await greedy(new GraphRunner(s, shape, loraPool(shape, adapters, 16), 1, 64), prompt, slot, 10);
        expect(b.tokens).toEqual(a.tokens);
        for (let i = 0; i < 10; i++) expect(relativeError(b.logits[i]!, a.logits[i]!)).toBeLessThan(1e-4);
      }
    }
  });

  it('int4 with int8 activations (the default) stays within the stated tolerance of fp32', async () => {
    const int4 = await buildModel(demo.checkpointDir, { dataDir: path.join(root, 'data'), dtype: 'int4', maxRank: 16, slots: 5 });
    expect(int4.manifest.quantization?.accuracyLevel).toBe(4);
    const s = await session(int4.dir, int4.manifest);
    const shape = shapeOf(fp32.manifest);
    let steps = 0;
    let agree = 0;
    for (const text of PROMPTS) {
      const prompt = tokenizer.encodeChat([{ role: 'user', content: text }]);
      for (let slot = 0; slot <= DEMO_SKILLS.length; slot++) {
        const a = await greedy(new GraphRunner(fp32Session, shape, loraPool(shape, adapters, 16), 1, 64), prompt, slot, 8);
        // teacher-forced on fp32's tokens, so one close call does not change every later comparison
        const b = await greedy(new GraphRunner(s, shape, loraPool(shape, adapters, 16), 1, 64), prompt, slot, 8, a.tokens);
        for (let i = 0; i < 8; i++) {
          expect(relativeError(b.logits[i]!, a.logits[i]!)).toBeLessThan(INT4_TOLERANCE);
          steps++;
          if (argmax(b.logits[i]!) === a.tokens[i]) agree++;
        }
      }
    }
    // a flip needs fp32's top-2 margin to be inside the int8-activation noise: observed 155 of 160 agree
    expect(agree / steps).toBeGreaterThanOrEqual(0.9);
  });
});
