// The decoder as an ONNX graph, the design of shared/docs/SERVING.md (verified layer by layer in
// shared/spikes/onnx-lora/exp7_layer.js):
//
//   embed → per layer: RMSNorm → q/k/v (+ per-row LoRA) → RotaryEmbedding(q, k) → GroupQueryAttention over the
//   JS-owned cache (input only) → o (+ LoRA) → RMSNorm → SwiGLU MLP (+ LoRA) → final RMSNorm → output head.
//
// The body is shared; the output head is swappable: `generate` returns the logits of one position per row
// (`logits_index`) so a decode step copies out [batch, vocab] only; `score` returns log p(target | prefix) at
// every position so teacher-forced scoring copies out [batch, seq] floats instead of [batch, seq, vocab].
import { OnnxModel, float, type Dim, type OnnxDtype } from '../../formats/onnx.js';
import type { ModelConfig } from './config.js';
import { EMBED, FINAL_NORM, LM_HEAD, ROPE_COS, ROPE_SIN, io, layerNorm, modulePath, weightName, type LoraTarget } from './naming.js';
import { INT4_BLOCK_SIZE, type WeightDtype, type WeightSink } from './weights.js';

export type HeadKind = 'generate' | 'score';

export interface IoSpec {
  name: string;
  dtype: OnnxDtype;
  /** numbers are fixed sizes; strings are symbolic dims, equal names meaning equal sizes */
  shape: Dim[];
}

export interface GraphSpec {
  config: ModelConfig;
  dtype: WeightDtype;
  targets: readonly LoraTarget[];
  /** MatMulNBits accuracy_level: 0 = fp32 activations, 4 = int8 activations (fastest on CPU) */
  accuracyLevel: number;
  head: HeadKind;
  /** written into the model's metadata */
  metadata?: Record<string, string>;
}

export interface DecoderGraph {
  model: OnnxModel;
  inputs: IoSpec[];
  outputs: IoSpec[];
}

/** Symbolic dimension names used by every graph; the manifest repeats them. */
export const DIMS = {
  batch: 'batch',
  seq: 'seq',
  pastCapacity: 'past_capacity',
  loraSlots: 'lora_slots',
  loraRank: 'lora_rank',
} as const;

export function loraFeatures(config: ModelConfig, target: LoraTarget): { inFeatures: number; outFeatures: number } {
  const { hiddenSize: d, intermediateSize: im, numHeads, numKvHeads, headDim } = config;
  const pairs: Record<LoraTarget, [number, number]> = {
    q: [d, numHeads * headDim],
    k: [d, numKvHeads * headDim],
    v: [d, numKvHeads * headDim],
    o: [numHeads * headDim, d],
    gate: [d, im],
    up: [d, im],
    down: [im, d],
  };
  const [inFeatures, outFeatures] = pairs[target];
  return { inFeatures, outFeatures };
}

export function buildDecoderGraph(spec: GraphSpec, weights: WeightSink): DecoderGraph {
  const { config, dtype, targets, head } = spec;
  const d = config.hiddenSize;
  const kvDim = config.numKvHeads * config.headDim;
  const m = new OnnxModel({
    opsets: { '': 21, 'com.microsoft': 1 },
    graphName: `loraforge_${config.architecture}_${head}`,
    producerName: 'loraforge',
  });
  for (const [k, v] of Object.entries(spec.metadata ?? {})) m.metadataProp(k, v);
  const inputs: IoSpec[] = [];
  const outputs: IoSpec[] = [];
  const input = (name: string, dt: OnnxDtype, shape: Dim[]): string => {
    inputs.push({ name, dtype: dt, shape });
    return m.input(name, dt, shape);
  };
  const output = (name: string, dt: OnnxDtype, shape: Dim[]): void => {
    outputs.push({ name, dtype: dt, shape });
    m.output(name, dt, shape);
  };
  const ms = { domain: 'com.microsoft' };
  weights.declareIn(m);
  const weight = (name: string): string => {
    if (!weights.refs.has(name)) throw new Error(`builder: weight ${name} was not converted`);
    return name;
  };
  const int64 = (name: string, values: number[]): string =>
    m.initializer(name, 'int64', [values.length], BigInt64Array.from(values.map(BigInt)));

  // ---- inputs
  const { batch, seq, pastCapacity, loraSlots, loraRank } = DIMS;
  input(io.inputIds, 'int64', [batch, seq]);
  input(io.positionIds, 'int64', [batch, seq]);
  input(io.seqlensK, 'int32', [batch]);
  input(io.totalSeqLen, 'int32', []);
  if (head === 'generate') input(io.logitsIndex, 'int64', [batch]);
  else input(io.targetIds, 'int64', [batch, seq]);
  for (let l = 0; l < config.numLayers; l++) {
    input(io.pastKey(l), 'float32', [batch, config.numKvHeads, pastCapacity, config.headDim]);
    input(io.pastValue(l), 'float32', [batch, config.numKvHeads, pastCapacity, config.headDim]);
  }
  if (targets.length > 0) input(io.adapterIdx, 'int64', [batch]);
  for (let l = 0; l < config.numLayers; l++) {
    for (const t of targets) {
      const { inFeatures, outFeatures } = loraFeatures(config, t);
      input(io.loraA(l, t), 'float32', [loraSlots, inFeatures, loraRank]);
      input(io.loraB(l, t), 'float32', [loraSlots, loraRank, outFeatures]);
    }
  }

  // ---- outputs (declared first so they are listed head first, then the cache rows by layer)
  if (head === 'generate') {
    output(io.logits, 'float32', [batch, config.vocabSize]);
    for (let l = 0; l < config.numLayers; l++) {
      output(io.kvNewKey(l), 'float32', [batch, seq, kvDim]);
      output(io.kvNewValue(l), 'float32', [batch, seq, kvDim]);
    }
  } else {
    output(io.targetLogprobs, 'float32', [batch, seq]);
  }

  // ---- embedding
  let x: string;
  if (weights.refs.has(weightName.qweight(EMBED))) {
    m.node(
      'GatherBlockQuantized',
      [weight(weightName.qweight(EMBED)), io.inputIds, weight(weightName.scales(EMBED))],
      ['/embed/blocks'],
      { bits: 4, block_size: INT4_BLOCK_SIZE, gather_axis: 0, quantize_axis: 2 },
      ms,
    );
    x = m.node('Reshape', ['/embed/blocks', int64('/const/shape_bsd', [0, 0, d])], ['/embed/out']);
  } else {
    x = m.node('Gather', [weight(weightName.plain(EMBED)), io.inputIds], ['/embed/out'], { axis: 0 });
  }

  // ---- one projection: base weight (+ bias) (+ the row's adapter from the slot pool)
  const projection = (l: number, target: LoraTarget, src: string): string => {
    const module = modulePath(l, target);
    const p = `/L${l}/${target}`;
    const { inFeatures: k, outFeatures: n } = loraFeatures(config, target);
    let out =
      dtype === 'int4'
        ? m.node(
            'MatMulNBits',
            [src, weight(weightName.qweight(module)), weight(weightName.scales(module))],
            [`${p}/base`],
            { K: k, N: n, bits: 4, block_size: INT4_BLOCK_SIZE, accuracy_level: spec.accuracyLevel },
            ms,
          )
        : m.node('MatMul', [src, weight(weightName.transposed(module))], [`${p}/base`]);
    if (weights.refs.has(weightName.bias(module))) out = m.node('Add', [out, weight(weightName.bias(module))], [`${p}/biased`]);
    if (!targets.includes(target)) return out;
    // Gather each row's A/B from the pool, then two batched MatMuls: [b,s,in]@[b,in,r]@[b,r,out]
    m.node('Gather', [io.loraA(l, target), io.adapterIdx], [`${p}/lora_A`], { axis: 0 });
    m.node('Gather', [io.loraB(l, target), io.adapterIdx], [`${p}/lora_B`], { axis: 0 });
    m.node('MatMul', [src, `${p}/lora_A`], [`${p}/lora_xa`]);
    m.node('MatMul', [`${p}/lora_xa`, `${p}/lora_B`], [`${p}/lora_delta`]);
    return m.node('Add', [out, `${p}/lora_delta`], [`${p}/out`]);
  };

  const eps = float(config.rmsNormEps);
  let residual = x;
  let pending: string | null = null; // the last sub-block's output, not yet added to the residual
  for (let l = 0; l < config.numLayers; l++) {
    const p = `/L${l}`;
    let h: string;
    if (pending === null) {
      // SimplifiedLayerNormalization runs on the CPU build only in the default domain
      h = m.node('SimplifiedLayerNormalization', [residual, weight(layerNorm(l, 'input'))], [`${p}/ln_in`], { axis: -1, epsilon: eps, stash_type: 1 });
    } else {
      h = m.node('SkipSimplifiedLayerNormalization', [pending, residual, weight(layerNorm(l, 'input'))], [`${p}/ln_in`, '', '', `${p}/resid_in`], { epsilon: eps }, ms);
      residual = `${p}/resid_in`;
    }
    const q = projection(l, 'q', h);
    const k = projection(l, 'k', h);
    const v = projection(l, 'v', h);
    // RoPE outside attention, so the K handed back to the JS cache is already rotated
    const qRot = m.node('RotaryEmbedding', [q, io.positionIds, weight(ROPE_COS), weight(ROPE_SIN)], [`${p}/q_rot`], { interleaved: 0 }, ms);
    const kRot = m.node('RotaryEmbedding', [k, io.positionIds, weight(ROPE_COS), weight(ROPE_SIN)], [`${p}/k_rot`], { interleaved: 0 }, ms);
    const gqaAttrs: Record<string, number> = { num_heads: config.numHeads, kv_num_heads: config.numKvHeads, do_rotary: 0 };
    // GQA's local window and transformers' sliding_window both count the query token itself (checked in tests)
    if (config.slidingWindow !== null) gqaAttrs.local_window_size = config.slidingWindow;
    const attn = m.node(
      'GroupQueryAttention',
      [qRot, kRot, v, io.pastKey(l), io.pastValue(l), io.seqlensK, io.totalSeqLen],
      [`${p}/attn`, `${p}/present_key`, `${p}/present_value`],
      gqaAttrs,
      ms,
    );
    if (head === 'generate') {
      m.node('Identity', [kRot], [io.kvNewKey(l)]);
      m.node('Identity', [v], [io.kvNewValue(l)]);
    }
    const o = projection(l, 'o', attn);
    const h2 = m.node(
      'SkipSimplifiedLayerNormalization',
      [o, residual, weight(layerNorm(l, 'post_attention'))],
      [`${p}/ln_post`, '', '', `${p}/resid_post`],
      { epsilon: eps },
      ms,
    );
    residual = `${p}/resid_post`;
    const gate = projection(l, 'gate', h2);
    const up = projection(l, 'up', h2);
    m.node('Sigmoid', [gate], [`${p}/gate_sigmoid`]);
    m.node('Mul', [gate, `${p}/gate_sigmoid`], [`${p}/gate_silu`]);
    const act = m.node('Mul', [`${p}/gate_silu`, up], [`${p}/mlp_act`]);
    pending = projection(l, 'down', act);
  }
  const final = m.node('SkipSimplifiedLayerNormalization', [pending!, residual, weight(FINAL_NORM)], ['/final_norm'], { epsilon: eps }, ms);
  const flat = m.node('Reshape', [final, int64('/const/shape_rows_d', [-1, d])], ['/final_rows']);

  // ---- output head: [rows, hidden] → [rows, vocab]
  const lmHead = (rows: string, out: string): string => {
    if (dtype === 'int4') {
      const q = weights.refs.has(weightName.qweight(LM_HEAD)) ? weightName.qweight(LM_HEAD) : weightName.qweight(EMBED);
      return m.node(
        'MatMulNBits',
        [rows, weight(q), weight(weightName.scales(LM_HEAD))],
        [out],
        { K: d, N: config.vocabSize, bits: 4, block_size: INT4_BLOCK_SIZE, accuracy_level: spec.accuracyLevel },
        ms,
      );
    }
    // Gemm(transB) reads the [vocab, hidden] table as stored: a tied head shares the embedding, no transposed copy
    const table = weights.refs.has(weightName.plain(LM_HEAD)) ? weightName.plain(LM_HEAD) : weightName.plain(EMBED);
    return m.node('Gemm', [rows, weight(table)], [out], { transB: 1 });
  };

  if (head === 'generate') {
    const picked = m.node('Gather', [flat, io.logitsIndex], ['/picked_rows'], { axis: 0 });
    lmHead(picked, io.logits);
  } else {
    lmHead(flat, '/all_logits');
    m.node('LogSoftmax', ['/all_logits'], ['/all_logprobs'], { axis: -1 });
    m.node('Reshape', [io.targetIds, int64('/const/shape_col', [-1, 1])], ['/target_col']);
    m.node('GatherElements', ['/all_logprobs', '/target_col'], ['/target_picked'], { axis: 1 });
    m.node('Shape', [io.targetIds], ['/target_shape']);
    m.node('Reshape', ['/target_picked', '/target_shape'], [io.targetLogprobs]);
  }
  return { model: m, inputs, outputs };
}
