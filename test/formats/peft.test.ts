import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConflictError, InvalidFileError, UnsupportedError } from '../../src/errors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/formats/dtype.js';
import {
  inspectAdapter,
  moduleHyperparameters,
  parseAdapterConfig,
  readAdapter,
  targetsModule,
  writeAdapter,
  type LoraAdapter,
  type LoraModule,
} from '../../src/formats/peft.js';
import { readSafetensorsHeader, writeSafetensors, type TensorToWrite } from '../../src/formats/safetensors.js';
import { fixture, fixturesSkipReason, haveFixtures } from '../helpers/fixtures.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'lf-peft-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (name = 'a') => path.join(root, `${n++}-${name}`);

function ramp(count: number, seed: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * 0.37 + seed) * 0.1);
}

const BASE_CONFIG = { peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'], base_model_name_or_path: 'tiny/llama', task_type: 'CAUSAL_LM' };

/** An adapter directory from a config and tensors (name → shape), with `base_model.model.` prefixed unless told. */
async function adapterDir(config: object, tensors: Record<string, number[]>, options: { prefix?: string; dtype?: 'F32' | 'F16' } = {}): Promise<string> {
  const dir = fresh();
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(config));
  const list: TensorToWrite[] = Object.entries(tensors).map(([name, shape], i) => ({
    name: `${options.prefix ?? 'base_model.model.'}${name}`,
    dtype: options.dtype ?? 'F32',
    shape,
    data: ramp(shape.reduce((a, b) => a * b, 1), i),
  }));
  await writeSafetensors(path.join(dir, 'adapter_model.safetensors'), list, { format: 'pt' });
  return dir;
}

const qv = (layer: number, r = 2, hidden = 6, kv = 4) => ({
  [`model.layers.${layer}.self_attn.q_proj.lora_A.weight`]: [r, hidden],
  [`model.layers.${layer}.self_attn.q_proj.lora_B.weight`]: [hidden, r],
  [`model.layers.${layer}.self_attn.v_proj.lora_A.weight`]: [r, hidden],
  [`model.layers.${layer}.self_attn.v_proj.lora_B.weight`]: [kv, r],
});

async function refusal(dir: string): Promise<Error> {
  const err = await readAdapter(dir).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

describe('PEFT config rules', () => {
  const cfg = (extra: object) => parseAdapterConfig({ ...BASE_CONFIG, ...extra }, 'adapter_config.json');

  it('gives each module the first matching rank_pattern / alpha_pattern key, as get_pattern_key does', () => {
    const config = cfg({ rank_pattern: { q_proj: 4, 'layers.1.self_attn.q_proj': 8, 'layers\\.[23]\\..*v_proj': 3 }, alpha_pattern: { 'model.layers.0.self_attn.q_proj': 16 } });
    expect(moduleHyperparameters(config, 'model.layers.0.self_attn.q_proj')).toEqual({ rank: 4, alpha: 16, scaling: 4 });
    expect(moduleHyperparameters(config, 'model.layers.1.self_attn.q_proj').rank).toBe(4); // "q_proj" comes first and matches
    expect(moduleHyperparameters(config, 'model.layers.2.self_attn.v_proj')).toEqual({ rank: 3, alpha: 4, scaling: 4 / 3 });
    expect(moduleHyperparameters(config, 'model.layers.4.self_attn.v_proj')).toEqual({ rank: 2, alpha: 4, scaling: 2 });
    expect(moduleHyperparameters(config, 'model.layers.0.self_attn.xq_proj').rank).toBe(2); // keys match whole name parts
  });

  it('uses alpha/sqrt(r) with use_rslora', () => {
    expect(moduleHyperparameters(cfg({ r: 16, lora_alpha: 8, use_rslora: true }), 'a.q_proj').scaling).toBe(2);
  });

  it('matches target_modules as PEFT does: suffixes, full regex, layers_to_transform, exclude_modules', () => {
    const name = 'model.layers.3.self_attn.q_proj';
    expect(targetsModule(cfg({}), name)).toBe(true);
    expect(targetsModule(cfg({ target_modules: ['proj'] }), name)).toBe(false);
    expect(targetsModule(cfg({ target_modules: '.*\\.(q|v)_proj' }), name)).toBe(true);
    expect(targetsModule(cfg({ target_modules: 'q_proj' }), name)).toBe(false); // a string is a full match
    expect(targetsModule(cfg({ layers_to_transform: [0, 1] }), name)).toBe(false);
    expect(targetsModule(cfg({ layers_to_transform: 3 }), name)).toBe(true);
    expect(targetsModule(cfg({ layers_to_transform: [3], layers_pattern: 'blocks' }), name)).toBe(false);
    expect(targetsModule(cfg({ exclude_modules: ['layers.3.self_attn.q_proj'] }), name)).toBe(false);
  });

  it('names the bad field, and refuses regexes that could take exponential time', () => {
    expect(() => cfg({ r: '8' })).toThrow('adapter_config.json: "r" expected number, received string (found "8")');
    expect(() => cfg({ target_modules: [1] })).toThrow(InvalidFileError);
    expect(() => cfg({ rank_pattern: { q_proj: 0 } })).toThrow(/rank_pattern\.q_proj/);
    expect(() => cfg({ target_modules: '(a+)+' })).toThrow(UnsupportedError);
    expect(() => cfg({ rank_pattern: { '(unclosed': 4 } })).toThrow(/is not a regular expression/);
    expect(() => cfg({ bias: 'all' })).toThrow(/bias: "all" trains the base model's biases/);
    expect(() => cfg({ lora_bias: true })).toThrow(UnsupportedError);
    expect(() => cfg({ peft_type: 'IA3' })).toThrow(/this is a IA3 adapter/);
  });
});

describe('reading adapters', () => {
  it('reads factors, embedding LoRA (no .weight suffix) and modules_to_save tensors', async () => {
    const dir = await adapterDir(
      { ...BASE_CONFIG, target_modules: ['q_proj', 'v_proj', 'embed_tokens'], modules_to_save: ['lm_head'] },
      {
        ...qv(0),
        'model.embed_tokens.lora_embedding_A': [2, 10],
        'model.embed_tokens.lora_embedding_B': [6, 2],
        'lm_head.weight': [10, 6],
      },
    );
    const adapter = await readAdapter(dir);
    expect([...adapter.modules.keys()]).toEqual(['model.embed_tokens', 'model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj']);
    expect(adapter.modules.get('model.embed_tokens')).toMatchObject({ kind: 'embedding', rank: 2, inFeatures: 10, outFeatures: 6, scaling: 2 });
    expect(adapter.modules.get('model.layers.0.self_attn.v_proj')).toMatchObject({ kind: 'linear', inFeatures: 6, outFeatures: 4 });
    expect(adapter.savedModules.get('lm_head.weight')).toMatchObject({ shape: [10, 6], dtype: 'F32' });
    expect(adapter.warnings).toEqual([]);
  });

  it('sorts modules naturally and infers target_modules when the config has none', async () => {
    const dir = await adapterDir({ ...BASE_CONFIG, target_modules: null }, { ...qv(10), ...qv(2) });
    const summary = await inspectAdapter(dir);
    expect(summary.modules.map((m) => m.name)).toEqual([
      'model.layers.2.self_attn.q_proj',
      'model.layers.2.self_attn.v_proj',
      'model.layers.10.self_attn.q_proj',
      'model.layers.10.self_attn.v_proj',
    ]);
    expect(summary.config.targetModules).toEqual(['q_proj', 'v_proj']);
    expect(summary.layers).toEqual([2, 10]);
    expect(summary.parameters).toBe(2 * (12 + 12 + 12 + 8));
  });

  it('accepts keys saved without the base_model.model. prefix', async () => {
    const dir = await adapterDir(BASE_CONFIG, qv(0), { prefix: '' });
    expect((await readAdapter(dir)).modules.size).toBe(2);
  });

  it('warns when target_modules would not load some modules in PEFT', async () => {
    const dir = await adapterDir({ ...BASE_CONFIG, target_modules: ['q_proj'] }, qv(0));
    expect((await readAdapter(dir)).warnings[0]).toMatch(/does not match 1 module\(s\) in the weights, which PEFT would ignore when loading: "model.layers.0.self_attn.v_proj"/);
  });

  it('refuses keys that are neither LoRA nor modules_to_save, naming them', async () => {
    const dir = await adapterDir(BASE_CONFIG, { ...qv(0), 'model.norm.weight': [6], 'lm_head.weight': [4, 6] });
    expect((await refusal(dir)).message).toBe(
      `${dir}/adapter_model.safetensors: 2 tensor(s) are neither LoRA factors nor modules_to_save tensors: "base_model.model.model.norm.weight", "base_model.model.lm_head.weight"`,
    );
  });

  it('refuses factors whose rank disagrees with the config or with each other, and unpaired factors', async () => {
    const wrongR = await adapterDir({ ...BASE_CONFIG, r: 8 }, qv(0));
    expect((await refusal(wrongR)).message).toMatch(
      /module "model.layers.0.self_attn.q_proj": the factors have rank 2 but adapter_config.json says r = 8; the config does not belong to these weights/,
    );
    const wrongPattern = await adapterDir({ ...BASE_CONFIG, rank_pattern: { v_proj: 4 } }, qv(0));
    expect((await refusal(wrongPattern)).message).toMatch(/"model.layers.0.self_attn.v_proj": the factors have rank 2 but adapter_config.json says rank_pattern gives 4/);
    const mismatch = await adapterDir(BASE_CONFIG, { 'm.q_proj.lora_A.weight': [2, 6], 'm.q_proj.lora_B.weight': [6, 3] });
    expect((await refusal(mismatch)).message).toMatch(/module "m.q_proj": lora_A.weight \[2, 6\] has rank 2 but lora_B.weight \[6, 3\] has rank 3/);
    const unpaired = await adapterDir(BASE_CONFIG, { 'm.q_proj.lora_A.weight': [2, 6] });
    expect((await refusal(unpaired)).message).toMatch(/module "m.q_proj" has lora_A.weight but no lora_B.weight/);
  });

  it('refuses DoRA weights, lora_B biases, convolution LoRA and quantized factors', async () => {
    const dora = await adapterDir(BASE_CONFIG, { ...qv(0), 'model.layers.0.self_attn.q_proj.lora_magnitude_vector': [6] });
    expect(await refusal(dora)).toBeInstanceOf(UnsupportedError);
    expect((await refusal(dora)).message).toMatch(/is a DoRA magnitude vector/);
    const bias = await adapterDir(BASE_CONFIG, { ...qv(0), 'model.layers.0.self_attn.q_proj.lora_B.bias': [6] });
    expect((await refusal(bias)).message).toMatch(/lora_B bias/);
    const conv = await adapterDir({ ...BASE_CONFIG, target_modules: ['conv'] }, { 'x.conv.lora_A.weight': [2, 3, 1, 1], 'x.conv.lora_B.weight': [4, 2, 1, 1] });
    expect((await refusal(conv)).message).toMatch(/not convolution LoRA/);
  });

  it('refuses pickle weights with a one-line conversion recipe, and says what is missing', async () => {
    const dir = fresh();
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(BASE_CONFIG));
    writeFileSync(path.join(dir, 'adapter_model.bin'), 'pickle');
    const err = await refusal(dir);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect(err.message).toBe(
      `${dir}/adapter_model.bin is a PyTorch pickle, which loraforge does not load (unpickling runs code); convert it in that directory with: ` +
        `python -c "import torch; from safetensors.torch import save_file; save_file(torch.load('adapter_model.bin', map_location='cpu'), 'adapter_model.safetensors', metadata={'format': 'pt'})"`,
    );
    await expect(readAdapter(path.join(root, 'nope'))).rejects.toThrow(/no such directory/);
    await expect(readAdapter(path.join(dir, 'adapter_config.json'))).rejects.toThrow(/is a file; give the adapter directory/);
    writeFileSync(path.join(dir, 'adapter_config.json'), '{"r": 4,');
    await expect(readAdapter(dir)).rejects.toThrow(/adapter_config.json: the file is not valid JSON/);
  });
});

function module(name: string, rank: number, inF: number, outF: number, alpha: number, seed: number, kind: LoraModule['kind'] = 'linear'): LoraModule {
  return { name, kind, rank, alpha, scaling: alpha / rank, inFeatures: inF, outFeatures: outF, A: ramp(rank * inF, seed), B: ramp(outF * rank, seed + 0.5) };
}

/** Bitwise equality of two float arrays (vitest's deep equality is far too slow for millions of elements). */
function expectSameArray(got: Float32Array, want: Float32Array, label: string): void {
  expect(got.length, label).toBe(want.length);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  const i = a.findIndex((x, k) => x !== b[k]);
  expect(i === -1 ? 'identical' : `${label}[${i}]: ${got[i]} != ${want[i]}`).toBe('identical');
}

function expectSameModules(got: LoraAdapter, want: LoraAdapter, round: (x: Float32Array) => Float32Array = (x) => x): void {
  expect([...got.modules.keys()].sort()).toEqual([...want.modules.keys()].sort());
  for (const [name, m] of want.modules) {
    const g = got.modules.get(name)!;
    expect({ ...g, A: undefined, B: undefined }).toEqual({ ...m, A: undefined, B: undefined });
    expectSameArray(g.A, round(m.A), `${name}.A`);
    expectSameArray(g.B, round(m.B), `${name}.B`);
  }
}

describe('writing adapters', () => {
  it('round-trips mixed ranks, alphas, embedding LoRA and saved tensors through a config PEFT reads the same way', async () => {
    const config = parseAdapterConfig({ ...BASE_CONFIG, target_modules: ['q_proj'], modules_to_save: null, peft_version: '0.17.0' }, 'x');
    const modules = [
      module('model.layers.0.self_attn.q_proj', 4, 6, 6, 8, 1),
      module('model.layers.0.self_attn.v_proj', 2, 6, 4, 8, 2),
      module('model.layers.1.self_attn.q_proj', 4, 6, 6, 8, 3),
      module('model.layers.1.self_attn.v_proj', 4, 6, 4, 16, 4),
      module('model.layers.11.self_attn.v_proj', 4, 6, 4, 8, 5),
      module('model.embed_tokens', 3, 10, 6, 3, 6, 'embedding'),
    ];
    const adapter: LoraAdapter = {
      config,
      modules: new Map(modules.map((m) => [m.name, m])),
      savedModules: new Map([['score.weight', { name: 'score.weight', dtype: 'F32', shape: [2, 6], data: ramp(12, 9) }]]),
      dtype: 'F32',
      warnings: [],
    };
    const dir = fresh('mixed');
    const { weightsSha256 } = await writeAdapter(dir, adapter, { extraFiles: { 'merge-report.json': '{"ok":true}' }, sha256: true });
    expect(readdirSync(dir).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'merge-report.json']);
    expect(weightsSha256).toBe(createHash('sha256').update(readFileSync(path.join(dir, 'adapter_model.safetensors'))).digest('hex'));

    const text = readFileSync(path.join(dir, 'adapter_config.json'), 'utf8');
    const json = JSON.parse(text);
    const sortedDeep = (v: unknown): boolean =>
      Array.isArray(v) ? v.every(sortedDeep) : v && typeof v === 'object' ? Object.keys(v).join() === Object.keys(v).sort().join() && Object.values(v).every(sortedDeep) : true;
    expect(sortedDeep(json)).toBe(true); // as json.dumps(sort_keys=True, indent=2)
    expect(text).toBe(`${JSON.stringify(json, null, 2)}\n`);
    expect(json).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, use_rslora: false, use_dora: false, base_model_name_or_path: 'tiny/llama', modules_to_save: ['score'] });
    expect(json.peft_version).toBeUndefined();
    expect(json.rank_pattern).toEqual({ embed_tokens: 3, 'layers\\.0\\.self_attn\\.v_proj': 2 });
    expect(json.alpha_pattern).toEqual({ embed_tokens: 3, 'layers\\.1\\.self_attn\\.v_proj': 16 });
    // modules target_modules would miss are added by full name, so PEFT keeps their weights
    expect(json.target_modules).toEqual(['q_proj', 'model.embed_tokens', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.v_proj', 'model.layers.11.self_attn.v_proj']);

    const header = await readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors'));
    expect(header.metadata).toEqual({ format: 'pt' });
    expect([...header.tensors.keys()]).toContain('base_model.model.model.embed_tokens.lora_embedding_A');
    expect([...header.tensors.keys()]).toContain('base_model.model.model.layers.11.self_attn.v_proj.lora_B.weight');
    expect([...header.tensors.keys()]).toContain('base_model.model.score.weight');

    const back = await readAdapter(dir);
    expectSameModules(back, adapter);
    expect(back.savedModules.get('score.weight')!.data).toEqual(ramp(12, 9));
    expect(back.warnings).toEqual([]);
  });

  it('keeps rsLoRA scaling exact', async () => {
    const config = parseAdapterConfig({ ...BASE_CONFIG, use_rslora: true }, 'x');
    const m = { ...module('a.q_proj', 4, 3, 3, 6, 1), scaling: 6 / Math.sqrt(4) };
    const dir = fresh('rslora');
    await writeAdapter(dir, { config, modules: new Map([[m.name, m]]), savedModules: new Map(), dtype: 'F32', warnings: [] });
    const back = await readAdapter(dir);
    expect(back.modules.get('a.q_proj')).toMatchObject({ rank: 4, alpha: 6, scaling: 3 });
  });

  it('refuses to replace an existing directory unless asked, and leaves nothing half-written', async () => {
    const config = parseAdapterConfig(BASE_CONFIG, 'x');
    const m = module('a.q_proj', 2, 3, 3, 4, 1);
    const adapter: LoraAdapter = { config, modules: new Map([[m.name, m]]), savedModules: new Map(), dtype: 'F32', warnings: [] };
    const dir = fresh('exists');
    await writeAdapter(dir, adapter);
    await expect(writeAdapter(dir, adapter)).rejects.toThrow(ConflictError);
    await writeAdapter(dir, adapter, { overwrite: true });
    const broken = { ...adapter, modules: new Map([[m.name, { ...m, A: new Float32Array(1) }]]) };
    const other = fresh('broken');
    await expect(writeAdapter(other, broken)).rejects.toThrow(/module "a.q_proj": A holds 1 values, not rank×in = 2×3/);
    expect(readdirSync(root).filter((f) => f.includes('broken'))).toEqual([]);
  });
});

describe.skipIf(!haveFixtures)('round trips of real adapters', () => {
  const cases = ['SmolLM-135M-Instruct/tfm-hitesh-medai-5epochs', 'gpt2/deepbiolab-gpt2-classification-peft', 'gpt2/si-rui126-text-gen-app-first-two-layers'];
  for (const rel of cases) {
    it(`rewrites ${rel} with PEFT's own key names and reloads it identically (F32, F16, BF16)`, async () => {
      const src = fixture(`peft/${rel}`);
      const adapter = await readAdapter(src);
      const out = fresh('f32');
      await writeAdapter(out, adapter);
      const original = await readSafetensorsHeader(path.join(src, 'adapter_model.safetensors'));
      const written = await readSafetensorsHeader(path.join(out, 'adapter_model.safetensors'));
      expect([...written.tensors.keys()].sort()).toEqual([...original.tensors.keys()].sort());
      for (const [k, t] of original.tensors) expect(written.tensors.get(k)!.shape).toEqual(t.shape);
      const back = await readAdapter(out);
      expectSameModules(back, adapter);
      expect(back.config).toMatchObject({ r: adapter.config.r, loraAlpha: adapter.config.loraAlpha, fanInFanOut: adapter.config.fanInFanOut, taskType: adapter.config.taskType });
      expect([...back.savedModules.keys()]).toEqual([...adapter.savedModules.keys()]);

      for (const [dtype, round] of [
        ['F16', (x: Float32Array) => f16ToF32(f32ToF16(x))],
        ['BF16', (x: Float32Array) => bf16ToF32(f32ToBf16(x))],
      ] as const) {
        const dir = fresh(dtype);
        await writeAdapter(dir, adapter, { dtype });
        const half = await readAdapter(dir);
        expect(half.dtype).toBe(dtype);
        expectSameModules(half, adapter, round);
        const again = fresh(`${dtype}-again`);
        await writeAdapter(again, half);
        expectSameModules(await readAdapter(again), half);
      }
    });
  }
});
if (!haveFixtures) it.skip(fixturesSkipReason, () => undefined);
