// Tiny random checkpoints of each supported architecture, and random LoRA adapters for them, for the builder tests.
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

function dims(cfg: RawConfig) {
  const D = cfg.hidden_size as number;
  const H = cfg.num_attention_heads as number;
  const KVH = (cfg.num_key_value_heads as number) ?? H;
  const hd = (cfg.head_dim as number) ?? D / H;
  const I = cfg.intermediate_size as number;
  return {
    D,
    V: cfg.vocab_size as number,
    L: cfg.num_hidden_layers as number,
    proj: {
      'self_attn.q_proj': [H * hd, D],
      'self_attn.k_proj': [KVH * hd, D],
      'self_attn.v_proj': [KVH * hd, D],
      'self_attn.o_proj': [D, H * hd],
      'mlp.gate_proj': [I, D],
      'mlp.up_proj': [I, D],
      'mlp.down_proj': [D, I],
    } as Record<string, [number, number]>,
  };
}

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Random weights with unit-scale activations: linear weights ~ N(0, 1/in), norms near 1, biases for Qwen2. */
export function randomCheckpointTensors(cfg: RawConfig, seed: number): NamedTensor[] {
  const rng = new SeededRandom(seed);
  const { D, V, L, proj } = dims(cfg);
  const out: NamedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [V, D], data: rng.normals(V * D, 1) }];
  const norm = (name: string): NamedTensor => ({ name, shape: [D], data: rng.normals(D, 0.1).map((x) => 1 + x) });
  for (let l = 0; l < L; l++) {
    out.push(norm(`model.layers.${l}.input_layernorm.weight`), norm(`model.layers.${l}.post_attention_layernorm.weight`));
    for (const [module, [o, i]] of Object.entries(proj)) {
      out.push({ name: `model.layers.${l}.${module}.weight`, shape: [o, i], data: rng.normals(o * i, 1 / Math.sqrt(i)) });
      if (cfg.model_type === 'qwen2' && /[qkv]_proj/.test(module)) {
        out.push({ name: `model.layers.${l}.${module}.bias`, shape: [o], data: rng.normals(o, 0.2) });
      }
    }
  }
  out.push(norm('model.norm.weight'));
  if (cfg.tie_word_embeddings !== true) out.push({ name: 'lm_head.weight', shape: [V, D], data: rng.normals(V * D, 1 / Math.sqrt(D)) });
  return out;
}

/** A random LoRA adapter on `modules` (short names like 'self_attn.q_proj') of every layer. */
export function randomLora(cfg: RawConfig, modules: string[], rank: number, alpha: number, seed: number, layers?: number[]): ReferenceLora {
  const rng = new SeededRandom(seed);
  const { L, proj } = dims(cfg);
  const lora: ReferenceLora = new Map();
  for (const l of layers ?? Array.from({ length: L }, (_, i) => i)) {
    for (const module of modules) {
      const [o, i] = proj[module]!;
      lora.set(`model.layers.${l}.${module}`, { A: rng.normals(rank * i, 1 / Math.sqrt(i)), B: rng.normals(o * rank, 0.5), rank, scaling: alpha / rank });
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
