// Builds, for a test, an "expert" adapter that really is better than the base model on given text: a rank-1 LoRA
// on the last layer's o_proj that adds α·d to the residual stream wherever the model predicts a scored token, d
// being the direction (through the final norm) that raises the logits of the tokens the text uses.
//
//   ΔW = α · d · wᵀ, with w fitted (ridge least squares) so that w·x ≈ 1 for the o_proj inputs x at the scored
//   positions: the push is there, and positive, where it counts.
//
// The o_proj inputs are read from the built generate graph itself, with that intermediate value added as an extra
// graph output (a test-only copy of the model, never written to the model dir).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import ort from '../../src/util/onnxruntime.js';
import { byCategory, type SuiteItem } from '../../src/eval/suite.js';
import { Checkpoint } from '../../src/formats/checkpoint.js';
import { writeAdapter, type LoraAdapter } from '../../src/formats/peft.js';
import type { ModelManifest } from '../../src/inference/builder/manifest.js';
import { ModelTokenizer } from '../../src/inference/tokenizer.js';
import { adapterConfig } from '../helpers/adapters.js';
import type { ReferenceLora } from '../inference/reference.js';

const { onnx } = onnxProto;

export interface ScoredText {
  ids: readonly number[];
  /** first scored token */
  targetStart: number;
}

/** The graph's value name of layer `l`'s attention output (the o_proj input), as the builder names it. */
const attnValue = (layer: number) => `/L${layer}/attn`;

/** A session over the generate graph that also outputs the last layer's o_proj input. */
export async function probeSession(modelDir: string, manifest: ModelManifest): Promise<ort.InferenceSession> {
  if (manifest.files.externalData) throw new Error('probeSession: the test model must keep its weights inline');
  const bytes = await readFile(path.join(modelDir, manifest.graphs.generate.file));
  const model = onnx.ModelProto.decode(bytes);
  const last = manifest.config.numLayers - 1;
  model.graph!.output!.push(onnx.ValueInfoProto.create({ name: attnValue(last), type: { tensorType: { elemType: 1 } } }));
  return ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), { intraOpNumThreads: 1, logSeverityLevel: 3 });
}

/** The o_proj inputs of the last layer at the positions that predict each text's scored tokens. */
export async function oProjInputs(session: ort.InferenceSession, manifest: ModelManifest, texts: readonly ScoredText[]): Promise<Float64Array[]> {
  const { numLayers, numKvHeads, headDim } = manifest.kvCache;
  const out: Float64Array[] = [];
  for (const text of texts) {
    const n = text.ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(text.ids.map(BigInt)), [1, n]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(text.ids.map((_, i) => BigInt(i))), [1, n]),
      seqlens_k: new ort.Tensor('int32', Int32Array.of(n - 1), [1]),
      total_seq_len: new ort.Tensor('int32', Int32Array.of(n), []),
      logits_index: new ort.Tensor('int64', BigInt64Array.of(BigInt(n - 1)), [1]),
    };
    for (const l of manifest.lora.inputs) {
      feeds[l.a] = new ort.Tensor('float32', new Float32Array(l.inFeatures), [1, l.inFeatures, 1]);
      feeds[l.b] = new ort.Tensor('float32', new Float32Array(l.outFeatures), [1, 1, l.outFeatures]);
    }
    for (let l = 0; l < numLayers; l++) {
      const empty = new ort.Tensor('float32', new Float32Array(0), [1, numKvHeads, 0, headDim]);
      feeds[`past_key_values.${l}.key`] = empty;
      feeds[`past_key_values.${l}.value`] = empty;
    }
    const name = attnValue(numLayers - 1);
    const result = await session.run(feeds, [name]);
    const x = result[name]!.data as Float32Array;
    const width = x.length / n;
    for (let t = text.targetStart - 1; t < n - 1; t++) out.push(Float64Array.from(x.subarray(t * width, (t + 1) * width)));
  }
  return out;
}

/** Solves (XᵀX + λI) w = Xᵀ·1 by Gaussian elimination with partial pivoting (float64). */
export function ridgeOnes(xs: readonly Float64Array[], lambda: number): Float64Array {
  const d = xs[0]!.length;
  const m = Array.from({ length: d }, () => new Float64Array(d + 1));
  for (const x of xs) {
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) m[i]![j]! += x[i]! * x[j]!;
      m[i]![d]! += x[i]!;
    }
  }
  for (let i = 0; i < d; i++) m[i]![i]! += lambda;
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = m[r]![c]! / m[c]![c]!;
      for (let k = c; k <= d; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  return Float64Array.from(m, (row, i) => row[d]! / row[i]!);
}

/**
 * The residual direction that raises the logits of `tokens` (weighted by how often they occur) against those of
 * `against` (default: the whole vocabulary, evenly): through the final RMSNorm's weight γ,
 * d_i = γ_i (mean_{k∈tokens} E[k,i] − mean_{k∈against} E[k,i]), unit length. Centring on the other skills' tokens
 * makes an expert specific: it favours its own skill's tokens over theirs.
 */
export function tokenDirection(lmHead: Float32Array, vocab: number, finalNorm: Float32Array, tokens: readonly number[], against?: readonly number[]): Float64Array {
  const d = finalNorm.length;
  const meanOf = (ids: readonly number[]) => {
    const m = new Float64Array(d);
    for (const k of ids) for (let i = 0; i < d; i++) m[i]! += lmHead[k * d + i]! / ids.length;
    return m;
  };
  const own = meanOf(tokens);
  const other = meanOf(against ?? Array.from({ length: vocab }, (_, k) => k));
  const dir = own.map((v, i) => (v - other[i]!) * finalNorm[i]!);
  const norm = Math.hypot(...dir);
  return dir.map((v) => v / norm);
}

/**
 * An expert's direction: half towards its skill's tokens against the vocabulary (which helps any text a little),
 * half against the other skills' tokens (which makes it specific: merging experts then meets real interference).
 */
export function expertDirection(lmHead: Float32Array, vocab: number, finalNorm: Float32Array, own: readonly number[], everyone: readonly number[]): Float64Array {
  const general = tokenDirection(lmHead, vocab, finalNorm, own);
  const specific = tokenDirection(lmHead, vocab, finalNorm, own, everyone);
  const mix = general.map((v, i) => v + specific[i]!);
  const norm = Math.hypot(...mix);
  return mix.map((v) => v / norm);
}

/** PEFT tensors of the rank-1 expert (lora_A [1, in], lora_B [out, 1]; alpha = rank = 1, so scaling is 1). */
export function expertFactors(w: Float64Array, direction: Float64Array, strength: number): { A: Float32Array; B: Float32Array } {
  return { A: Float32Array.from(w), B: Float32Array.from(direction, (v) => v * strength) };
}

/** A PEFT adapter with one rank-1 module (alpha 1, so scaling 1). */
export function rank1Adapter(baseModel: string, module: string, A: Float32Array, B: Float32Array): LoraAdapter {
  return {
    config: adapterConfig({ baseModel, r: 1, loraAlpha: 1, targetModules: [module.split('.').at(-1)!] }),
    modules: new Map([[module, { name: module, kind: 'linear', rank: 1, alpha: 1, scaling: 1, inFeatures: A.length, outFeatures: B.length, A, B }]]),
    savedModules: new Map(),
    dtype: 'F32',
    warnings: [],
  };
}

export interface Expert {
  category: string;
  /** PEFT adapter dir */
  dir: string;
  /** the same weights for test/inference/runner.ts's loraPool */
  lora: ReferenceLora;
}

/**
 * One expert per category of `items`, each written as a PEFT dir under `outDir/<category>`: fitted on the
 * category's items as the engine encodes them (chat template, reference as the answer).
 */
export async function makeExperts(options: {
  modelDir: string;
  manifest: ModelManifest;
  checkpointDir: string;
  items: readonly SuiteItem[];
  outDir: string;
  /** length of the push α·d in the residual stream (default 8: near the best on the demo model; far more overshoots) */
  strength?: number;
}): Promise<Expert[]> {
  const { manifest } = options;
  const tokenizer = await ModelTokenizer.load(options.modelDir);
  const checkpoint = await Checkpoint.open(options.checkpointDir);
  let lmHead: Float32Array;
  let finalNorm: Float32Array;
  try {
    lmHead = await checkpoint.readFloat32(checkpoint.tensorNames.includes('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight');
    finalNorm = await checkpoint.readFloat32('model.norm.weight');
  } finally {
    await checkpoint.close();
  }
  const probe = await probeSession(options.modelDir, manifest);
  const last = manifest.config.numLayers - 1;
  const module = `model.layers.${last}.self_attn.o_proj`;
  const experts: Expert[] = [];
  const encode = (item: SuiteItem) => tokenizer.encodeForScoring({ kind: 'chat', messages: [{ role: 'user', content: item.prompt }] }, item.reference);
  const answerTokens = (texts: ScoredText[]) => texts.flatMap((t) => t.ids.slice(t.targetStart));
  const everyone = answerTokens(options.items.map(encode));
  try {
    for (const [category, items] of byCategory(options.items)) {
      const texts = items.map(encode);
      const xs = await oProjInputs(probe, manifest, texts);
      const w = ridgeOnes(xs, xs.length);
      const direction = expertDirection(lmHead, manifest.config.vocabSize, finalNorm, answerTokens(texts), everyone);
      const { A, B } = expertFactors(w, direction, options.strength ?? 8);
      const dir = path.join(options.outDir, category);
      await writeAdapter(dir, rank1Adapter(manifest.baseModel, module, A, B));
      experts.push({ category, dir, lora: new Map([[module, { A, B, rank: 1, scaling: 1 }]]) });
    }
  } finally {
    await probe.release();
  }
  return experts;
}
