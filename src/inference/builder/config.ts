// An HF config.json, normalized to what the graph needs. The supported family (Llama, Mistral, Qwen2) shares one
// decoder: RMSNorm, rotary attention with grouped KV heads, SwiGLU MLP. The differences are data: Qwen2's q/k/v
// biases (found as tensors), Mistral's sliding window, rope settings. Anything else is refused by name.
import { UnsupportedError, InvalidFileError } from '../../errors.js';

export type Architecture = 'llama' | 'mistral' | 'qwen2';

const ARCHITECTURES: Record<string, Architecture> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
};
const MODEL_TYPES: Record<string, Architecture> = { llama: 'llama', mistral: 'mistral', qwen2: 'qwen2' };

export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

export interface ModelConfig {
  architecture: Architecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** attend to at most this many most recent tokens (itself included); null = full causal attention */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** the checkpoint's declared weight dtype (`torch_dtype` or `dtype`), informational */
  sourceDtype: string | null;
}

type Raw = Record<string, unknown>;

const SUPPORTED = 'loraforge builds LlamaForCausalLM (Llama 2/3, TinyLlama, SmolLM), MistralForCausalLM and Qwen2ForCausalLM checkpoints';

function architectureOf(raw: Raw): Architecture {
  const archs = raw.architectures;
  if (Array.isArray(archs) && archs.length > 0) {
    const name = String(archs[0]);
    const arch = ARCHITECTURES[name];
    if (!arch) throw new UnsupportedError(`architecture ${name} is not supported: ${SUPPORTED}`);
    return arch;
  }
  // some configs (older exports, synthetic fixtures) carry only model_type
  const type = raw.model_type;
  if (typeof type === 'string') {
    const arch = MODEL_TYPES[type];
    if (!arch) throw new UnsupportedError(`model_type ${type} is not supported: ${SUPPORTED}`);
    return arch;
  }
  throw new UnsupportedError(`config.json names neither "architectures" nor "model_type": ${SUPPORTED}`);
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
export function normalizeConfig(raw: Raw, file = 'config.json'): ModelConfig {
  const architecture = architectureOf(raw);
  const int = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new InvalidFileError(file, `${key} must be a positive integer, not ${JSON.stringify(v)}`);
    }
    return v;
  };
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new InvalidFileError(file, `num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  const headDim = raw.head_dim == null ? hiddenSize / numHeads : int('head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new InvalidFileError(file, `head dimension ${headDim} (hidden_size / num_attention_heads) must be an even integer`);
  }
  if (headDim % 8 !== 0) {
    // every released model of these families has 64, 128 or the like; tiny synthetic ones may not
    throw new UnsupportedError(`head dimension ${headDim} is not supported: onnxruntime's GroupQueryAttention needs a multiple of 8`);
  }
  const eps = raw.rms_norm_eps ?? 1e-6;
  if (typeof eps !== 'number' || !(eps > 0)) throw new InvalidFileError(file, `rms_norm_eps must be a positive number, not ${JSON.stringify(eps)}`);
  const theta = raw.rope_theta ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0)) throw new InvalidFileError(file, `rope_theta must be a positive number, not ${JSON.stringify(theta)}`);
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') throw new UnsupportedError(`hidden_act ${JSON.stringify(act)} is not supported: the decoder's MLP is SwiGLU (silu)`);

  let slidingWindow: number | null = null;
  if (architecture === 'mistral' && raw.sliding_window != null) slidingWindow = int('sliding_window');
  if (architecture === 'qwen2' && raw.use_sliding_window === true) {
    throw new UnsupportedError('Qwen2 with use_sliding_window: true is not supported (per-layer windows); set it to false if the model was trained without');
  }

  const sourceDtype = raw.torch_dtype ?? raw.dtype;
  const pad = ids(raw.pad_token_id)[0];
  const bos = ids(raw.bos_token_id)[0];
  return {
    architecture,
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int('vocab_size'),
    rmsNormEps: eps,
    ropeTheta: theta,
    ropeScaling: ropeScaling(file, raw.rope_scaling),
    maxPositionEmbeddings: int('max_position_embeddings', 2048),
    // false is transformers' default for these three; the builder also ties when lm_head.weight is absent
    tieWordEmbeddings: raw.tie_word_embeddings === true,
    slidingWindow,
    bosTokenId: bos ?? null,
    eosTokenIds: ids(raw.eos_token_id),
    padTokenId: pad ?? null,
    sourceDtype: typeof sourceDtype === 'string' ? sourceDtype : null,
  };
}
