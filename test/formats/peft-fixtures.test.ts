// Every adapter under ../shared/fixtures/peft (written by PEFT, from public repositories) is either loaded and
// checked against its files, or refused with the exact message. A fixture without an expectation fails the test.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidFileError, UnsupportedError } from '../../src/errors.js';
import { readJsonObject } from '../../src/formats/json-file.js';
import { inspectAdapter, moduleHyperparameters, parseAdapterConfig, readAdapter } from '../../src/formats/peft.js';
import { SafetensorsFile } from '../../src/formats/safetensors.js';
import { FIXTURES_DIR, fixture, fixturesSkipReason, haveFixtures } from '../helpers/fixtures.js';

interface Expected {
  modules: number;
  rank: number;
  alpha: number;
  scaling: number;
  targets: string[];
  layers: number;
  dtype: 'F32' | 'F16';
  saved?: Record<string, number[]>;
  fanInFanOut?: boolean;
  warnings?: RegExp[];
  /** One module checked against numpy: its in/out features and the sum of |B| (float64). */
  probe: [name: string, inFeatures: number, outFeatures: number, absSumB: number];
}

const LOADS: Record<string, Expected> = {
  'SmolLM-135M-Instruct/tfm-hitesh-medai-100epochs': {
    modules: 60, rank: 16, alpha: 32, scaling: 2, targets: ['q_proj', 'v_proj'], layers: 30, dtype: 'F32',
    probe: ['model.layers.9.self_attn.v_proj', 576, 192, 262.87682510658124],
  },
  'SmolLM-135M-Instruct/tfm-hitesh-medai-5epochs': {
    modules: 60, rank: 16, alpha: 32, scaling: 2, targets: ['q_proj', 'v_proj'], layers: 30, dtype: 'F32',
    probe: ['model.layers.9.self_attn.v_proj', 576, 192, 136.97032709102132],
  },
  'edge/gpt-neox-fused-qkv-pythia-160m-bayutamawib': {
    modules: 12, rank: 8, alpha: 16, scaling: 2, targets: ['query_key_value'], layers: 12, dtype: 'F32',
    probe: ['gpt_neox.layers.9.attention.query_key_value', 768, 2304, 6.008429888574377],
  },
  'gpt2/abrhaleyarefaine1997-gpt2-tigrinya-lora': {
    modules: 36, rank: 8, alpha: 32, scaling: 4, targets: ['c_attn', 'c_proj'], layers: 12, dtype: 'F32', fanInFanOut: true,
    probe: ['transformer.h.9.mlp.c_proj', 3072, 768, 35.185098155829394],
  },
  'gpt2/anirudh-ak-peft-gpt2': {
    modules: 12, rank: 8, alpha: 8, scaling: 1, targets: ['c_attn'], layers: 12, dtype: 'F32', saved: { 'score.weight': [6, 768] },
    probe: ['transformer.h.9.attn.c_attn', 768, 2304, 1064.9713711016207],
  },
  'gpt2/blackspy369-story-generator': {
    modules: 36, rank: 8, alpha: 16, scaling: 2, targets: ['c_attn', 'c_proj'], layers: 12, dtype: 'F32', fanInFanOut: false,
    warnings: [/fan_in_fan_out is false, but this looks like a GPT-2 adapter/],
    probe: ['transformer.h.9.mlp.c_proj', 3072, 768, 54.4830854232095],
  },
  'gpt2/deepbiolab-gpt2-classification-peft': {
    modules: 36, rank: 8, alpha: 32, scaling: 4, targets: ['c_attn', 'c_proj'], layers: 12, dtype: 'F32', saved: { 'score.weight': [2, 768] },
    probe: ['transformer.h.9.mlp.c_proj', 3072, 768, 13.288524751052137],
  },
  'gpt2/gurvineet-peft-implementation-causal': {
    modules: 36, rank: 8, alpha: 32, scaling: 4, targets: ['c_attn', 'c_proj'], layers: 12, dtype: 'F32',
    probe: ['transformer.h.9.mlp.c_proj', 3072, 768, 18.002752577018327],
  },
  'gpt2/muhammad-ahmad092-math-riddle': {
    modules: 36, rank: 8, alpha: 16, scaling: 2, targets: ['c_attn', 'c_proj'], layers: 12, dtype: 'F32',
    probe: ['transformer.h.9.mlp.c_proj', 3072, 768, 9.75985154006895],
  },
  'gpt2/si-rui126-text-gen-app-first-two-layers': {
    modules: 4, rank: 8, alpha: 32, scaling: 4, targets: ['c_attn', 'c_proj'], layers: 2, dtype: 'F32',
    probe: ['transformer.h.1.attn.c_proj', 768, 768, 40.22036222140332],
  },
  'gpt2/sidmahurkar-gpt2-lora': {
    modules: 12, rank: 8, alpha: 32, scaling: 4, targets: ['c_attn'], layers: 12, dtype: 'F32', saved: { 'score.weight': [6, 768] },
    probe: ['transformer.h.9.attn.c_attn', 768, 2304, 32.13573357842698],
  },
  'gpt2/stathopoan-lora_model': {
    modules: 12, rank: 8, alpha: 16, scaling: 2, targets: ['c_attn'], layers: 12, dtype: 'F32', saved: { 'score.weight': [6, 768] },
    probe: ['transformer.h.9.attn.c_attn', 768, 2304, 118.13847336814102],
  },
};

/** The F16 gemma adapter holds only NaN (0x7fff): its header inspects fine, its weights are refused. */
const GEMMA = 'edge/fp16-gemma-2b-jr1407';

const REFUSALS: Record<string, { error: typeof InvalidFileError | typeof UnsupportedError; message: (dir: string) => string }> = {
  'edge/git-lfs-pointer-llama-3.2-1b-hmbown': {
    error: InvalidFileError,
    message: (dir) =>
      `${dir}/adapter_model.safetensors: this is a Git LFS pointer, not the weights: the real file was never downloaded. ` +
      'Run `git lfs install && git lfs pull` in the repository it came from (or download the file itself)',
  },
  'edge/prompt-tuning-not-lora-smollm2-135m-micwill755': {
    error: UnsupportedError,
    message: (dir) => `${dir}/adapter_config.json: this is a PROMPT_TUNING adapter (peft_type); loraforge works with LoRA adapters only (peft_type "LORA")`,
  },
  'edge/no-adapter-config-t5-small-rajpreet2206': {
    error: InvalidFileError,
    message: (dir) =>
      `${dir}: missing adapter_config.json. It holds adapter_model.safetensors, but a PEFT adapter needs its adapter_config.json ` +
      '(rank, alpha, target modules, base model); copy it from where the adapter was trained or saved',
  },
  'edge/configs-only/peft-method-comparison-dora': {
    error: UnsupportedError,
    message: (dir) =>
      `${dir}/adapter_config.json: DoRA adapters (use_dora: true) rescale each weight column by a learned magnitude, which is not a ` +
      'low-rank delta and cannot be merged as one. Merge it into the base model with PEFT (merge_and_unload) instead',
  },
  'edge/configs-only/peft-method-comparison-rslora': {
    error: InvalidFileError,
    message: (dir) => `${dir}: missing adapter_model.safetensors: the adapter's weights should sit next to adapter_config.json`,
  },
};

function fixtureDirs(root: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(root)) {
    const p = path.join(root, entry);
    if (!statSync(p).isDirectory()) continue;
    if (readdirSync(p).includes('SOURCE.txt')) out.push(path.relative(fixture('peft'), p));
    else out.push(...fixtureDirs(p));
  }
  return out.sort();
}

describe.skipIf(!haveFixtures)(`PEFT fixtures in ${FIXTURES_DIR}/peft`, () => {
  it('has an expectation for every fixture', () => {
    const known = [...Object.keys(LOADS), ...Object.keys(REFUSALS), GEMMA].sort();
    expect(fixtureDirs(fixture('peft'))).toEqual(known);
  });

  for (const [rel, want] of Object.entries(LOADS)) {
    it(`loads ${rel}`, async () => {
      const dir = fixture(`peft/${rel}`);
      const summary = await inspectAdapter(dir);
      const adapter = await readAdapter(dir);
      expect(summary.modules).toHaveLength(want.modules);
      expect(adapter.modules.size).toBe(want.modules);
      expect(summary.ranks).toEqual([want.rank]);
      expect(summary.targets).toEqual(want.targets);
      expect(summary.layers).toHaveLength(want.layers);
      expect(summary.dtype).toBe(want.dtype);
      expect(adapter.dtype).toBe(want.dtype);
      expect(summary.bytes).toBe(statSync(path.join(dir, 'adapter_model.safetensors')).size);
      for (const m of adapter.modules.values()) {
        expect(m).toMatchObject({ kind: 'linear', rank: want.rank, alpha: want.alpha, scaling: want.scaling });
        expect(m.A.length).toBe(m.rank * m.inFeatures);
        expect(m.B.length).toBe(m.outFeatures * m.rank);
      }
      const [name, inFeatures, outFeatures, absSumB] = want.probe;
      const probe = adapter.modules.get(name)!;
      expect(probe).toMatchObject({ inFeatures, outFeatures });
      expect(probe.B.reduce((s, x) => s + Math.abs(x), 0)).toBeCloseTo(absSumB, 9);
      expect(Object.fromEntries([...adapter.savedModules.values()].map((s) => [s.name, s.shape]))).toEqual(want.saved ?? {});
      if (want.fanInFanOut !== undefined) expect(adapter.config.fanInFanOut).toBe(want.fanInFanOut);
      expect(adapter.warnings).toHaveLength(want.warnings?.length ?? 0);
      for (const [i, re] of (want.warnings ?? []).entries()) expect(adapter.warnings[i]).toMatch(re);

      // every tensor of the file is accounted for, with the values the file holds
      const st = await SafetensorsFile.open(path.join(dir, 'adapter_model.safetensors'));
      expect(summary.parameters).toBe([...st.tensors.values()].reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0));
      expect(st.tensors.size).toBe(2 * adapter.modules.size + adapter.savedModules.size);
      expect(probe.A).toEqual(await st.readFloat32(`base_model.model.${name}.lora_A.weight`));
      await st.close();
    });
  }

  it(`inspects ${GEMMA} (F16) but refuses to read its weights, which are all NaN`, async () => {
    const dir = fixture(`peft/${GEMMA}`);
    const summary = await inspectAdapter(dir);
    expect(summary).toMatchObject({ dtype: 'F16', ranks: [16], targets: ['q_proj', 'v_proj'] });
    expect(summary.modules).toHaveLength(36);
    expect(summary.modules.find((m) => m.name === 'model.layers.0.self_attn.v_proj')).toMatchObject({ inFeatures: 2048, outFeatures: 256, scaling: 2 });
    await expect(readAdapter(dir)).rejects.toThrow(
      `${dir}/adapter_model.safetensors: tensor "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": 32768 NaN of 32768 values (the first at element 0); refusing non-finite weights`,
    );
    const unchecked = await readAdapter(dir, { checkFinite: false });
    expect(unchecked.modules.get('model.layers.17.self_attn.v_proj')!.B.every(Number.isNaN)).toBe(true);
    // registration reads the values (F16, on their bits) and refuses them naming the module and the count
    await expect(inspectAdapter(dir, { values: 'refuse' })).rejects.toThrow(
      `${dir}/adapter_model.safetensors: module "model.layers.0.self_attn.q_proj" ("lora_A.weight") holds 32768 NaN of 32768 values ` +
        '(the first at element 0), and 71 more tensor(s); refusing NaN and infinite weights, which poison every merge and answer',
    );
    const counted = await inspectAdapter(dir, { values: 'count' });
    expect(counted.nonFinite).toHaveLength(72);
    expect(counted.nonFinite![1]).toMatchObject({ module: 'model.layers.0.self_attn.q_proj', nan: 2048 * 16, inf: 0, first: 0, values: 2048 * 16 });
    expect(counted.warnings.at(-1)).toMatch(/^1843200 NaN or infinite value\(s\) in 72 tensor\(s\), first in module "model.layers.0.self_attn.q_proj"/);
  });

  for (const [rel, { error, message }] of Object.entries(REFUSALS)) {
    it(`refuses ${rel}`, async () => {
      const dir = fixture(`peft/${rel}`);
      // one at a time: a second promise made up front could reject before anything awaits it (unhandled rejection)
      for (const attempt of [() => inspectAdapter(dir), () => readAdapter(dir)]) {
        const err = await attempt().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(error);
        expect((err as Error).message).toBe(message(dir));
      }
    });
  }

  it('reads the rsLoRA config: scaling is alpha/sqrt(r)', async () => {
    const file = fixture('peft/edge/configs-only/peft-method-comparison-rslora/adapter_config.json');
    const config = parseAdapterConfig(await readJsonObject(file), file);
    expect(config).toMatchObject({ r: 64, loraAlpha: 64, useRslora: true, baseModel: null });
    expect(moduleHyperparameters(config, 'model.layers.0.self_attn.q_proj').scaling).toBe(8);
  });
});
if (!haveFixtures) it.skip(fixturesSkipReason, () => undefined);
