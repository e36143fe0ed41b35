// config.json normalization per architecture (arch.ts switches, config.ts fields) and the LoRA target mapping:
// what each architecture's real config fields become, and the refusals, word for word where users read them.
import { describe, expect, it } from 'vitest';
import { InvalidFileError, UnsupportedError } from '../../src/errors.js';
import { ARCHS, resolveTargets, targetOfModule } from '../../src/inference/builder/arch.js';
import { normalizeConfig } from '../../src/inference/builder/config.js';
import { GEMMA2_CONFIG, GEMMA3_CONFIG, GPT2_CONFIG, PHI3_CONFIG, QWEN3_CONFIG } from './checkpoints.js';

describe('normalizeConfig', () => {
  it('reads each architecture under its own key names and defaults', () => {
    expect(normalizeConfig(GPT2_CONFIG)).toMatchObject({
      architecture: 'gpt2',
      hiddenSize: 32,
      intermediateSize: 128, // n_inner null: 4 × n_embd
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 4,
      headDim: 8,
      normEps: 1e-5,
      activation: 'gelu_tanh',
      maxPositionEmbeddings: 64,
      tieWordEmbeddings: true,
      ropeScaling: null,
      attentionScale: 8 ** -0.5,
      embedScale: 1,
    });
    expect(normalizeConfig(QWEN3_CONFIG)).toMatchObject({ architecture: 'qwen3', headDim: 16, slidingWindow: null, slidingLayers: [false, false], tieWordEmbeddings: true });
    expect(normalizeConfig(PHI3_CONFIG)).toMatchObject({ architecture: 'phi3', slidingWindow: 6, slidingLayers: [true, true], tieWordEmbeddings: false });
  });

  it('Gemma: √hidden in bf16, query_pre_attn_scalar, layer types, local rope base, soft-caps', () => {
    expect(normalizeConfig(GEMMA3_CONFIG)).toMatchObject({
      architecture: 'gemma3',
      embedScale: 6.9375, // √48 = 6.928… rounded to bfloat16, as transformers' embed_scale.to(bf16)
      attentionScale: 24 ** -0.5,
      slidingLayers: [true, false],
      slidingWindow: 4,
      localRopeTheta: 10000,
      ropeScaling: { type: 'linear', factor: 8 },
      activation: 'gelu_tanh',
      tieWordEmbeddings: true,
      attnLogitSoftcap: null,
      finalLogitSoftcap: null,
    });
    // without layer_types: every sliding_window_pattern-th layer is global
    const { layer_types: _, ...old } = GEMMA3_CONFIG;
    expect(normalizeConfig({ ...old, num_hidden_layers: 7, sliding_window_pattern: 3 }).slidingLayers).toEqual([true, true, false, true, true, false, true]);
    // no activation named: transformers' default for the architecture
    const { hidden_activation: _a, ...noAct } = GEMMA3_CONFIG;
    expect(normalizeConfig(noAct).activation).toBe('gelu_tanh');
    expect(normalizeConfig({ ...GEMMA2_CONFIG, num_hidden_layers: 3 })).toMatchObject({
      slidingLayers: [true, false, true],
      attnLogitSoftcap: 1.5,
      finalLogitSoftcap: 4,
      embedScale: Math.fround(Math.sqrt(32)),
      localRopeTheta: null,
    });
  });

  it('refuses what it cannot serve, saying what', () => {
    expect(() => normalizeConfig({ ...GEMMA3_CONFIG, architectures: ['Gemma3ForConditionalGeneration'] })).toThrow(
      /^architecture Gemma3ForConditionalGeneration is not supported: loraforge builds LlamaForCausalLM, .*, GPT2LMHeadModel checkpoints$/,
    );
    expect(() => normalizeConfig({ ...PHI3_CONFIG, rope_scaling: { type: 'longrope', short_factor: [1], long_factor: [1] } })).toThrow(
      'rope_scaling type "longrope" is not supported: loraforge bakes "linear" and "llama3" scaling only',
    );
    expect(() => normalizeConfig({ ...PHI3_CONFIG, partial_rotary_factor: 0.75 })).toThrow('partial_rotary_factor 0.75 is not supported: loraforge rotates the whole head');
    expect(() => normalizeConfig({ ...QWEN3_CONFIG, use_sliding_window: true, sliding_window: 8 })).toThrow(UnsupportedError);
    expect(() => normalizeConfig({ ...GPT2_CONFIG, activation_function: 'relu' })).toThrow(/hidden_act "relu" is not supported/);
    expect(() => normalizeConfig({ ...GPT2_CONFIG, n_embd: 0 })).toThrow(InvalidFileError);
    expect(() => normalizeConfig({ ...GPT2_CONFIG, n_embd: 0 })).toThrow(/n_embd must be a positive integer, not 0/);
    expect(() => normalizeConfig({ ...GEMMA3_CONFIG, layer_types: ['full_attention'] })).toThrow(/layer_types has 1 entries for 2 layers/);
  });
});

describe('LoRA targets per architecture', () => {
  it('maps the serving config to each architecture: fused modules, and targets an architecture lacks dropped', () => {
    const all = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
    expect(resolveTargets(ARCHS.llama, ['q', 'k', 'v', 'o'])).toEqual(['q', 'k', 'v', 'o']);
    expect(resolveTargets(ARCHS.phi3, ['q', 'k', 'v', 'o'])).toEqual(['qkv', 'o']);
    expect(resolveTargets(ARCHS.phi3, ['gate', 'up', 'down'])).toEqual(['gate_up', 'down']);
    expect(resolveTargets(ARCHS.gpt2, all)).toEqual(['qkv', 'o', 'up', 'down']);
    expect(resolveTargets(ARCHS.gemma3, ['qkv', 'gate_up'])).toEqual(['q', 'k', 'v', 'gate', 'up']);
    expect(resolveTargets(ARCHS.gpt2, ['gate'])).toEqual([]);
  });

  it('names the target of a module path', () => {
    expect(targetOfModule(ARCHS.gpt2, 'transformer.h.3.mlp.c_proj')).toBe('down');
    expect(targetOfModule(ARCHS.gpt2, 'transformer.h.3.attn.c_proj')).toBe('o');
    expect(targetOfModule(ARCHS.phi3, 'model.layers.0.mlp.gate_up_proj')).toBe('gate_up');
    expect(targetOfModule(ARCHS.llama, 'model.layers.0.mlp.gate_up_proj')).toBeUndefined();
  });
});
