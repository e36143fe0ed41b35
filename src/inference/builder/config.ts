// An HF config.json, normalized to what the graph needs. The architecture's switches (norm kind, fused projections,
// positions, ...) are in arch.ts; what varies per checkpoint (sizes, eps, activation, rope, sliding windows, scales,
// soft-caps) is read here, under each architecture's key names. Anything unsupported is refused by name.
import { UnsupportedError, InvalidFileError } from '../../errors.js';
import { ARCHS, type Architecture, type ArchSpec } from './arch.js';
import type { LoraTarget } from './naming.js';

export type { Architecture } from './arch.js';

export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

export type Activation = 'silu' | 'gelu_tanh' | 'gelu';

export interface ModelConfig {
  architecture: Architecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** epsilon of every norm (rms_norm_eps, GPT-2's layer_norm_epsilon) */
  normEps: number;
  /** the MLP's activation: SiLU, GELU with the tanh approximation (gelu_new, gelu_pytorch_tanh) or exact GELU */
  activation: Activation;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** Gemma 3: the rope base of the sliding layers (no scaling); null when every layer uses ropeTheta */
  localRopeTheta: number | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** attend to at most this many most recent tokens (itself included) in the sliding layers; null = none */
  slidingWindow: number | null;
  /** per layer: whether it is a sliding-window layer */
  slidingLayers: boolean[];
  /** factor of q·k: head_dim^-0.5, Gemma's query_pre_attn_scalar^-0.5, 1 for GPT-2 without scale_attn_weights */
  attentionScale: number;
  /** Gemma 2: scores become cap·tanh(scores/cap) before the softmax; null = none */
  attnLogitSoftcap: number | null;
  /** Gemma 2: logits become cap·tanh(logits/cap); null = none */
  finalLogitSoftcap: number | null;
  /** factor of the embeddings: √hidden_size rounded to the weights' dtype (Gemma), else 1 */
  embedScale: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** the checkpoint's declared weight dtype (`torch_dtype` or `dtype`), informational */
  sourceDtype: string | null;
}

type Raw = Record<string, unknown>;

const ENTRIES = Object.entries(ARCHS) as [Architecture, ArchSpec][];

/** The sentence every refusal of an architecture ends with. */
export const SUPPORTED = `loraforge builds ${ENTRIES.flatMap(([, a]) => a.classes).join(', ')} checkpoints`;

function architectureOf(raw: Raw): Architecture {
  const archs = raw.architectures;
  if (Array.isArray(archs) && archs.length > 0) {
    const name = String(archs[0]);
    const found = ENTRIES.find(([, a]) => a.classes.includes(name));
    if (!found) throw new UnsupportedError(`architecture ${name} is not supported: ${SUPPORTED}`);
    return found[0];
  }
  // some configs (older exports, synthetic fixtures) carry only model_type
  const type = raw.model_type;
  if (typeof type === 'string') {
    const found = ENTRIES.find(([, a]) => a.modelTypes.includes(type));
    if (!found) throw new UnsupportedError(`model_type ${type} is not supported: ${SUPPORTED}`);
    return found[0];
  }
  throw new UnsupportedError(`config.json names neither "architectures" nor "model_type": ${SUPPORTED}`);
}

const ACTIVATIONS: Record<string, Activation> = {
  silu: 'silu',
  swish: 'silu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu_fast: 'gelu_tanh',
  gelu: 'gelu',
};

/** x rounded to a float with `bits` mantissa bits (bf16: 7, f16: 10), as torch's `.to(dtype)` of a scalar does. */
function roundMantissa(x: number, bits: number): number {
  const step = 2 ** (Math.floor(Math.log2(x)) - bits);
  return Math.round(x / step) * step;
}

function ids(value: unknown): number[] {
  if (typeof value === 'number' && Number.isInteger(value)) return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number' && Number.isInteger(v));
  return [];
}

function ropeScaling(file: string, raw: unknown): RopeScaling | null {
  if (raw == null) return null;
  if (typeof raw !== 'object') throw new InvalidFileError(file, `rope_scaling must be an object or null, not ${JSON.stringify(raw)}`);
  const r = raw as Raw;
  // transformers renamed "type" to "rope_type"; both occur in the wild
  const type = r.rope_type ?? r.type;
  const num = (key: string, fallback?: number): number => {
    const v = r[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new InvalidFileError(file, `rope_scaling.${key} must be a positive number, not ${JSON.stringify(v)}`);
    }
    return v;
  };
  if (type === 'default' || type == null) return null;
  if (type === 'linear') return { type: 'linear', factor: num('factor') };
  if (type === 'llama3') {
    return {
      type: 'llama3',
      factor: num('factor'),
      lowFreqFactor: num('low_freq_factor', 1),
      highFreqFactor: num('high_freq_factor', 4),
      originalMaxPositionEmbeddings: num('original_max_position_embeddings', 8192),
    };
  }
  throw new UnsupportedError(`rope_scaling type ${JSON.stringify(type)} is not supported: loraforge bakes "linear" and "llama3" scaling only`);
}

/** Normalizes a raw config.json object. `file` names it in error messages. */
export function normalizeConfig(input: Raw, file = 'config.json'): ModelConfig {
  const architecture = architectureOf(input);
  const arch = ARCHS[architecture];
  // this architecture's spellings of the keys, under their canonical names
  const raw: Raw = { ...input };
  for (const [canonical, own] of Object.entries(arch.configKeys ?? {})) raw[canonical] = input[own];
  const int = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new InvalidFileError(file, `${arch.configKeys?.[key] ?? key} must be a positive integer, not ${JSON.stringify(v)}`);
    }
    return v;
  };
  const positive = (key: string, fallback: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0)) throw new InvalidFileError(file, `${arch.configKeys?.[key] ?? key} must be a positive number, not ${JSON.stringify(v)}`);
    return v;
  };
  const optional = (key: string): number | null => (raw[key] == null ? null : positive(key, 0));
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new InvalidFileError(file, `num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  const headDim = raw.head_dim == null ? hiddenSize / numHeads : int('head_dim');
  if (!Number.isInteger(headDim) || (arch.positions === 'rope' && headDim % 2 !== 0)) {
    throw new InvalidFileError(file, `head dimension ${headDim} (hidden_size / num_attention_heads) must be an even integer`);
  }
  const eps = positive('rms_norm_eps', positive('norm_eps', arch.norm === 'layernorm' ? 1e-5 : 1e-6));
  const actName = raw.hidden_activation ?? raw.hidden_act ?? arch.defaultActivation;
  const activation = ACTIVATIONS[String(actName)];
  if (!activation) {
    throw new UnsupportedError(`hidden_act ${JSON.stringify(actName)} is not supported: loraforge's MLPs use silu, gelu_new / gelu_pytorch_tanh or gelu`);
  }
  if (raw.partial_rotary_factor != null && raw.partial_rotary_factor !== 1) {
    throw new UnsupportedError(`partial_rotary_factor ${JSON.stringify(raw.partial_rotary_factor)} is not supported: loraforge rotates the whole head`);
  }
  if (raw.scale_attn_by_inverse_layer_idx === true) throw new UnsupportedError('scale_attn_by_inverse_layer_idx: true is not supported');

  const numLayers = int('num_hidden_layers');
  let slidingWindow: number | null = null;
  let slidingLayers = new Array<boolean>(numLayers).fill(false);
  if (arch.sliding === 'opt-in' && raw.use_sliding_window === true) {
    throw new UnsupportedError(`${architecture} with use_sliding_window: true is not supported (per-layer windows); set it to false if the model was trained without`);
  }
  if ((arch.sliding === 'all' || arch.sliding === 'per-layer') && raw.sliding_window != null) {
    slidingWindow = int('sliding_window');
    const types = raw.layer_types;
    if (arch.sliding === 'all') slidingLayers.fill(true);
    else if (Array.isArray(types)) {
      if (types.length !== numLayers) throw new InvalidFileError(file, `layer_types has ${types.length} entries for ${numLayers} layers`);
      slidingLayers = types.map((t) => t === 'sliding_attention');
    } else slidingLayers = slidingLayers.map((_, l) => arch.slidingByDefault!(l, raw));
  }
  const localRopeTheta = arch.sliding === 'per-layer' && typeof raw.rope_local_base_freq === 'number' ? positive('rope_local_base_freq', 10000) : null;

  const sourceDtype = raw.torch_dtype ?? raw.dtype;
  const mantissa = sourceDtype === 'bfloat16' ? 7 : sourceDtype === 'float16' ? 10 : 23;
  const attentionScale = arch.queryPreAttnScalar
    ? positive('query_pre_attn_scalar', headDim) ** -0.5
    : raw.scale_attn_weights === false
      ? 1
      : headDim ** -0.5;
  const pad = ids(raw.pad_token_id)[0];
  const bos = ids(raw.bos_token_id)[0];
  return {
    architecture,
    hiddenSize,
    intermediateSize: arch.mlp === 'plain' && raw.intermediate_size == null ? 4 * hiddenSize : int('intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int('vocab_size'),
    normEps: eps,
    activation,
    ropeTheta: positive('rope_theta', 10000),
    ropeScaling: arch.positions === 'rope' ? ropeScaling(file, raw.rope_scaling) : null,
    localRopeTheta,
    maxPositionEmbeddings: int('max_position_embeddings', 2048),
    // the builder also ties when lm_head.weight is absent
    tieWordEmbeddings: typeof raw.tie_word_embeddings === 'boolean' ? raw.tie_word_embeddings : arch.tiedByDefault,
    slidingWindow,
    slidingLayers,
    attentionScale,
    attnLogitSoftcap: optional('attn_logit_softcapping'),
    finalLogitSoftcap: optional('final_logit_softcapping'),
    embedScale: arch.embedScale ? roundMantissa(Math.sqrt(hiddenSize), mantissa) : 1,
    bosTokenId: bos ?? null,
    eosTokenIds: ids(raw.eos_token_id),
    padTokenId: pad ?? null,
    sourceDtype: typeof sourceDtype === 'string' ? sourceDtype : null,
  };
}

/** In and out features of a projection: what its LoRA factors and its weight are shaped by. */
export function projectionFeatures(config: ModelConfig, target: LoraTarget): { inFeatures: number; outFeatures: number } {
  const { hiddenSize: d, intermediateSize: im, numHeads, numKvHeads, headDim } = config;
  const pairs: Record<LoraTarget, [number, number]> = {
    q: [d, numHeads * headDim],
    k: [d, numKvHeads * headDim],
    v: [d, numKvHeads * headDim],
    qkv: [d, (numHeads + 2 * numKvHeads) * headDim],
    o: [numHeads * headDim, d],
    gate: [d, im],
    up: [d, im],
    gate_up: [d, 2 * im],
    down: [im, d],
  };
  const [inFeatures, outFeatures] = pairs[target];
  return { inFeatures, outFeatures };
}
