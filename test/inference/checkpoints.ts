// Tiny random checkpoints of each supported architecture (their real config fields, their real tensor names), and
// random LoRA adapters for them, for the builder tests.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Checkpoint } from '../../src/formats/checkpoint.js';
import { ShardedCheckpointWriter } from '../../src/formats/checkpoint-writer.js';
import { SeededRandom } from '../../src/inference/rng.js';
import type { RawConfig, ReferenceLora } from './reference.js';

export const LLAMA_CONFIG: RawConfig = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 300,
  max_position_embeddings: 128,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
  tie_word_embeddings: false,
  hidden_act: 'silu',
  torch_dtype: 'float32',
  bos_token_id: 1,
  eos_token_id: 2,
};

/** Mistral: GQA 4:1, untied, a sliding window shorter than the test sequences, linear rope scaling. */
export const MISTRAL_CONFIG: RawConfig = {
  architectures: ['MistralForCausalLM'],
  model_type: 'mistral',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  head_dim: 8,
  vocab_size: 257,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  rope_scaling: { type: 'linear', factor: 2 },
  sliding_window: 5,
  tie_word_embeddings: false,
  hidden_act: 'silu',
  torch_dtype: 'bfloat16',
};

/** Qwen2: q/k/v biases, tied embeddings, rope_theta 1e6, `dtype` instead of `torch_dtype`. */
export const QWEN2_CONFIG: RawConfig = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 64,
  intermediate_size: 160,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 1,
  vocab_size: 280,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  use_sliding_window: false,
  sliding_window: 32,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  dtype: 'bfloat16',
};

/** Qwen3: per-head q/k RMSNorm, an explicit head_dim wider than hidden/heads, tied, bf16, layer_types. */
export const QWEN3_CONFIG: RawConfig = {
  architectures: ['Qwen3ForCausalLM'],
  model_type: 'qwen3',
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  vocab_size: 270,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  rope_scaling: null,
  attention_bias: false,
  use_sliding_window: false,
  sliding_window: null,
  max_window_layers: 28,
  layer_types: ['full_attention', 'full_attention'],
  tie_word_embeddings: true,
  hidden_act: 'silu',
  torch_dtype: 'bfloat16',
};

/** Phi-3: fused qkv_proj and gate_up_proj, GQA (as Phi-3-medium), a sliding window shorter than the tests. */
export const PHI3_CONFIG: RawConfig = {
  architectures: ['Phi3ForCausalLM'],
  model_type: 'phi3',
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 290,
  max_position_embeddings: 64,
  original_max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  rope_scaling: null,
  sliding_window: 6,
  attention_bias: false,
  resid_pdrop: 0,
  embd_pdrop: 0,
  attention_dropout: 0,
  tie_word_embeddings: false,
  hidden_act: 'silu',
  bos_token_id: 1,
  eos_token_id: 32000,
  pad_token_id: 32000,
  torch_dtype: 'bfloat16',
};

/** Gemma 3 (text): √hidden embedding scale in bf16, (1 + w) norms, four norms a layer, q/k norms, GELU-tanh,
 * query_pre_attn_scalar ≠ head_dim, a sliding layer with its own rope base and a global one with linear scaling. */
export const GEMMA3_CONFIG: RawConfig = {
  architectures: ['Gemma3ForCausalLM'],
  model_type: 'gemma3_text',
  hidden_size: 48,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 1,
  head_dim: 16,
  query_pre_attn_scalar: 24,
  vocab_size: 262,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  rope_local_base_freq: 10000,
  rope_scaling: { rope_type: 'linear', factor: 8 },
  sliding_window: 4,
  sliding_window_pattern: 6,
  layer_types: ['sliding_attention', 'full_attention'],
  attn_logit_softcapping: null,
  final_logit_softcapping: null,
  attention_bias: false,
  hidden_activation: 'gelu_pytorch_tanh',
  tie_word_embeddings: true,
  bos_token_id: 2,
  eos_token_id: 1,
  pad_token_id: 0,
  torch_dtype: 'bfloat16',
};

/** Gemma 2: attention and final logit soft-caps (small, so they bite), even layers sliding by default. */
export const GEMMA2_CONFIG: RawConfig = {
  architectures: ['Gemma2ForCausalLM'],
  model_type: 'gemma2',
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 16,
  query_pre_attn_scalar: 16,
  vocab_size: 256,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  sliding_window: 3,
  attn_logit_softcapping: 1.5,
  final_logit_softcapping: 4,
  hidden_act: 'gelu_pytorch_tanh',
  hidden_activation: 'gelu_pytorch_tanh',
  torch_dtype: 'float32',
};

/** GPT-2 as openai-community/gpt2 stores it: no `transformer.` prefix, Conv1D [in, out] weights, attn.bias buffers. */
export const GPT2_CONFIG: RawConfig = {
  architectures: ['GPT2LMHeadModel'],
  model_type: 'gpt2',
  n_embd: 32,
  n_head: 4,
  n_layer: 2,
  n_positions: 64,
  n_ctx: 64,
  n_inner: null,
  vocab_size: 300,
  layer_norm_epsilon: 1e-5,
  activation_function: 'gelu_new',
  scale_attn_weights: true,
  bos_token_id: 299,
  eos_token_id: 299,
  torch_dtype: 'float32',
};

/** A tiny Llama as the Hub's test checkpoints are: head_dim 4 (plain attention), a sliding window, GQA. */
export const TINY_HEAD_CONFIG: RawConfig = {
  architectures: ['MistralForCausalLM'],
  model_type: 'mistral',
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 128,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  sliding_window: 3,
  hidden_act: 'silu',
  torch_dtype: 'float32',
};

type Kind = 'embed' | 'linear' | 'norm' | 'bias';

interface Layout {
  /** layer module prefix as PEFT names it */
  layer: (l: number) => string;
  /** per layer: module (relative) → [out, in] */
  proj: Record<string, [number, number]>;
  /** every tensor, in order: name, shape, kind */
  tensors: [string, number[], Kind][];
}

function layout(cfg: RawConfig): Layout {
  const n = (k: string) => cfg[k] as number;
  if (cfg.model_type === 'gpt2') {
    const D = n('n_embd');
    const I = (cfg.n_inner as number | null) ?? 4 * D;
    const proj: Record<string, [number, number]> = { 'attn.c_attn': [3 * D, D], 'attn.c_proj': [D, D], 'mlp.c_fc': [I, D], 'mlp.c_proj': [D, I] };
    const tensors: [string, number[], Kind][] = [
      ['wte.weight', [n('vocab_size'), D], 'embed'],
      ['wpe.weight', [n('n_positions'), D], 'embed'],
    ];
    for (let l = 0; l < n('n_layer'); l++) {
      const p = `h.${l}`;
      tensors.push([`${p}.ln_1.weight`, [D], 'norm'], [`${p}.ln_1.bias`, [D], 'bias']);
      for (const [m, [o, i]] of Object.entries(proj)) {
        if (m === 'mlp.c_fc') tensors.push([`${p}.ln_2.weight`, [D], 'norm'], [`${p}.ln_2.bias`, [D], 'bias']);
        // Conv1D: [in, out]
        tensors.push([`${p}.${m}.weight`, [i, o], 'linear'], [`${p}.${m}.bias`, [o], 'bias']);
      }
    }
    tensors.push(['ln_f.weight', [D], 'norm'], ['ln_f.bias', [D], 'bias']);
    return { layer: (l) => `transformer.h.${l}`, proj, tensors };
  }
  const D = n('hidden_size');
  const H = n('num_attention_heads');
  const KVH = (cfg.num_key_value_heads as number) ?? H;
  const hd = (cfg.head_dim as number) ?? D / H;
  const I = n('intermediate_size');
  const type = cfg.model_type as string;
  const gemma = type.startsWith('gemma');
  const proj: Record<string, [number, number]> =
    type === 'phi3'
      ? { 'self_attn.qkv_proj': [(H + 2 * KVH) * hd, D], 'self_attn.o_proj': [D, H * hd], 'mlp.gate_up_proj': [2 * I, D], 'mlp.down_proj': [D, I] }
      : {
          'self_attn.q_proj': [H * hd, D],
          'self_attn.k_proj': [KVH * hd, D],
          'self_attn.v_proj': [KVH * hd, D],
          'self_attn.o_proj': [D, H * hd],
          'mlp.gate_proj': [I, D],
          'mlp.up_proj': [I, D],
          'mlp.down_proj': [D, I],
        };
  const tensors: [string, number[], Kind][] = [['model.embed_tokens.weight', [n('vocab_size'), D], 'embed']];
  for (let l = 0; l < n('num_hidden_layers'); l++) {
    const p = `model.layers.${l}`;
    const norms = gemma
      ? ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']
      : ['input_layernorm', 'post_attention_layernorm'];
    for (const x of norms) tensors.push([`${p}.${x}.weight`, [D], 'norm']);
    if (type === 'qwen3' || type === 'gemma3_text') tensors.push([`${p}.self_attn.q_norm.weight`, [hd], 'norm'], [`${p}.self_attn.k_norm.weight`, [hd], 'norm']);
    for (const [m, [o, i]] of Object.entries(proj)) {
      tensors.push([`${p}.${m}.weight`, [o, i], 'linear']);
      if (type === 'qwen2' && /[qkv]_proj/.test(m)) tensors.push([`${p}.${m}.bias`, [o], 'bias']);
    }
  }
  tensors.push(['model.norm.weight', [D], 'norm']);
  if (cfg.tie_word_embeddings !== true && !gemma) tensors.push(['lm_head.weight', [n('vocab_size'), D], 'linear']);
  return { layer: (l) => `model.layers.${l}`, proj, tensors };
}

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * Random weights with unit-scale activations: linear weights ~ N(0, 1/in), norms near 1 (near 0 for Gemma, whose
 * norms multiply by 1 + w), biases ~ N(0, 0.2). GPT-2 also gets the attn.bias mask buffers real files carry.
 */
export function randomCheckpointTensors(cfg: RawConfig, seed: number): NamedTensor[] {
  const rng = new SeededRandom(seed);
  const gemma = String(cfg.model_type).startsWith('gemma');
  const out: NamedTensor[] = [];
  for (const [name, shape, kind] of layout(cfg).tensors) {
    const size = shape.reduce((a, b) => a * b, 1);
    const fanIn = cfg.model_type === 'gpt2' ? shape[0]! : shape.at(-1)!;
    const data =
      kind === 'embed'
        ? rng.normals(size, 1)
        : kind === 'linear'
          ? rng.normals(size, 1 / Math.sqrt(fanIn))
          : kind === 'bias'
            ? rng.normals(size, 0.2)
            : rng.normals(size, 0.1).map((x) => (gemma ? x : 1 + x));
    out.push({ name, shape, data });
  }
  if (cfg.model_type === 'gpt2') {
    const P = cfg.n_positions as number;
    for (let l = 0; l < (cfg.n_layer as number); l++) {
      out.push({ name: `h.${l}.attn.bias`, shape: [1, 1, P, P], data: Float32Array.from({ length: P * P }, (_, i) => (i % P <= Math.floor(i / P) ? 1 : 0)) });
    }
  }
  return out;
}

/** A random LoRA adapter on `modules` (short names like 'self_attn.q_proj' or 'attn.c_attn') of every layer. */
export function randomLora(cfg: RawConfig, modules: string[], rank: number, alpha: number, seed: number, layers?: number[]): ReferenceLora {
  const rng = new SeededRandom(seed);
  const { layer, proj } = layout(cfg);
  const L = (cfg.num_hidden_layers ?? cfg.n_layer) as number;
  const lora: ReferenceLora = new Map();
  for (const l of layers ?? Array.from({ length: L }, (_, i) => i)) {
    for (const module of modules) {
      const [o, i] = proj[module]!;
      lora.set(`${layer(l)}.${module}`, { A: rng.normals(rank * i, 1 / Math.sqrt(i)), B: rng.normals(o * rank, 0.5), rank, scaling: alpha / rank });
    }
  }
  return lora;
}

/** Writes an HF checkpoint dir: config.json and the tensors (sharded with an index when maxShardBytes is small). */
export async function writeCheckpoint(
  dir: string,
  cfg: RawConfig,
  tensors: NamedTensor[],
  options: { dtype?: 'F32' | 'BF16' | 'F16'; maxShardBytes?: number } = {},
): Promise<void> {
  const dtype = options.dtype ?? 'F32';
  const writer = await ShardedCheckpointWriter.create(
    dir,
    tensors.map((t) => ({ name: t.name, dtype, shape: t.shape })),
    { maxShardBytes: options.maxShardBytes },
  );
  for (const t of tensors) await writer.write(t.name, t.data);
  await writer.finish();
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
}

/** The stored tensors of a checkpoint dir (after any dtype rounding), for the reference forward pass. */
export async function readCheckpointTensors(dir: string): Promise<Map<string, Float32Array>> {
  const checkpoint = await Checkpoint.open(dir);
  try {
    const out = new Map<string, Float32Array>();
    for (const name of checkpoint.tensorNames) out.set(name, await checkpoint.readFloat32(name));
    return out;
  } finally {
    await checkpoint.close();
  }
}
