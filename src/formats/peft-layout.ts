// What a PEFT adapter's tensor table says, before any tensor data is read: which modules carry LoRA factors (with
// rank, alpha and scaling from the config), which tensors are modules_to_save, and everything else refused with
// the key named. PEFT saves `base_model.model.<module>.lora_A.weight` / `.lora_B.weight`, and for embeddings
// `.lora_embedding_A` / `.lora_embedding_B` without `.weight` (peft/utils/save_and_load.py).
import { clip, InvalidFileError, quote, UnsupportedError } from '../errors.js';
import { isFloatDtype, type Dtype } from './dtype.js';
import { effectiveModulesToSave, isSavedModuleKey, moduleHyperparameters, targetsModule, type AdapterConfig } from './peft-config.js';
import { elementCount, type TensorInfo } from './safetensors-header.js';

export const KEY_PREFIX = 'base_model.model.';

export interface ModuleLayout {
  /** Module path in the base model, e.g. "model.layers.0.self_attn.q_proj". */
  name: string;
  kind: 'linear' | 'embedding';
  rank: number;
  alpha: number;
  scaling: number;
  inFeatures: number;
  outFeatures: number;
  dtype: Dtype;
  aKey: string;
  bKey: string;
}

export interface SavedTensorLayout {
  /** Key without the base_model.model. prefix, e.g. "score.weight". */
  name: string;
  key: string;
  dtype: Dtype;
  shape: number[];
}

export interface AdapterLayout {
  modules: ModuleLayout[];
  saved: SavedTensorLayout[];
  /** The dtype most LoRA tensors are stored in. */
  dtype: Dtype;
  /** Elements in every tensor of the file. */
  parameters: number;
}

const FACTOR_KEY = /^(.+)\.(lora_A|lora_B)\.weight$/;
const EMBEDDING_KEY = /^(.+)\.lora_embedding_(A|B)$/;
const GPT2_CONV1D = /(^|\.)h\.\d+\.(attn\.c_attn|attn\.c_proj|attn\.q_attn|mlp\.c_fc|mlp\.c_proj)$/;

// one collator for every comparison: localeCompare with options builds a new one per call (most of the time of
// reading an 8B adapter's header went there)
const collator = new Intl.Collator('en', { numeric: true });

/** Orders names with their numbers compared as numbers: layers.2 before layers.10. */
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b);
}

/** The key without PEFT's prefix; `wrapped` counts keys that carried it twice (see planAdapter). */
function strip(key: string, wrapped: { count: number }): string {
  if (!key.startsWith(KEY_PREFIX)) return key;
  let rest = key.slice(KEY_PREFIX.length);
  if (rest.startsWith(KEY_PREFIX)) wrapped.count++;
  while (rest.startsWith(KEY_PREFIX)) rest = rest.slice(KEY_PREFIX.length);
  return rest;
}

function list(names: string[]): string {
  const shown = names.slice(0, 5).map((n) => quote(n, 80));
  return names.length > 5 ? `${shown.join(', ')} and ${names.length - 5} more` : shown.join(', ');
}

/**
 * Reads the adapter's structure from its config and tensor table. Refuses keys that are neither LoRA factors nor
 * modules_to_save, DoRA / lora_bias / convolution tensors, unpaired factors, and shapes that disagree with each
 * other or with the config's rank. When the config has no target_modules, they are inferred from the weights.
 */
export function planAdapter(file: string, config: AdapterConfig, tensors: ReadonlyMap<string, TensorInfo>, warnings: string[]): AdapterLayout {
  const factors = new Map<string, { kind: 'linear' | 'embedding'; A?: TensorInfo; B?: TensorInfo }>();
  const saved: SavedTensorLayout[] = [];
  const unknown: string[] = [];
  const toSave = effectiveModulesToSave(config);
  const wrapped = { count: 0 };
  let parameters = 0;

  for (const info of tensors.values()) {
    parameters += elementCount(info.shape);
    const key = strip(info.name, wrapped);
    if (/\.lora_magnitude_vector(\.weight)?$/.test(key)) {
      throw new UnsupportedError(`${file}: tensor ${quote(info.name)} is a DoRA magnitude vector; DoRA adapters are not a low-rank delta and cannot be merged as one`);
    }
    if (/\.lora_B\.bias$/.test(key)) {
      throw new UnsupportedError(`${file}: tensor ${quote(info.name)} is a lora_B bias (lora_bias: true), which loraforge does not merge`);
    }
    const factor = FACTOR_KEY.exec(key);
    const embedding = factor ? null : EMBEDDING_KEY.exec(key);
    if (factor || embedding) {
      const [, module, which] = (factor ?? embedding)!;
      const kind = factor ? 'linear' : 'embedding';
      const entry = factors.get(module!) ?? { kind };
      if (entry.kind !== kind) throw new InvalidFileError(file, `module ${quote(module)} has both linear (lora_A/B) and embedding (lora_embedding_A/B) factors`, { tensor: clip(info.name, 200) });
      const side = which!.endsWith('A') ? 'A' : 'B';
      if (entry[side]) throw new InvalidFileError(file, `module ${quote(module!)} has two ${side} factors (${quote(entry[side].name)} and ${quote(info.name)})`, { tensor: clip(info.name, 200) });
      entry[side] = info;
      factors.set(module!, entry);
    } else if (isSavedModuleKey(toSave, key)) {
      saved.push({ name: key, key: info.name, dtype: info.dtype, shape: [...info.shape] });
    } else {
      unknown.push(info.name);
    }
  }
  if (unknown.length > 0) {
    const hint = config.modulesToSave ? ` (modules_to_save: ${clip(JSON.stringify(config.modulesToSave), 200)})` : '';
    throw new InvalidFileError(file, `${unknown.length} tensor(s) are neither LoRA factors nor modules_to_save tensors${hint}: ${list(unknown)}`, { tensor: clip(unknown[0], 200) });
  }
  if (factors.size === 0) throw new InvalidFileError(file, 'holds no LoRA factors (no lora_A / lora_B tensors)');
  if (wrapped.count > 0) {
    // a PeftModel wrapped in another before saving: the module names are right under the second prefix
    warnings.push(`${wrapped.count} tensor key(s) carry PEFT's prefix twice (base_model.model.base_model.model.…), as when a PEFT model is wrapped again before saving: read with the extra prefix removed, and a merge writes them once`);
  }

  const modules: ModuleLayout[] = [];
  const dtypeCounts = new Map<Dtype, number>();
  for (const name of [...factors.keys()].sort(naturalCompare)) {
    const { kind, A, B } = factors.get(name)!;
    const names = kind === 'linear' ? ['lora_A.weight', 'lora_B.weight'] : ['lora_embedding_A', 'lora_embedding_B'];
    if (!A || !B) throw new InvalidFileError(file, `module ${quote(name)} has ${A ? names[0] : names[1]} but no ${A ? names[1] : names[0]}`, { tensor: clip((A ?? B)!.name, 200) });
    for (const t of [A, B]) {
      if (!isFloatDtype(t.dtype)) throw new UnsupportedError(`${file}: tensor ${quote(t.name)} is ${t.dtype}; LoRA factors must be F32, F16, BF16 or F64 (quantized adapters are not supported)`);
      if (t.shape.length !== 2) {
        throw new UnsupportedError(`${file}: tensor ${quote(t.name)} has shape [${clip(t.shape.join(', '), 80)}]; only 2-D factors (Linear and Embedding LoRA) are supported, not convolution LoRA`);
      }
      dtypeCounts.set(t.dtype, (dtypeCounts.get(t.dtype) ?? 0) + 1);
    }
    const [rank, inFeatures] = A.shape as [number, number];
    const [outFeatures, rankB] = B.shape as [number, number];
    if (rank !== rankB) {
      throw new InvalidFileError(file, `module ${quote(name)}: ${names[0]} [${A.shape.join(', ')}] has rank ${rank} but ${names[1]} [${B.shape.join(', ')}] has rank ${rankB}`, { tensor: clip(B.name, 200) });
    }
    const expected = moduleHyperparameters(config, name, file);
    if (rank !== expected.rank) {
      const source = expected.rank === config.r ? `r = ${config.r}` : `rank_pattern gives ${expected.rank}`;
      throw new InvalidFileError(file, `module ${quote(name)}: the factors have rank ${rank} but adapter_config.json says ${source}; the config does not belong to these weights`, { tensor: clip(A.name, 200) });
    }
    if (rank === 0 || inFeatures === 0 || outFeatures === 0) throw new InvalidFileError(file, `module ${quote(name)} has an empty factor`, { tensor: clip(A.name, 200) });
    modules.push({ name, kind, ...expected, inFeatures, outFeatures, dtype: A.dtype, aKey: A.name, bKey: B.name });
  }

  if (Array.isArray(config.targetModules) && config.targetModules.length === 0) {
    config.targetModules = [...new Set(modules.map((m) => m.name.split('.').pop()!))].sort();
  }
  const untargeted = modules.filter((m) => !targetsModule(config, m.name, file)).map((m) => m.name);
  if (untargeted.length > 0) {
    warnings.push(`target_modules ${clip(JSON.stringify(config.targetModules), 200)} does not match ${untargeted.length} module(s) in the weights, which PEFT would ignore when loading: ${list(untargeted)}`);
  }
  if (!config.fanInFanOut && modules.some((m) => GPT2_CONV1D.test(m.name)) && /gpt-?2|gpt2|openai-gpt|imagegpt/i.test(config.baseModel ?? '')) {
    warnings.push(
      'fan_in_fan_out is false, but this looks like a GPT-2 adapter whose base layers are Conv1D (weights stored in×out): PEFT switches it to true when loading, and a fold must add ΔWᵀ',
    );
  }
  const dtype = [...dtypeCounts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  return { modules, saved: saved.sort((a, b) => naturalCompare(a.name, b.name)), dtype, parameters };
}
