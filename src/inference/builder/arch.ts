// What each supported architecture is, as switches: one ArchSpec per model type (its HF classes, tensor names,
// norm kind, fused projections, positions, MLP shape, Conv1D layout, ...). The config normalizer, the weight
// converter and the graph builder read these switches; none of them compares architecture names. A new decoder
// of the same family is one row here (and, for a new switch, one branch in the block that reads it).
import type { LoraTarget } from './naming.js';

export type Architecture = 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'phi3' | 'gemma2' | 'gemma3' | 'gpt2';

/** RMSNorm (x·w), Gemma's RMSNorm (x·(1 + w), the 1 added at conversion), or LayerNorm with a bias. */
export type NormKind = 'rms' | 'rms_one_plus' | 'layernorm';

export interface ArchSpec {
  /** `architectures[0]` values of config.json that mean this architecture */
  classes: readonly string[];
  /** `model_type` values, for configs without `architectures` */
  modelTypes: readonly string[];
  norm: NormKind;
  /** per-head norm of q and k before RoPE (Qwen3, Gemma 3) */
  qkNorm: boolean;
  /** Gemma's four norms per layer: post-attention and post-MLP outputs are normed before the residual add */
  sandwichNorms: boolean;
  /** rotary positions, or a learned position table added to the embeddings (GPT-2) */
  positions: 'rope' | 'learned';
  /** gated (act(gate)·up → down) or plain (act(up) → down) MLP */
  mlp: 'gated' | 'plain';
  /** the activation when config.json names none (transformers' config default) */
  defaultActivation: string;
  /** linear weights stored [in, out] (GPT-2's Conv1D) instead of [out, in] */
  conv1d: boolean;
  /** the output head reuses the embedding table unless config.json says tie_word_embeddings: false */
  tiedByDefault: boolean;
  /** the embeddings are scaled by √hidden_size (in the weights' dtype) */
  embedScale: boolean;
  /** which layers attend within `sliding_window` only: none, every layer, or per layer (`layer_types`, else
   * `slidingByDefault`); `opt-in` is Qwen's `use_sliding_window`, refused when true */
  sliding: 'none' | 'all' | 'per-layer' | 'opt-in';
  slidingByDefault?: (layer: number, raw: Record<string, unknown>) => boolean;
  /** Gemma: attention scores scaled by query_pre_attn_scalar^-0.5 instead of head_dim^-0.5 */
  queryPreAttnScalar: boolean;
  /** config.json keys under other names (GPT-2's n_embd, ...), canonical → this architecture's */
  configKeys?: Record<string, string>;
  names: {
    embed: string;
    /** learned position table (positions: 'learned') */
    positionTable?: string;
    finalNorm: string;
    layer: (l: number) => string;
    /** projection module per LoRA target, relative to the layer; fused archs name qkv / gate_up instead of q,k,v / gate,up */
    modules: Partial<Record<LoraTarget, string>>;
    /** norm modules relative to the layer */
    inputNorm: string;
    postAttentionNorm: string;
    /** sandwich norms only */
    preFeedforwardNorm?: string;
    postFeedforwardNorm?: string;
    /** qkNorm only */
    qNorm?: string;
    kNorm?: string;
  };
  /** other spellings of a tensor name in the files (GPT-2 checkpoints often drop the `transformer.` prefix) */
  aliases?: (name: string) => string[];
}

const LLAMA_NAMES: ArchSpec['names'] = {
  embed: 'model.embed_tokens',
  finalNorm: 'model.norm',
  layer: (l) => `model.layers.${l}`,
  modules: {
    q: 'self_attn.q_proj',
    k: 'self_attn.k_proj',
    v: 'self_attn.v_proj',
    o: 'self_attn.o_proj',
    gate: 'mlp.gate_proj',
    up: 'mlp.up_proj',
    down: 'mlp.down_proj',
  },
  inputNorm: 'input_layernorm',
  postAttentionNorm: 'post_attention_layernorm',
};

const LLAMA_LIKE = {
  norm: 'rms',
  qkNorm: false,
  sandwichNorms: false,
  positions: 'rope',
  mlp: 'gated',
  defaultActivation: 'silu',
  conv1d: false,
  tiedByDefault: false,
  embedScale: false,
  sliding: 'none',
  queryPreAttnScalar: false,
  names: LLAMA_NAMES,
} as const satisfies Omit<ArchSpec, 'classes' | 'modelTypes'>;

const GEMMA_NAMES: ArchSpec['names'] = {
  ...LLAMA_NAMES,
  preFeedforwardNorm: 'pre_feedforward_layernorm',
  postFeedforwardNorm: 'post_feedforward_layernorm',
};

export const ARCHS: Record<Architecture, ArchSpec> = {
  llama: { ...LLAMA_LIKE, classes: ['LlamaForCausalLM'], modelTypes: ['llama'] },
  mistral: { ...LLAMA_LIKE, classes: ['MistralForCausalLM'], modelTypes: ['mistral'], sliding: 'all' },
  qwen2: { ...LLAMA_LIKE, classes: ['Qwen2ForCausalLM'], modelTypes: ['qwen2'], sliding: 'opt-in' },
  qwen3: {
    ...LLAMA_LIKE,
    classes: ['Qwen3ForCausalLM'],
    modelTypes: ['qwen3'],
    sliding: 'opt-in',
    qkNorm: true,
    names: { ...LLAMA_NAMES, qNorm: 'self_attn.q_norm', kNorm: 'self_attn.k_norm' },
  },
  phi3: {
    ...LLAMA_LIKE,
    classes: ['Phi3ForCausalLM'],
    modelTypes: ['phi3'],
    sliding: 'all',
    names: { ...LLAMA_NAMES, modules: { qkv: 'self_attn.qkv_proj', o: 'self_attn.o_proj', gate_up: 'mlp.gate_up_proj', down: 'mlp.down_proj' } },
  },
  gemma2: {
    ...LLAMA_LIKE,
    classes: ['Gemma2ForCausalLM'],
    modelTypes: ['gemma2'],
    sliding: 'per-layer',
    // transformers' Gemma2Config: even layers slide
    slidingByDefault: (l) => l % 2 === 0,
    queryPreAttnScalar: true,
    norm: 'rms_one_plus',
    defaultActivation: 'gelu_pytorch_tanh',
    sandwichNorms: true,
    tiedByDefault: true,
    embedScale: true,
    names: GEMMA_NAMES,
  },
  gemma3: {
    ...LLAMA_LIKE,
    classes: ['Gemma3ForCausalLM'],
    modelTypes: ['gemma3_text'],
    sliding: 'per-layer',
    // transformers' Gemma3TextConfig: every sliding_window_pattern-th layer is global
    slidingByDefault: (l, raw) => (l + 1) % (typeof raw.sliding_window_pattern === 'number' ? raw.sliding_window_pattern : 6) !== 0,
    queryPreAttnScalar: true,
    norm: 'rms_one_plus',
    defaultActivation: 'gelu_pytorch_tanh',
    qkNorm: true,
    sandwichNorms: true,
    tiedByDefault: true,
    embedScale: true,
    names: { ...GEMMA_NAMES, qNorm: 'self_attn.q_norm', kNorm: 'self_attn.k_norm' },
  },
  gpt2: {
    classes: ['GPT2LMHeadModel'],
    modelTypes: ['gpt2'],
    norm: 'layernorm',
    qkNorm: false,
    sandwichNorms: false,
    positions: 'learned',
    mlp: 'plain',
    defaultActivation: 'gelu_new',
    conv1d: true,
    tiedByDefault: true,
    embedScale: false,
    sliding: 'none',
    queryPreAttnScalar: false,
    configKeys: {
      hidden_size: 'n_embd',
      num_attention_heads: 'n_head',
      num_hidden_layers: 'n_layer',
      max_position_embeddings: 'n_positions',
      intermediate_size: 'n_inner',
      norm_eps: 'layer_norm_epsilon',
      hidden_act: 'activation_function',
    },
    names: {
      embed: 'transformer.wte',
      positionTable: 'transformer.wpe',
      finalNorm: 'transformer.ln_f',
      layer: (l) => `transformer.h.${l}`,
      modules: { qkv: 'attn.c_attn', o: 'attn.c_proj', up: 'mlp.c_fc', down: 'mlp.c_proj' },
      inputNorm: 'ln_1',
      postAttentionNorm: 'ln_2',
    },
    aliases: (name) => (name.startsWith('transformer.') ? [name.slice('transformer.'.length)] : []),
  },
};

export const archSpec = (architecture: Architecture): ArchSpec => ARCHS[architecture];

/** The LoRA targets an architecture has: its own modules (q/k/v are one `qkv` where the projection is fused). */
export function archTargets(arch: ArchSpec): LoraTarget[] {
  return Object.keys(arch.names.modules) as LoraTarget[];
}

/** The HF module path of a projection, e.g. `model.layers.3.self_attn.q_proj` (PEFT adapters name the same). */
export function modulePath(arch: ArchSpec, layer: number, target: LoraTarget): string {
  const rel = arch.names.modules[target];
  if (!rel) throw new Error(`builder: this architecture has no ${target} projection`);
  return `${arch.names.layer(layer)}.${rel}`;
}

/**
 * Requested LoRA targets in this architecture's terms: q, k or v select a fused `qkv`, gate or up a fused
 * `gate_up`, and `qkv` / `gate_up` select the separate projections where they are not fused. Targets the
 * architecture does not have at all (gate on GPT-2's plain MLP) are dropped: one serving config fits every base.
 */
export function resolveTargets(arch: ArchSpec, requested: readonly LoraTarget[]): LoraTarget[] {
  const have = new Set(archTargets(arch));
  const out = new Set<LoraTarget>();
  const FUSED: Partial<Record<LoraTarget, LoraTarget>> = { q: 'qkv', k: 'qkv', v: 'qkv', gate: 'gate_up', up: 'gate_up' };
  const SPLIT: Partial<Record<LoraTarget, LoraTarget[]>> = { qkv: ['q', 'k', 'v'], gate_up: ['gate', 'up'] };
  for (const t of requested) {
    if (have.has(t)) out.add(t);
    else if (FUSED[t] && have.has(FUSED[t])) out.add(FUSED[t]);
    else for (const s of SPLIT[t] ?? []) if (have.has(s)) out.add(s);
  }
  return [...out];
}

/** Projections that read the same input and can run as one matmul, named by the fused module that some
 * architectures (Phi-3, GPT-2) store instead. */
export const FUSE_GROUPS = { qkv: ['q', 'k', 'v'], gate_up: ['gate', 'up'] } as const satisfies Record<string, readonly LoraTarget[]>;
export type FuseGroup = keyof typeof FUSE_GROUPS;

/**
 * The groups of separate projections (Llama's q/k/v, gate/up) the builder may fuse into one weight at build time:
 * those whose every part the architecture stores apart. Architectures that store the fused module have none.
 */
export function fusableGroups(arch: ArchSpec): FuseGroup[] {
  return (Object.keys(FUSE_GROUPS) as FuseGroup[]).filter((g) => FUSE_GROUPS[g].every((t) => arch.names.modules[t] !== undefined));
}

/** Which target a module path of this architecture is, for messages about adapters the graph cannot take. */
export function targetOfModule(arch: ArchSpec, module: string): LoraTarget | undefined {
  for (const [target, rel] of Object.entries(arch.names.modules)) if (module.endsWith(`.${rel}`)) return target as LoraTarget;
  return undefined;
}
