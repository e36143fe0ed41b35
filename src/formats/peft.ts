// PEFT LoRA adapter directories (adapter_config.json + adapter_model.safetensors) ⇄ typed adapters.
// Both readers enter a directory through openAdapterFiles (adapter-files.ts). `inspectAdapter` reads the config
// and the safetensors header (cheap validation), and every value once when asked (registration refuses NaN/inf);
// `readAdapter` also loads the factors; `writeAdapter` writes a directory PEFT loads unchanged, atomically.
// The config rules live in peft-config.ts, the tensor-table rules in peft-layout.ts, config writing in peft-write.ts.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { clip, InvalidFileError, InvalidInputError, quote } from '../errors.js';
import { isMissingWeights, openAdapterFiles, WEIGHTS_NAME, type AdapterFiles } from './adapter-files.js';
import { writeDirAtomic } from './atomic.js';
import { readJsonObject } from './json-file.js';
import type { Dtype } from './dtype.js';
import { CONFIG_NAME, parseAdapterConfig, type AdapterConfig } from './peft-config.js';
import { KEY_PREFIX, naturalCompare, planAdapter, type AdapterLayout } from './peft-layout.js';
import { adapterConfigJson, sortedJson } from './peft-write.js';
import { describeNonFinite, elementCount, SafetensorsFile, writeSafetensors, type NonFiniteCount, type TensorToWrite } from './safetensors.js';

export {
  compilePattern,
  effectiveModulesToSave,
  loraScaling,
  moduleHyperparameters,
  parseAdapterConfig,
  targetsModule,
  type AdapterConfig,
} from './peft-config.js';
export { naturalCompare } from './peft-layout.js';
export { openAdapterFiles, WEIGHTS_NAME, type AdapterFiles } from './adapter-files.js';
export { CONFIG_NAME };

export interface LoraModule {
  /** Module path in the base model, e.g. "model.layers.0.self_attn.q_proj". */
  name: string;
  kind: 'linear' | 'embedding';
  rank: number;
  alpha: number;
  /** alpha/rank, or alpha/√rank with use_rslora, after rank_pattern / alpha_pattern: ΔW = scaling·B·A. */
  scaling: number;
  inFeatures: number;
  outFeatures: number;
  /** rank×in, row-major (lora_A.weight, or lora_embedding_A where in = number of embeddings). */
  A: Float32Array;
  /** out×rank, row-major (lora_B.weight, or lora_embedding_B where out = embedding dim). */
  B: Float32Array;
}

export interface SavedModuleTensor {
  /** Tensor name without the base_model.model. prefix, e.g. "score.weight". */
  name: string;
  dtype: Dtype;
  shape: number[];
  data: Float32Array;
}

export interface LoraAdapter {
  config: AdapterConfig;
  /** By module name, in natural order (layers.2 before layers.10). */
  modules: Map<string, LoraModule>;
  /** modules_to_save tensors (e.g. a classification head), by name. */
  savedModules: Map<string, SavedModuleTensor>;
  /** The dtype the factors were stored in. */
  dtype: Dtype;
  /** Things a user should know that do not stop the adapter from loading. */
  warnings: string[];
}

export interface ModuleSummary extends Omit<LoraModule, 'A' | 'B'> {
  dtype: Dtype;
  /** Elements in A and B. */
  parameters: number;
}

export interface AdapterSummary {
  dir: string;
  config: AdapterConfig;
  modules: ModuleSummary[];
  savedModules: { name: string; dtype: Dtype; shape: number[] }[];
  dtype: Dtype;
  /** Elements in every tensor of the weights file. */
  parameters: number;
  /** Size of adapter_model.safetensors. */
  bytes: number;
  /** Distinct ranks, ascending. */
  ranks: number[];
  /** Distinct module kinds by last name component, e.g. ["q_proj", "v_proj"]. */
  targets: string[];
  /** Distinct layer indices the modules sit in, ascending. */
  layers: number[];
  warnings: string[];
  /** Tensors holding NaN or ±inf, when the values were scanned (`values: 'count'`); empty when none do. */
  nonFinite?: NonFiniteTensor[];
}

export interface NonFiniteTensor extends NonFiniteCount {
  tensor: string;
  /** The LoRA module (or modules_to_save tensor) it belongs to. */
  module: string;
  /** Elements in the tensor. */
  values: number;
}

export interface InspectOptions {
  /**
   * Also read every tensor's values, once (otherwise only the config and the header are read): 'refuse' refuses
   * NaN and ±inf naming the module and the count, as registration does; 'count' lists them in `nonFinite`.
   */
  values?: 'refuse' | 'count';
}

interface OpenedDir {
  dir: string;
  config: AdapterConfig;
  weights: string;
  weightsBytes: number;
  warnings: string[];
}

/** adapter_config.json is a few KB; a large rank_pattern reaches hundreds. */
const CONFIG_MAX_BYTES = 4 * 2 ** 20;

const readConfig = async (file: string, warnings: string[]) => parseAdapterConfig(await readJsonObject(file, { maxBytes: CONFIG_MAX_BYTES }), file, warnings);

/** Checks the directory and its files (openAdapterFiles), then reads and validates the config. */
async function locate(dir: string | AdapterFiles): Promise<OpenedDir> {
  const warnings: string[] = [];
  let files: AdapterFiles;
  try {
    files = typeof dir === 'string' ? await openAdapterFiles(dir) : dir;
  } catch (err) {
    // weights missing: a config that is refused (DoRA, not LoRA) says more, so it is read first
    if (isMissingWeights(err)) await readConfig(err.details.config, warnings);
    throw err;
  }
  const config = await readConfig(files.config, warnings);
  return { dir: files.dir, config, weights: files.weights, weightsBytes: files.weightsBytes, warnings };
}

function layerOf(name: string): number | null {
  const m = /\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

/** NaN and ±inf in every tensor of the adapter, in module order, each with the module it belongs to. */
async function scanValues(st: SafetensorsFile, layout: AdapterLayout): Promise<NonFiniteTensor[]> {
  const found = await st.scanNonFinite();
  const out: NonFiniteTensor[] = [];
  const add = (tensor: string, module: string) => {
    const c = found.get(tensor);
    if (c) out.push({ tensor, module, values: elementCount(st.info(tensor).shape), ...c });
  };
  for (const m of layout.modules) {
    add(m.aKey, m.name);
    add(m.bKey, m.name);
  }
  for (const s of layout.saved) add(s.key, s.name);
  return out;
}

function nonFiniteError(file: string, bad: NonFiniteTensor[]): InvalidFileError {
  const [first] = bad as [NonFiniteTensor];
  const part = first.tensor.slice(first.tensor.lastIndexOf(first.module) + first.module.length + 1) || first.tensor;
  const more = bad.length > 1 ? `, and ${bad.length - 1} more tensor(s)` : '';
  return new InvalidFileError(
    file,
    `module ${quote(first.module)} (${quote(part, 40)}) holds ${describeNonFinite(first, first.values)}${more}; refusing NaN and infinite weights, which poison every merge and answer`,
    { nonFinite: bad.slice(0, 20).map((b) => ({ ...b, tensor: clip(b.tensor, 200), module: clip(b.module, 200) })) },
  );
}

/** What the adapter is, from its config and header; its tensors' values are read only when `options.values` asks. */
export async function inspectAdapter(dir: string | AdapterFiles, options: InspectOptions = {}): Promise<AdapterSummary> {
  const { dir: root, config, weights, weightsBytes, warnings } = await locate(dir);
  const st = await SafetensorsFile.open(weights);
  let layout: AdapterLayout;
  let nonFinite: NonFiniteTensor[] | undefined;
  try {
    layout = planAdapter(weights, config, st.tensors, warnings);
    if (options.values) nonFinite = await scanValues(st, layout);
  } finally {
    await st.close();
  }
  if (nonFinite?.length && options.values === 'refuse') throw nonFiniteError(weights, nonFinite);
  if (nonFinite?.length) {
    const count = nonFinite.reduce((n, t) => n + t.nan + t.inf, 0);
    warnings.push(`${count} NaN or infinite value(s) in ${nonFinite.length} tensor(s), first in module ${quote(nonFinite[0]!.module)}: registration and merges refuse this adapter`);
  }
  const modules = layout.modules.map(({ aKey: _a, bKey: _b, ...m }) => ({ ...m, parameters: m.rank * (m.inFeatures + m.outFeatures) }));
  return {
    dir: root,
    config,
    modules,
    savedModules: layout.saved.map(({ name, dtype, shape }) => ({ name, dtype, shape })),
    dtype: layout.dtype,
    parameters: layout.parameters,
    bytes: weightsBytes,
    ranks: [...new Set(modules.map((m) => m.rank))].sort((a, b) => a - b),
    targets: [...new Set(modules.map((m) => m.name.split('.').pop()!))].sort(),
    layers: [...new Set(modules.map((m) => layerOf(m.name)).filter((l) => l !== null))].sort((a, b) => a - b),
    warnings,
    ...(nonFinite && { nonFinite }),
  };
}

export interface ReadAdapterOptions {
  /** Refuse NaN or infinite weights, naming the tensor (default true: one NaN poisons a whole merge). */
  checkFinite?: boolean;
}

/** Reads an adapter directory into memory (factors as f32), validating it as inspectAdapter does. */
export async function readAdapter(dir: string | AdapterFiles, options: ReadAdapterOptions = {}): Promise<LoraAdapter> {
  const { config, weights, warnings } = await locate(dir);
  const st = await SafetensorsFile.open(weights, { checkFinite: options.checkFinite ?? true });
  try {
    const layout = planAdapter(weights, config, st.tensors, warnings);
    const values = await st.readManyFloat32([...layout.modules.flatMap((m) => [m.aKey, m.bKey]), ...layout.saved.map((s) => s.key)]);
    const modules = new Map<string, LoraModule>();
    for (const { aKey, bKey, dtype: _dtype, ...m } of layout.modules) modules.set(m.name, { ...m, A: values.get(aKey)!, B: values.get(bKey)! });
    const savedModules = new Map<string, SavedModuleTensor>();
    for (const s of layout.saved) savedModules.set(s.name, { name: s.name, dtype: s.dtype, shape: s.shape, data: values.get(s.key)! });
    return { config, modules, savedModules, dtype: layout.dtype, warnings };
  } finally {
    await st.close();
  }
}

export interface WriteAdapterOptions {
  /** Storage dtype of every tensor (default: the adapter's own dtype when it is F32, F16 or BF16, else F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** More files for the directory, e.g. { "merge-report.json": "…" }, written in the same atomic step. */
  extraFiles?: Record<string, string | Uint8Array>;
  /** Replace an existing directory (default: refuse with a ConflictError). */
  overwrite?: boolean;
  /** Hash the weights file while writing it (for a content-addressed store): returned as `weightsSha256`. */
  sha256?: boolean;
}

function checkModule(m: LoraModule): void {
  const bad = (what: string) => new InvalidInputError(`module ${JSON.stringify(m.name)}: ${what}`);
  if (!Number.isInteger(m.rank) || m.rank < 1) throw bad(`rank must be a positive integer, not ${m.rank}`);
  if (m.A.length !== m.rank * m.inFeatures) throw bad(`A holds ${m.A.length} values, not rank×in = ${m.rank}×${m.inFeatures}`);
  if (m.B.length !== m.outFeatures * m.rank) throw bad(`B holds ${m.B.length} values, not out×rank = ${m.outFeatures}×${m.rank}`);
  if (!Number.isFinite(m.scaling)) throw bad(`scaling must be finite, not ${m.scaling}`);
}

/**
 * Writes `adapter` as a PEFT directory: adapter_model.safetensors with PEFT's key names, and an adapter_config.json
 * (sorted keys) that gives every module back its rank and scaling under PEFT's rules. The directory appears
 * complete or not at all.
 */
export async function writeAdapter(dir: string, adapter: LoraAdapter, options: WriteAdapterOptions = {}): Promise<{ weightsSha256?: string }> {
  const modules = [...adapter.modules.values()].sort((a, b) => naturalCompare(a.name, b.name));
  modules.forEach(checkModule);
  const dtype = options.dtype ?? (adapter.dtype === 'F32' || adapter.dtype === 'F16' || adapter.dtype === 'BF16' ? adapter.dtype : 'F32');
  const saved = [...adapter.savedModules.values()];
  const config = adapterConfigJson(adapter.config, modules, saved.map((s) => s.name));

  const tensors: TensorToWrite[] = [];
  for (const m of modules) {
    const [a, b] = m.kind === 'linear' ? ['lora_A.weight', 'lora_B.weight'] : ['lora_embedding_A', 'lora_embedding_B'];
    tensors.push({ name: `${KEY_PREFIX}${m.name}.${a}`, dtype, shape: [m.rank, m.inFeatures], data: m.A });
    tensors.push({ name: `${KEY_PREFIX}${m.name}.${b}`, dtype, shape: [m.outFeatures, m.rank], data: m.B });
  }
  for (const s of saved) tensors.push({ name: `${KEY_PREFIX}${s.name}`, dtype, shape: s.shape, data: s.data });
  tensors.sort((x, y) => naturalCompare(x.name, y.name));

  for (const name of Object.keys(options.extraFiles ?? {})) {
    if (name !== path.basename(name) || name === CONFIG_NAME || name === WEIGHTS_NAME) {
      throw new InvalidInputError(`extra file name ${JSON.stringify(name)} must be a plain file name other than ${CONFIG_NAME} and ${WEIGHTS_NAME}`);
    }
  }
  let weightsSha256: string | undefined;
  await writeDirAtomic(
    dir,
    async (tmp) => {
      weightsSha256 = await writeSafetensors(path.join(tmp, WEIGHTS_NAME), tensors, { format: 'pt' }, { sha256: options.sha256 });
      await writeFile(path.join(tmp, CONFIG_NAME), sortedJson(config));
      for (const [name, data] of Object.entries(options.extraFiles ?? {})) await writeFile(path.join(tmp, name), data);
    },
    { overwrite: options.overwrite },
  );
  return { weightsSha256 };
}

/**
 * The name that identifies a base model across the ways one is written: the last segment of an HF id or a local
 * path, lower-cased, trailing slashes dropped. So `openai-community/gpt2` (HF moved its legacy root-level models
 * under organisations), `gpt2`, `GPT2`, `/models/gpt2/` and `C:\models\gpt2` are one model, as are mirrors such as
 * `unsloth/Llama-3.2-1B` and `meta-llama/Llama-3.2-1B`. A name cannot tell a fine-tune re-published under its
 * original's name from that original; the merge planner's shape check still refuses another architecture.
 */
export function baseModelKey(id: string): string {
  return id.replace(/[\\/]+$/, '').split(/[\\/]/).pop()!.toLowerCase();
}

/** Whether two base-model names denote one model (baseModelKey): what merging, serving and the arena all accept. */
export function sameBaseModel(a: string, b: string): boolean {
  return baseModelKey(a) === baseModelKey(b);
}
