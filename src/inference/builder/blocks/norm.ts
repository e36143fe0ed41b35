// Norms by the architecture's kind: RMSNorm (Gemma's 1 + w is in the converted weight) or LayerNorm with a bias.
// The residual add rides in the Skip* variants, which also hand back the sum as the new residual.
import { float } from '../../../formats/onnx.js';
import { weightName } from '../naming.js';
import type { GraphContext } from './context.js';

/** norm(x) over the last axis, with the weights of `module` (e.g. model.layers.0.input_layernorm). */
export function norm(c: GraphContext, x: string, module: string, out: string): string {
  const eps = float(c.config.normEps);
  if (c.arch.norm === 'layernorm') {
    return c.node('LayerNormalization', [x, c.weight(weightName.plain(module)), c.weight(weightName.bias(module))], out, { axis: -1, epsilon: eps });
  }
  // SimplifiedLayerNormalization runs on the CPU build only in the default domain
  return c.node('SimplifiedLayerNormalization', [x, c.weight(weightName.plain(module))], out, { axis: -1, epsilon: eps, stash_type: 1 });
}

/** norm(x + residual) and the sum, the next residual. */
export function addNorm(c: GraphContext, x: string, residual: string, module: string, out: string): { normed: string; residual: string } {
  const eps = float(c.config.normEps);
  const sum = `${out}/residual`;
  if (c.arch.norm === 'layernorm') {
    const w = [c.weight(weightName.plain(module)), c.weight(weightName.bias(module))];
    c.m.node('SkipLayerNormalization', [x, residual, ...w], [out, '', '', sum], { epsilon: eps }, { domain: 'com.microsoft' });
  } else {
    c.m.node('SkipSimplifiedLayerNormalization', [x, residual, c.weight(weightName.plain(module))], [out, '', '', sum], { epsilon: eps }, { domain: 'com.microsoft' });
  }
  return { normed: out, residual: sum };
}

/** Per-head norm of q or k ([b, s, heads·head_dim]): Qwen3's and Gemma 3's q_norm / k_norm. */
export function headNorm(c: GraphContext, x: string, module: string, out: string): string {
  const hd = c.config.headDim;
  c.node('Reshape', [x, c.int64(`/const/shape_heads_${hd}`, [0, 0, -1, hd])], `${out}/heads`);
  norm(c, `${out}/heads`, module, `${out}/normed`);
  return c.node('Reshape', [`${out}/normed`, c.int64('/const/shape_bs_flat', [0, 0, -1])], out);
}
