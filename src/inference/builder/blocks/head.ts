// The output head: [rows, hidden] → [rows, vocab] (4-bit MatMulNBits, or Gemm reading the [vocab, hidden] table
// as stored, so a tied head shares the embedding), Gemma 2's final logit soft-cap, and the two heads: `generate`
// returns the logits of one position per row, `score` log p(target) at every position.
import { LM_HEAD, io, weightName } from '../naming.js';
import { MS, type GraphContext } from './context.js';

function logits(c: GraphContext, rows: string, out: string): string {
  const { config, spec, arch } = c;
  const cap = config.finalLogitSoftcap;
  const raw = cap === null ? out : `${out}/uncapped`;
  if (spec.dtype === 'int4') {
    const q = c.has(weightName.qweight(LM_HEAD)) ? weightName.qweight(LM_HEAD) : weightName.qweight(arch.names.embed);
    c.m.node(
      'MatMulNBits',
      [rows, c.weight(q), c.weight(weightName.scales(LM_HEAD))],
      [raw],
      { K: config.hiddenSize, N: config.vocabSize, bits: 4, block_size: spec.blockSize, accuracy_level: spec.accuracyLevel },
      MS,
    );
  } else {
    const table = c.has(weightName.plain(LM_HEAD)) ? weightName.plain(LM_HEAD) : weightName.plain(arch.names.embed);
    c.node('Gemm', [rows, c.weight(table)], raw, { transB: 1 });
  }
  if (cap === null) return out;
  const capConst = c.f32('/const/final_softcap', cap);
  c.node('Div', [raw, capConst], `${out}/div`);
  c.node('Tanh', [`${out}/div`], `${out}/tanh`);
  return c.node('Mul', [`${out}/tanh`, capConst], out);
}

/** `normed` is the final norm's output [b, s, hidden]. */
export function outputHead(c: GraphContext, normed: string): void {
  const flat = c.node('Reshape', [normed, c.int64('/const/shape_rows_d', [-1, c.config.hiddenSize])], '/final_rows');
  if (c.spec.head === 'generate') {
    const picked = c.node('Gather', [flat, io.logitsIndex], '/picked_rows', { axis: 0 });
    logits(c, picked, io.logits);
    return;
  }
  logits(c, flat, '/all_logits');
  c.node('LogSoftmax', ['/all_logits'], '/all_logprobs', { axis: -1 });
  c.node('Reshape', [io.targetIds, c.int64('/const/shape_col', [-1, 1])], '/target_col');
  c.node('GatherElements', ['/all_logprobs', '/target_col'], '/target_picked', { axis: 1 });
  c.node('Shape', [io.targetIds], '/target_shape');
  c.node('Reshape', ['/target_picked', '/target_shape'], io.targetLogprobs);
}
