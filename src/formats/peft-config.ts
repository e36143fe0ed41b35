// adapter_config.json of a PEFT LoRA adapter: parsing, the features we refuse, and PEFT's own rules for which
// modules a config targets and which rank and alpha each module gets (peft/tuners/tuners_utils.py
// `check_target_module_exists`, peft/utils/other.py `get_pattern_key`), reproduced exactly so that what we read
// and write means what it means to PEFT.
import { z } from 'zod';
import { clip, InvalidFileError, quote, UnsupportedError } from '../errors.js';

export interface AdapterConfig {
  baseModel: string | null;
  /** Default rank and alpha; per-module values come from rankPattern / alphaPattern. */
  r: number;
  loraAlpha: number;
  /** As written: a list of module names (suffixes) or one regular expression; inferred from the weights if null. */
  targetModules: string[] | string;
  useRslora: boolean;
  /** As written. PEFT turns it on for GPT-2's Conv1D layers even when the file says false (see warnings). */
  fanInFanOut: boolean;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  modulesToSave: string[] | null;
  layersToTransform: number[] | null;
  layersPattern: string[] | null;
  taskType: string | null;
  raw: Record<string, unknown>;
}

export const CONFIG_NAME = 'adapter_config.json';

/**
 * The config of a plain causal-LM LoRA (no rsLoRA, patterns, layer subsets or saved modules), `fields` on top: what
 * loraforge writes for adapters it makes (the demo's, tests').
 */
export function plainAdapterConfig(fields: Pick<AdapterConfig, 'r' | 'loraAlpha' | 'targetModules'> & Partial<AdapterConfig>): AdapterConfig {
  return {
    baseModel: null,
    useRslora: false,
    fanInFanOut: false,
    rankPattern: {},
    alphaPattern: {},
    modulesToSave: null,
    layersToTransform: null,
    layersPattern: null,
    taskType: 'CAUSAL_LM',
    raw: {},
    ...fields,
  };
}

/** PEFT adds these to modules_to_save for classification and QA models (PeftModelForSequenceClassification etc.). */
const TASK_HEADS: Record<string, string[]> = {
  SEQ_CLS: ['classifier', 'score'],
  TOKEN_CLS: ['classifier', 'score'],
  QUESTION_ANS: ['qa_outputs'],
};

const stringList = z.array(z.string());
const ConfigSchema = z.looseObject({
  peft_type: z.string().nullish(),
  base_model_name_or_path: z.string().nullish(),
  r: z.int().positive().nullish(),
  lora_alpha: z.number().nullish(),
  target_modules: z.union([z.string(), stringList]).nullish(),
  exclude_modules: z.union([z.string(), stringList]).nullish(),
  use_rslora: z.boolean().nullish(),
  fan_in_fan_out: z.boolean().nullish(),
  rank_pattern: z.record(z.string(), z.int().positive()).nullish(),
  alpha_pattern: z.record(z.string(), z.number()).nullish(),
  modules_to_save: stringList.nullish(),
  layers_to_transform: z.union([z.int().nonnegative(), z.array(z.int().nonnegative())]).nullish(),
  layers_pattern: z.union([z.string(), stringList]).nullish(),
  task_type: z.string().nullish(),
  bias: z.enum(['none', 'all', 'lora_only']).nullish(),
  use_dora: z.boolean().nullish(),
});

/** LoRA variants whose weights are not a plain low-rank delta W + s·B·A of the base model. */
const REFUSED: { field: string; when: (v: unknown) => boolean; why: string }[] = [
  {
    field: 'use_dora',
    when: (v) => v === true,
    why: 'DoRA adapters (use_dora: true) rescale each weight column by a learned magnitude, which is not a low-rank delta and cannot be merged as one. Merge it into the base model with PEFT (merge_and_unload) instead',
  },
  { field: 'lora_bias', when: (v) => v === true, why: 'lora_bias: true adds a trained bias to lora_B, which loraforge does not merge' },
  { field: 'use_qalora', when: (v) => v === true, why: 'QA-LoRA (use_qalora: true) pools the input of lora_A, so its factors are not a plain delta' },
  { field: 'layer_replication', when: (v) => v != null, why: 'layer_replication changes the base model layout, which loraforge does not reproduce' },
  { field: 'target_parameters', when: (v) => v != null && !(Array.isArray(v) && v.length === 0), why: 'target_parameters (LoRA on raw parameters such as MoE experts) is not supported' },
  { field: 'trainable_token_indices', when: (v) => v != null, why: 'trainable_token_indices (trained embedding rows) is not supported' },
  { field: 'alora_invocation_tokens', when: (v) => v != null, why: 'activated LoRA (alora_invocation_tokens) only applies after its invocation tokens, which a merge cannot express' },
];

/** Initializations that change the base model itself: the saved factors are relative to that changed model. */
const BASE_CHANGING_INITS = /^(pissa|olora|corda|loftq)/i;

function describeIssue(issue: z.core.$ZodIssue, json: Record<string, unknown>): string {
  const field = clip(issue.path.map(String).join('.'), 80);
  let found: unknown = json;
  for (const key of issue.path) found = (found as Record<PropertyKey, unknown> | undefined)?.[key as PropertyKey];
  // the config's depth was bounded when it was read, so stringifying a value cannot overflow the stack
  return `"${field}" ${clip(issue.message.replace(/^Invalid input: /, ''), 200)} (found ${clip(JSON.stringify(found) ?? 'nothing', 80)})`;
}

/**
 * Validates adapter_config.json content. Refuses non-LoRA adapters and LoRA variants that are not a low-rank
 * delta (UnsupportedError), and malformed fields (InvalidFileError naming the field). Warnings go to `warnings`.
 */
export function parseAdapterConfig(json: unknown, file: string, warnings: string[] = []): AdapterConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new InvalidFileError(file, 'must hold a JSON object');
  const raw = json as Record<string, unknown>;
  const peftType = raw.peft_type;
  if (peftType !== undefined && peftType !== 'LORA') {
    throw new UnsupportedError(
      `${file}: this is a ${clip(typeof peftType === 'string' ? peftType : (JSON.stringify(peftType) ?? ''), 60)} adapter (peft_type); loraforge works with LoRA adapters only (peft_type "LORA")`,
    );
  }
  for (const { field, when, why } of REFUSED) {
    if (when(raw[field])) throw new UnsupportedError(`${file}: ${why}`);
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidFileError(file, parsed.error.issues.slice(0, 5).map((i) => describeIssue(i, raw)).join('; '));
  const c = parsed.data;
  if (peftType === undefined) warnings.push(`${file} has no peft_type; reading it as LoRA because it has LoRA fields`);
  if (c.bias && c.bias !== 'none') {
    throw new UnsupportedError(`${file}: bias: ${quote(c.bias)} trains the base model's biases too, which loraforge does not merge; retrain with bias: "none"`);
  }
  if (typeof raw.init_lora_weights === 'string' && BASE_CHANGING_INITS.test(raw.init_lora_weights)) {
    warnings.push(
      `init_lora_weights is ${quote(raw.init_lora_weights, 60)}: unless the adapter was converted when saved, its factors are relative to a modified base model`,
    );
  }
  const patterns = [...Object.keys(c.rank_pattern ?? {}), ...Object.keys(c.alpha_pattern ?? {})];
  // every module is matched against every key: a hostile config could make that take minutes
  if (patterns.length > MAX_PATTERN_KEYS) {
    throw new InvalidFileError(file, `rank_pattern and alpha_pattern hold ${patterns.length} keys, over the ${MAX_PATTERN_KEYS} loraforge reads`);
  }
  for (const pattern of patterns) compilePattern(file, pattern, 'suffix');
  if (typeof c.target_modules === 'string') compilePattern(file, c.target_modules, 'full');
  if (typeof c.exclude_modules === 'string') compilePattern(file, c.exclude_modules, 'full');
  for (const pattern of typeof c.layers_pattern === 'string' ? [c.layers_pattern] : (c.layers_pattern ?? [])) compilePattern(file, pattern, 'layer');

  const layers = c.layers_to_transform;
  const layersPattern = c.layers_pattern;
  const taskType = c.task_type ?? null;
  return {
    baseModel: c.base_model_name_or_path ?? null,
    r: c.r ?? 8,
    loraAlpha: c.lora_alpha ?? 8,
    targetModules: c.target_modules ?? [],
    useRslora: c.use_rslora ?? false,
    fanInFanOut: c.fan_in_fan_out ?? false,
    rankPattern: { ...(c.rank_pattern ?? {}) },
    alphaPattern: { ...(c.alpha_pattern ?? {}) },
    modulesToSave: c.modules_to_save ?? null,
    layersToTransform: layers == null ? null : Array.isArray(layers) ? layers : [layers],
    layersPattern: layersPattern == null ? null : Array.isArray(layersPattern) ? layersPattern : [layersPattern],
    taskType,
    raw,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// PEFT's matching rules

const compiled = new Map<string, RegExp>();
const MAX_CACHED_PATTERNS = 10_000;
/** Far above real configs (a per-module rank_pattern of a 405B model has under 900 keys). */
const MAX_PATTERN_KEYS = 4096;

/** A nested quantifier such as (a+)+ can take exponential time on a crafted name: such patterns are refused. */
const NESTED_QUANTIFIER = /\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]/;

/**
 * Compiles a Python regular expression from a config the way PEFT applies it: `full` as re.fullmatch(pattern, key)
 * (string target_modules), `suffix` as re.match(rf"(.*\.)?({pattern})$", key) (rank_pattern / alpha_pattern keys).
 */
export function compilePattern(file: string, pattern: string, kind: 'full' | 'suffix' | 'layer'): RegExp {
  const cacheKey = `${kind}\u0000${pattern}`;
  const hit = compiled.get(cacheKey);
  if (hit) return hit;
  if (pattern.length > 2000 || NESTED_QUANTIFIER.test(pattern)) {
    throw new UnsupportedError(`${file}: the pattern ${quote(pattern, 80)} is too long or has nested quantifiers, which can take exponential time to match; list the module names instead`);
  }
  let re: RegExp;
  try {
    const source = { full: `^(?:${pattern})$`, suffix: `^(?:.*\\.)?(?:${pattern})$`, layer: `^.*\\.(?:${pattern})\\.(\\d+)\\.` }[kind];
    re = new RegExp(source);
  } catch (err) {
    throw new InvalidFileError(file, `${quote(pattern, 80)} is not a regular expression loraforge can read (${clip((err as Error).message, 200)})`);
  }
  if (compiled.size >= MAX_CACHED_PATTERNS) compiled.clear(); // patterns come from uploads: keep the cache bounded
  compiled.set(cacheKey, re);
  return re;
}

/** The first pattern key (in file order) that matches `module`, as peft.utils.other.get_pattern_key. */
export function matchPatternKey(file: string, keys: readonly string[], module: string): string | undefined {
  return keys.find((key) => compilePattern(file, key, 'suffix').test(module));
}

export interface ModuleHyperparameters {
  rank: number;
  alpha: number;
  scaling: number;
}

/** Rank, alpha and scaling PEFT gives `module` under `config` (LoraModel._create_and_replace + update_layer). */
export function moduleHyperparameters(config: AdapterConfig, module: string, file = CONFIG_NAME): ModuleHyperparameters {
  const rankKey = matchPatternKey(file, Object.keys(config.rankPattern), module);
  const alphaKey = matchPatternKey(file, Object.keys(config.alphaPattern), module);
  const rank = rankKey === undefined ? config.r : config.rankPattern[rankKey]!;
  const alpha = alphaKey === undefined ? config.loraAlpha : config.alphaPattern[alphaKey]!;
  return { rank, alpha, scaling: loraScaling(alpha, rank, config.useRslora) };
}

export function loraScaling(alpha: number, rank: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/** modules_to_save including the heads PEFT adds for the task type. */
export function effectiveModulesToSave(config: AdapterConfig): string[] {
  const heads = (config.taskType && TASK_HEADS[config.taskType]) || [];
  return [...new Set([...(config.modulesToSave ?? []), ...heads])];
}

/** The layer index PEFT reads from a module name for layers_to_transform. */
function layerIndex(module: string, layersPattern: string[] | null, file: string): number | null {
  const patterns = layersPattern && layersPattern.length > 0 ? layersPattern.map((p) => compilePattern(file, p, 'layer')) : [/^.*\.[^.]*\.(\d+)\./];
  for (const re of patterns) {
    const m = re.exec(module);
    if (m) return Number(m[1]);
  }
  return null;
}

function listMatches(list: string[], module: string): boolean {
  return list.includes(module) || list.some((t) => module.endsWith(`.${t}`));
}

/** Whether the config's exclude_modules keeps PEFT from adapting `module`. */
export function isExcluded(config: AdapterConfig, module: string, file = CONFIG_NAME): boolean {
  const exclude = config.raw.exclude_modules;
  if (typeof exclude === 'string') return compilePattern(file, exclude, 'full').test(module);
  return Array.isArray(exclude) && listMatches(exclude as string[], module);
}

/** Whether PEFT would put a LoRA layer on `module` under `config` (check_target_module_exists). */
export function targetsModule(config: AdapterConfig, module: string, file = CONFIG_NAME): boolean {
  if (isExcluded(config, module, file)) return false;
  const target = config.targetModules;
  if (typeof target === 'string') return compilePattern(file, target, 'full').test(module);
  if (target.includes(module)) return true;
  if (!target.some((t) => module.endsWith(`.${t}`))) return false;
  if (!config.layersToTransform || config.layersToTransform.length === 0) return true;
  const index = layerIndex(module, config.layersPattern, file);
  return index !== null && config.layersToTransform.includes(index);
}

/** Whether tensor `key` (e.g. "score.weight", "classifier.dense.bias") lies inside one of the modules_to_save. */
export function isSavedModuleKey(modulesToSave: string[], key: string): boolean {
  const parts = key.split('.');
  for (let end = 1; end < parts.length; end++) {
    const prefix = parts.slice(0, end).join('.');
    if (modulesToSave.some((m) => prefix === m || prefix.endsWith(`.${m}`))) return true;
  }
  return false;
}
