// The decoder as an ONNX graph, the design of shared/docs/SERVING.md (verified layer by layer in
// shared/spikes/onnx-lora/exp7_layer.js), assembled from blocks (blocks/) that read the architecture's switches:
//
//   embed (+ scale, + learned positions) → per layer: norm → attention (q/k/v or fused qkv, + per-row LoRA, q/k
//   norms, RoPE, attention over the JS-owned cache, o) → [post-attention norm] → residual + norm → MLP (gated or
//   plain, + LoRA) → [post-MLP norm] → … → final norm → output head (generate or score).
//
// The residual add of each sub-block rides in the next norm (Skip*Normalization), which hands back the sum.
import type { WeightSink } from './weights.js';
import { attention } from './blocks/attention.js';
import { GraphContext, type GraphSpec, type IoSpec } from './blocks/context.js';
import { embed } from './blocks/embed.js';
import { outputHead } from './blocks/head.js';
import { declareIo } from './blocks/io.js';
import { mlp } from './blocks/mlp.js';
import { addNorm, norm } from './blocks/norm.js';
import type { OnnxModel } from '../../formats/onnx.js';

export type { GraphSpec, HeadKind, IoSpec } from './blocks/context.js';
export { DIMS } from './blocks/io.js';

export interface DecoderGraph {
  model: OnnxModel;
  inputs: IoSpec[];
  outputs: IoSpec[];
}

export function buildDecoderGraph(spec: GraphSpec, weights: WeightSink): DecoderGraph {
  const c = new GraphContext(spec, weights);
  const { arch, config } = c;
  const names = arch.names;
  declareIo(c);
  let residual = embed(c);
  let pending: string | null = null; // the last sub-block's output, not yet added to the residual
  for (let l = 0; l < config.numLayers; l++) {
    const layer = names.layer(l);
    const p = `/L${l}`;
    let h: string;
    if (pending === null) h = norm(c, residual, `${layer}.${names.inputNorm}`, `${p}/ln_in`);
    else ({ normed: h, residual } = addNorm(c, pending, residual, `${layer}.${names.inputNorm}`, `${p}/ln_in`));
    let out = attention(c, l, h);
    // Gemma's sandwich: the sub-block's output is normed before it joins the residual
    if (arch.sandwichNorms) out = norm(c, out, `${layer}.${names.postAttentionNorm}`, `${p}/ln_post_attn`);
    const preMlp = arch.sandwichNorms ? names.preFeedforwardNorm! : names.postAttentionNorm;
    ({ normed: h, residual } = addNorm(c, out, residual, `${layer}.${preMlp}`, `${p}/ln_pre_mlp`));
    pending = mlp(c, l, h);
    if (arch.sandwichNorms) pending = norm(c, pending, `${layer}.${names.postFeedforwardNorm!}`, `${p}/ln_post_mlp`);
  }
  const { normed } = addNorm(c, pending!, residual, names.finalNorm, '/final_norm');
  outputHead(c, normed);
  return { model: c.m, inputs: c.inputs, outputs: c.outputs };
}
