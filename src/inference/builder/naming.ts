// Names shared by the weight converter, the graph and the manifest: HF module paths of the LoRA targets and the
// initializer names each representation of a weight gets in the graph.

export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

const TARGET_MODULE: Record<LoraTarget, string> = {
  q: 'self_attn.q_proj',
  k: 'self_attn.k_proj',
  v: 'self_attn.v_proj',
  o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj',
  up: 'mlp.up_proj',
  down: 'mlp.down_proj',
};

export function isLoraTarget(value: string): value is LoraTarget {
  return (LORA_TARGETS as readonly string[]).includes(value);
}

/** The HF module path of a projection, e.g. `model.layers.3.self_attn.q_proj` (PEFT adapters name the same). */
export function modulePath(layer: number, target: LoraTarget): string {
  return `model.layers.${layer}.${TARGET_MODULE[target]}`;
}

export const EMBED = 'model.embed_tokens';
export const LM_HEAD = 'lm_head';
export const FINAL_NORM = 'model.norm.weight';

export const layerNorm = (layer: number, which: 'input' | 'post_attention'): string =>
  `model.layers.${layer}.${which}_layernorm.weight`;

/** Initializer names per representation. */
export const weightName = {
  /** fp32 linear, transposed to [in, out] for MatMul */
  transposed: (module: string) => `${module}.weight_t`,
  /** fp32 embedding / untied lm_head, [vocab, hidden] as in the checkpoint */
  plain: (module: string) => `${module}.weight`,
  bias: (module: string) => `${module}.bias`,
  /** int4: uint8 [N, blocks, blockSize/2] */
  qweight: (module: string) => `${module}.qweight`,
  /** int4: float [N * blocks] (MatMulNBits) or [N, blocks, 1] (GatherBlockQuantized) */
  scales: (module: string) => `${module}.scales`,
};

export const ROPE_COS = 'rope.cos_cache';
export const ROPE_SIN = 'rope.sin_cache';

/** Graph input and output names (the contract of shared/docs/SERVING.md). */
export const io = {
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  seqlensK: 'seqlens_k',
  totalSeqLen: 'total_seq_len',
  logitsIndex: 'logits_index',
  adapterIdx: 'adapter_idx',
  targetIds: 'target_ids',
  pastKey: (layer: number) => `past_key_values.${layer}.key`,
  pastValue: (layer: number) => `past_key_values.${layer}.value`,
  loraA: (layer: number, target: LoraTarget) => `lora.${layer}.${target}.A`,
  loraB: (layer: number, target: LoraTarget) => `lora.${layer}.${target}.B`,
  logits: 'logits',
  targetLogprobs: 'target_logprobs',
  kvNewKey: (layer: number) => `kv_new.${layer}.key`,
  kvNewValue: (layer: number) => `kv_new.${layer}.value`,
};
