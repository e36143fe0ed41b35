// Attention as plain MatMul / Softmax over [past cache ‖ new rows] with an explicit mask, for head sizes that
// onnxruntime's GroupQueryAttention refuses (not a multiple of 8: the tiny test checkpoints on the Hub have 4).
// Same inputs and semantics as GQA: a row's past length is seqlens_k + 1 - seq, or 0 for a batch of fresh
// prompts (seq == total_seq_len); keys beyond a row's total, in the future, or outside the window are masked.
import { io } from '../naming.js';
import type { GraphContext } from './context.js';

/** float32's lowest value: exp() of it minus any finite max is 0, and no -inf reaches a softmax of all masked. */
const LOWEST = -3.4028234663852886e38;

/** The boolean mask [b, 1, s, past_capacity + s], computed once per graph and window. */
function attentionMask(c: GraphContext, window: number | null): string {
  const name = window === null ? '/mask/full' : `/mask/window_${window}`;
  if (c.m.has(name)) return name;
  const i64 = (n: string, v: number) => c.int64(`/const/scalar_${n}`, [v], true);
  const axis = (a: number) => c.int64(`/const/axes_${a}`, [a]);
  if (!c.m.has('/mask/allowed')) {
    c.node('Shape', [io.inputIds], '/mask/ids_shape');
    c.node('Gather', ['/mask/ids_shape', i64('1', 1)], '/mask/s', { axis: 0 });
    c.node('Shape', [io.pastKey(0)], '/mask/past_shape');
    c.node('Gather', ['/mask/past_shape', i64('2', 2)], '/mask/capacity', { axis: 0 });
    c.node('Cast', [io.totalSeqLen], '/mask/total', { to: 7 });
    c.node('Cast', [io.seqlensK], '/mask/seqlens', { to: 7 });
    c.node('Add', ['/mask/seqlens', i64('1', 1)], '/mask/row_total');
    c.node('Equal', ['/mask/s', '/mask/total'], '/mask/is_prompt');
    c.node('Sub', ['/mask/row_total', '/mask/s'], '/mask/past_if_cached');
    c.node('Where', ['/mask/is_prompt', i64('0', 0), '/mask/past_if_cached'], '/mask/past_len');
    c.node('Unsqueeze', ['/mask/past_len', axis(1)], '/mask/past_len_col');
    c.node('Unsqueeze', ['/mask/row_total', axis(1)], '/mask/row_total_col');
    c.node('Range', [i64('0', 0), '/mask/s', i64('1', 1)], '/mask/range_s');
    c.node('Range', [i64('0', 0), '/mask/capacity', i64('1', 1)], '/mask/range_capacity');
    // absolute positions: queries and new keys at past_len + i, cache slot j at j
    c.node('Add', ['/mask/past_len_col', '/mask/range_s'], '/mask/qpos');
    c.node('Mul', ['/mask/past_len_col', i64('0', 0)], '/mask/zero_col');
    c.node('Add', ['/mask/range_capacity', '/mask/zero_col'], '/mask/kpos_past');
    c.node('Concat', ['/mask/kpos_past', '/mask/qpos'], '/mask/kpos', { axis: 1 });
    c.node('Less', ['/mask/kpos_past', '/mask/past_len_col'], '/mask/valid_past');
    c.node('Less', ['/mask/qpos', '/mask/row_total_col'], '/mask/valid_new');
    c.node('Concat', ['/mask/valid_past', '/mask/valid_new'], '/mask/valid', { axis: 1 });
    c.node('Unsqueeze', ['/mask/qpos', axis(2)], '/mask/q3');
    c.node('Unsqueeze', ['/mask/kpos', axis(1)], '/mask/k3');
    c.node('Unsqueeze', ['/mask/valid', axis(1)], '/mask/valid3');
    c.node('LessOrEqual', ['/mask/k3', '/mask/q3'], '/mask/causal');
    c.node('And', ['/mask/causal', '/mask/valid3'], '/mask/allowed');
  }
  let allowed = '/mask/allowed';
  if (window !== null) {
    c.node('Sub', ['/mask/q3', '/mask/k3'], `${name}/distance`);
    c.node('Less', [`${name}/distance`, i64(`${window}`, window)], `${name}/inside`);
    allowed = c.node('And', [allowed, `${name}/inside`], `${name}/allowed`);
  }
  return c.node('Unsqueeze', [allowed, axis(1)], name);
}

/** [b, kv_heads, T, hd] → [b, heads, T, hd], each kv head repeated for its group of query heads. */
function repeatKv(c: GraphContext, x: string, out: string): string {
  const { numHeads: H, numKvHeads: KVH, headDim: hd } = c.config;
  if (H === KVH) return x;
  c.node('Unsqueeze', [x, c.int64('/const/axes_2', [2])], `${out}/5d`);
  c.node('Expand', [`${out}/5d`, c.int64(`/const/expand_group_${H / KVH}`, [1, 1, H / KVH, 1, 1])], `${out}/expanded`);
  return c.node('Reshape', [`${out}/expanded`, c.int64(`/const/shape_heads_t_${H}_${hd}`, [0, H, -1, hd])], out);
}

/** q [b, s, H·hd], k and v [b, s, KVH·hd] → attention output [b, s, H·hd]. */
export function plainAttention(c: GraphContext, l: number, q: string, k: string, v: string, window: number | null): string {
  const { headDim: hd, attentionScale, attnLogitSoftcap } = c.config;
  const p = `/L${l}/attn`;
  const mask = attentionMask(c, window);
  const heads = (x: string, name: string) => {
    c.node('Reshape', [x, c.int64(`/const/shape_heads_${hd}`, [0, 0, -1, hd])], `${name}/4d`);
    return c.node('Transpose', [`${name}/4d`], name, { perm: [0, 2, 1, 3] });
  };
  const qh = heads(q, `${p}/q`);
  c.node('Concat', [io.pastKey(l), heads(k, `${p}/k_new`)], `${p}/k_all`, { axis: 2 });
  c.node('Concat', [io.pastValue(l), heads(v, `${p}/v_new`)], `${p}/v_all`, { axis: 2 });
  const keys = repeatKv(c, `${p}/k_all`, `${p}/k_rep`);
  const values = repeatKv(c, `${p}/v_all`, `${p}/v_rep`);
  c.node('Transpose', [keys], `${p}/k_t`, { perm: [0, 1, 3, 2] });
  c.node('MatMul', [qh, `${p}/k_t`], `${p}/qk`);
  let scores = c.node('Mul', [`${p}/qk`, c.f32(`/const/attn_scale`, attentionScale)], `${p}/scores`);
  if (attnLogitSoftcap !== null) {
    const cap = c.f32('/const/attn_softcap', attnLogitSoftcap);
    c.node('Div', [scores, cap], `${p}/scores_div`);
    c.node('Tanh', [`${p}/scores_div`], `${p}/scores_tanh`);
    scores = c.node('Mul', [`${p}/scores_tanh`, cap], `${p}/scores_capped`);
  }
  c.node('Where', [mask, scores, c.f32('/const/lowest', LOWEST)], `${p}/masked`);
  c.node('Softmax', [`${p}/masked`], `${p}/probs`, { axis: -1 });
  c.node('MatMul', [`${p}/probs`, values], `${p}/context`);
  c.node('Transpose', [`${p}/context`], `${p}/context_bshd`, { perm: [0, 2, 1, 3] });
  return c.node('Reshape', [`${p}/context_bshd`, c.int64('/const/shape_bs_flat', [0, 0, -1])], `${p}/out`);
}
