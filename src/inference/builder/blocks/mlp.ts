// The MLP block: gated (act(gate)·up → down; gate and up separate, fused at build time with a LoRA per part, or
// the checkpoint's fused gate_up, split after its LoRA) or plain (act(up) → down, GPT-2's c_fc / c_proj), with
// SiLU or GELU (tanh approximation or exact).
import type { GraphContext } from './context.js';

function activation(c: GraphContext, x: string, out: string): string {
  const act = c.config.activation;
  if (act === 'silu') {
    c.node('Sigmoid', [x], `${out}/sigmoid`);
    return c.node('Mul', [x, `${out}/sigmoid`], out);
  }
  // ONNX Gelu (opset 20): 'tanh' is gelu_new / gelu_pytorch_tanh, 'none' the exact erf form
  return c.node('Gelu', [x], out, { approximate: act === 'gelu_tanh' ? 'tanh' : 'none' });
}

export function mlp(c: GraphContext, l: number, h: string): string {
  const { arch, config } = c;
  const p = `/L${l}/mlp`;
  let hidden: string;
  if (arch.mlp === 'gated') {
    let gate: string;
    let up: string;
    if (arch.names.modules.gate_up) {
      const im = config.intermediateSize;
      [gate, up] = c.split(c.projection(l, 'gate_up', h), [im, im], [`${p}/gate`, `${p}/up`]) as [string, string];
    } else {
      [gate, up] = c.projections(l, 'gate_up', h) as [string, string];
    }
    hidden = c.node('Mul', [activation(c, gate, `${p}/gate_act`), up], `${p}/hidden`);
  } else {
    hidden = activation(c, c.projection(l, 'up', h), `${p}/hidden`);
  }
  return c.projection(l, 'down', hidden);
}
