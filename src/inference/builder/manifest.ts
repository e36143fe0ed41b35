// manifest.json: the contract between a built model directory and whoever runs it (the engine, the scorer). It names
// every graph input and output with dtype and shape, the LoRA inputs per (layer, target) with their features, the
// normalized config and the files, so a consumer never guesses names from the graph.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { InvalidFileError, NotFoundError } from '../../errors.js';
import { ARCHS, type Architecture } from './arch.js';
import { LORA_TARGETS } from './naming.js';

/** Bumped whenever the graph or the manifest changes: model dirs are cached per builder version. */
export const BUILDER_VERSION = 4;
export const MANIFEST_FILE = 'manifest.json';

const Dim = z.union([z.number().int().nonnegative(), z.string()]);
const IoSpecSchema = z.object({
  name: z.string(),
  dtype: z.enum(['float32', 'float16', 'bfloat16', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool']),
  shape: z.array(Dim),
});

const GraphSchema = z.object({
  /** file name in the model dir */
  file: z.string(),
  inputs: z.array(IoSpecSchema),
  outputs: z.array(IoSpecSchema),
});

const RopeScalingSchema = z.union([
  z.object({ type: z.literal('linear'), factor: z.number() }),
  z.object({
    type: z.literal('llama3'),
    factor: z.number(),
    lowFreqFactor: z.number(),
    highFreqFactor: z.number(),
    originalMaxPositionEmbeddings: z.number(),
  }),
]);

export const ModelConfigSchema = z.object({
  architecture: z.enum(Object.keys(ARCHS) as [Architecture, ...Architecture[]]),
  hiddenSize: z.number().int(),
  intermediateSize: z.number().int(),
  numLayers: z.number().int(),
  numHeads: z.number().int(),
  numKvHeads: z.number().int(),
  headDim: z.number().int(),
  vocabSize: z.number().int(),
  normEps: z.number(),
  activation: z.enum(['silu', 'gelu_tanh', 'gelu']),
  ropeTheta: z.number(),
  ropeScaling: RopeScalingSchema.nullable(),
  localRopeTheta: z.number().nullable(),
  maxPositionEmbeddings: z.number().int(),
  tieWordEmbeddings: z.boolean(),
  slidingWindow: z.number().int().nullable(),
  slidingLayers: z.array(z.boolean()),
  attentionScale: z.number(),
  attnLogitSoftcap: z.number().nullable(),
  finalLogitSoftcap: z.number().nullable(),
  embedScale: z.number(),
  bosTokenId: z.number().int().nullable(),
  eosTokenIds: z.array(z.number().int()),
  padTokenId: z.number().int().nullable(),
  sourceDtype: z.string().nullable(),
});

const LoraInputSchema = z.object({
  layer: z.number().int(),
  target: z.enum(LORA_TARGETS),
  /** HF/PEFT module path, e.g. model.layers.0.self_attn.q_proj or transformer.h.0.attn.c_attn */
  module: z.string(),
  inFeatures: z.number().int(),
  outFeatures: z.number().int(),
  /** input names: A [lora_rows, in, lora_rank], B [lora_rows, lora_rank, out] (lora_rows: the batch, or 1 for all rows) */
  a: z.string(),
  b: z.string(),
});

export const ModelManifestSchema = z.object({
  format: z.literal('loraforge-model'),
  builderVersion: z.number().int(),
  /** fingerprint of the checkpoint (config, tokenizer files, weight headers and sampled weight bytes) */
  checkpointHash: z.string(),
  /** a readable name: config's _name_or_path, else the checkpoint dir's name */
  baseModel: z.string(),
  /** the HF architectures entry (or model_type) the checkpoint declared */
  sourceArchitecture: z.string(),
  createdAt: z.string(),
  config: ModelConfigSchema,
  dtype: z.enum(['fp32', 'int4']),
  quantization: z
    .object({ bits: z.literal(4), blockSize: z.number().int(), accuracyLevel: z.number().int(), scheme: z.literal('symmetric-rtn') })
    .nullable(),
  /** length of the rope caches: positions must stay below it */
  maxPositions: z.number().int(),
  lora: z.object({
    targets: z.array(z.enum(LORA_TARGETS)),
    /**
     * the engine's slot pool (slot 0: no adapter) and the ranks it takes; the graph's dims are symbolic: it is fed each
     * run's rows' factors, at any rank
     */
    maxRank: z.number().int(),
    slots: z.number().int(),
    inputs: z.array(LoraInputSchema),
  }),
  kvCache: z.object({
    numLayers: z.number().int(),
    numKvHeads: z.number().int(),
    headDim: z.number().int(),
    /** past_key_values.{layer}.key / .value: [batch, kv_heads, past_capacity, head_dim] float32, input only */
    pastKey: z.string(),
    pastValue: z.string(),
    /** kv_new.{layer}.key / .value: [batch, seq, kv_heads*head_dim], the new rows (keys already rotated) */
    newKey: z.string(),
    newValue: z.string(),
  }),
  graphs: z.object({ generate: GraphSchema, score: GraphSchema.optional() }),
  files: z.object({
    /** the external weight file both graphs read, or null when the weights are inside the .onnx files */
    externalData: z.string().nullable(),
    /** tokenizer/generation files copied from the checkpoint */
    tokenizer: z.array(z.string()),
    /** the checkpoint's config.json, copied as is */
    config: z.string(),
    /** size in bytes of every file in the model dir */
    bytes: z.record(z.string(), z.number()),
  }),
  warnings: z.array(z.string()),
});

export type ModelManifest = z.infer<typeof ModelManifestSchema>;
export type LoraInputSpec = z.infer<typeof LoraInputSchema>;
export type GraphManifest = z.infer<typeof GraphSchema>;

/** Reads and validates `dir/manifest.json`. */
export async function readManifest(dir: string): Promise<ModelManifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`${dir} has no ${MANIFEST_FILE}: build the model with \`loraforge build-model <checkpoint dir>\``);
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidFileError(file, `not valid JSON: ${(err as Error).message}`);
  }
  const parsed = ModelManifestSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new InvalidFileError(file, `not a loraforge model manifest (${issues.join('; ')}): rebuild the model`);
  }
  if (parsed.data.builderVersion !== BUILDER_VERSION) {
    throw new InvalidFileError(file, `was written by builder version ${parsed.data.builderVersion}, this loraforge needs ${BUILDER_VERSION}: rebuild the model`);
  }
  return parsed.data;
}

/** What checkManifest needs of an onnxruntime InferenceSession. */
export interface SessionNames {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

/**
 * Checks a loaded session against the manifest: every declared input and output is there and nothing else is
 * required. A LoRA input missing from `inputNames` is the case this exists for: onnxruntime-node hides inputs that
 * also have an initializer and silently ignores their feeds, so an adapter would never apply.
 */
export function checkManifest(session: SessionNames, manifest: ModelManifest, graph: 'generate' | 'score' = 'generate'): void {
  const spec = manifest.graphs[graph];
  if (!spec) throw new InvalidFileError(MANIFEST_FILE, `the model has no ${graph} graph: rebuild it with that head`);
  const have = new Set(session.inputNames);
  const loraNames = new Set(manifest.lora.inputs.flatMap((l) => [l.a, l.b]));
  const missingLora = [...loraNames].filter((n) => !have.has(n));
  if (missingLora.length > 0) {
    throw new InvalidFileError(
      spec.file,
      `LoRA inputs ${missingLora.slice(0, 4).join(', ')}${missingLora.length > 4 ? ` and ${missingLora.length - 4} more` : ''} are not session inputs ` +
        '(an initializer hides them and adapters would be ignored): rebuild the model with this loraforge',
    );
  }
  const declared = new Set(spec.inputs.map((i) => i.name));
  const missing = [...declared].filter((n) => !have.has(n));
  const extra = session.inputNames.filter((n) => !declared.has(n));
  const outputs = new Set(session.outputNames);
  const missingOut = spec.outputs.map((o) => o.name).filter((n) => !outputs.has(n));
  if (missing.length + extra.length + missingOut.length > 0) {
    const parts = [
      missing.length ? `inputs missing: ${missing.slice(0, 4).join(', ')}` : '',
      extra.length ? `undeclared inputs: ${extra.slice(0, 4).join(', ')}` : '',
      missingOut.length ? `outputs missing: ${missingOut.slice(0, 4).join(', ')}` : '',
    ].filter(Boolean);
    throw new InvalidFileError(spec.file, `does not match ${MANIFEST_FILE} (${parts.join('; ')}): rebuild the model`);
  }
}
