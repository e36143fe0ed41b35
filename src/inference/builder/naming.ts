// Names shared by the weight converter, the graph and the manifest: the LoRA targets, the initializer names each
// representation of a weight gets in the graph, the graph's inputs and outputs. Module paths per architecture are
// in arch.ts.

/** Projections that can take LoRA inputs: `qkv` and `gate_up` are the fused modules of Phi-3 and GPT-2. */
export const LORA_TARGETS = ['q', 'k', 'v', 'qkv', 'o', 'gate', 'up', 'gate_up', 'down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export function isLoraTarget(value: string): value is LoraTarget {
  return (LORA_TARGETS as readonly string[]).includes(value);
}

/** An untied output head's module, the same in every supported architecture. */
export const LM_HEAD = 'lm_head';

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

/** The module name of projections fused at build time (initializers only: adapters still name the parts). */
export const fusedModule = (layerPath: string, group: string) => `${layerPath}.loraforge_fused_${group}`;

/** rotary caches: the global one, and Gemma 3's sliding layers' own (another base) */
export const rope = {
  cos: (local = false) => (local ? 'rope.local.cos_cache' : 'rope.cos_cache'),
  sin: (local = false) => (local ? 'rope.local.sin_cache' : 'rope.sin_cache'),
};

/** Graph input and output names (the contract of shared/docs/SERVING.md). */
export const io = {
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  seqlensK: 'seqlens_k',
  totalSeqLen: 'total_seq_len',
  logitsIndex: 'logits_index',
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
