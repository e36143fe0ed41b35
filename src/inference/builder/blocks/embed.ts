// Token embeddings (plain or 4-bit), Gemma's √hidden scale, GPT-2's learned position table.
import { io, weightName } from '../naming.js';
import type { GraphContext } from './context.js';

export function embed(c: GraphContext): string {
  const { arch, config } = c;
  const table = arch.names.embed;
  let x: string;
  if (c.has(weightName.qweight(table))) {
    c.node(
      'GatherBlockQuantized',
      [c.weight(weightName.qweight(table)), io.inputIds, c.weight(weightName.scales(table))],
      '/embed/blocks',
      { bits: 4, block_size: c.spec.blockSize, gather_axis: 0, quantize_axis: 2 },
      true,
    );
    x = c.node('Reshape', ['/embed/blocks', c.int64('/const/shape_bsd', [0, 0, config.hiddenSize])], '/embed/tokens');
  } else {
    x = c.node('Gather', [c.weight(weightName.plain(table)), io.inputIds], '/embed/tokens', { axis: 0 });
  }
  if (config.embedScale !== 1) x = c.node('Mul', [x, c.f32('/const/embed_scale', config.embedScale)], '/embed/scaled');
  if (arch.names.positionTable) {
    c.node('Gather', [c.weight(weightName.plain(arch.names.positionTable)), io.positionIds], '/embed/positions', { axis: 0 });
    x = c.node('Add', [x, '/embed/positions'], '/embed/out');
  }
  return x;
}
