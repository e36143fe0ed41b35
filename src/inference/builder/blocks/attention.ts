// The attention block: q, k, v (separate, fused at build time with a LoRA per part, or the checkpoint's fused
// qkv split after its LoRA), Qwen3's / Gemma 3's per-head q/k norms, rotary positions (the sliding layers' own
// base in Gemma 3), attention over the JS-owned cache (GroupQueryAttention, or a plain MatMul/Softmax subgraph for
// head sizes GQA does not take), the o projection.
import { float } from '../../../formats/onnx.js';
import { io, rope } from '../naming.js';
import type { GraphContext } from './context.js';
import { headNorm } from './norm.js';
import { plainAttention } from './plain-attention.js';

/** onnxruntime's GroupQueryAttention takes head sizes that are multiples of 8. */
export const gqaTakes = (headDim: number): boolean => headDim % 8 === 0;

export function attention(c: GraphContext, l: number, h: string): string {
  const { arch, config } = c;
  const p = `/L${l}`;
  let q: string;
  let k: string;
  let v: string;
  if (arch.names.modules.qkv) {
    const qDim = config.numHeads * config.headDim;
    const kvDim = config.numKvHeads * config.headDim;
    [q, k, v] = c.split(c.projection(l, 'qkv', h), [qDim, kvDim, kvDim], [`${p}/q`, `${p}/k`, `${p}/v`]) as [string, string, string];
  } else {
    [q, k, v] = c.projections(l, 'qkv', h) as [string, string, string];
  }
  if (arch.qkNorm) {
    const layer = arch.names.layer(l);
    q = headNorm(c, q, `${layer}.${arch.names.qNorm!}`, `${p}/q_norm`);
    k = headNorm(c, k, `${layer}.${arch.names.kNorm!}`, `${p}/k_norm`);
  }
  if (arch.positions === 'rope') {
    // RoPE outside attention, so the K handed back to the JS cache is already rotated
    const local = config.slidingLayers[l]! && config.localRopeTheta !== null;
    const caches = [c.weight(rope.cos(local)), c.weight(rope.sin(local))];
    q = c.node('RotaryEmbedding', [q, io.positionIds, ...caches], `${p}/q_rot`, { interleaved: 0 }, true);
    k = c.node('RotaryEmbedding', [k, io.positionIds, ...caches], `${p}/k_rot`, { interleaved: 0 }, true);
  }
  if (c.spec.head === 'generate') {
    c.node('Identity', [k], io.kvNewKey(l));
    c.node('Identity', [v], io.kvNewValue(l));
  }
  const window = config.slidingLayers[l] ? config.slidingWindow : null;
  let attn: string;
  if (gqaTakes(config.headDim)) {
    const attrs: Parameters<GraphContext['node']>[3] = {
      num_heads: config.numHeads,
      kv_num_heads: config.numKvHeads,
      do_rotary: 0,
      scale: float(config.attentionScale),
    };
    // GQA's local window and transformers' sliding_window both count the query token itself (checked in tests)
    if (window !== null) attrs.local_window_size = window;
    if (config.attnLogitSoftcap !== null) attrs.softcap = float(config.attnLogitSoftcap);
    c.m.node(
      'GroupQueryAttention',
      [q, k, v, io.pastKey(l), io.pastValue(l), io.seqlensK, io.totalSeqLen],
      [`${p}/attn`, `${p}/present_key`, `${p}/present_value`],
      attrs,
      { domain: 'com.microsoft' },
    );
    attn = `${p}/attn`;
  } else {
    attn = plainAttention(c, l, q, k, v, window);
  }
  return c.projection(l, 'o', attn);
}
