// The adapter_config.json we write: every module must get back, through PEFT's own matching rules, exactly the
// rank and scaling it has in memory, and every module in the weights must be targeted (PEFT silently drops
// weights of untargeted modules). Per-module ranks and alphas go to rank_pattern / alpha_pattern under the
// shortest name suffix that singles them out, dots escaped, so old and new PEFT versions read them alike.
import { InvalidInputError } from '../errors.js';
import {
  effectiveModulesToSave,
  isExcluded,
  isSavedModuleKey,
  loraScaling,
  moduleHyperparameters,
  targetsModule,
  type AdapterConfig,
} from './peft-config.js';

export interface ModuleShape {
  name: string;
  rank: number;
  alpha: number;
  scaling: number;
}

/** The most frequent value; ties go to the one seen first. */
function mode(values: number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = values[0]!;
  for (const [v, c] of counts) if (c > counts.get(best)!) best = v;
  return best;
}

const escapeDots = (s: string) => s.replaceAll('.', '\\.');

/** Pattern keys (longest first) giving each module its value where it differs from `fallback`. */
function patternFor(modules: { name: string; value: number }[], fallback: number): Record<string, number> {
  const keys = new Map<string, number>();
  for (const m of modules) {
    if (m.value === fallback) continue;
    const parts = m.name.split('.');
    let chosen: string | undefined;
    for (let start = parts.length - 1; start >= 0 && chosen === undefined; start--) {
      if (start > 0 && /^\d+$/.test(parts[start]!)) continue; // "layers.0.…" reads better than "0.…"
      const key = escapeDots(parts.slice(start).join('.'));
      const re = new RegExp(`^(?:.*\\.)?(?:${key})$`);
      if (!modules.some((o) => o.value !== m.value && re.test(o.name))) chosen = key;
    }
    if (chosen === undefined) throw new InvalidInputError(`cannot give module ${JSON.stringify(m.name)} its own rank or alpha in a PEFT config: another module's name ends with it`);
    keys.set(chosen, m.value);
  }
  return Object.fromEntries([...keys].sort((a, b) => b[0].length - a[0].length || a[0].localeCompare(b[0])));
}

/** The alpha that gives `scaling` at `rank` under PEFT's formula, preferring the module's own alpha. */
function alphaFor(m: ModuleShape, useRslora: boolean): number {
  if (loraScaling(m.alpha, m.rank, useRslora) === m.scaling) return m.alpha;
  return m.scaling * (useRslora ? Math.sqrt(m.rank) : m.rank);
}

/** JSON with keys sorted at every level and 2-space indent, as PEFT's json.dumps(sort_keys=True, indent=2). */
export function sortedJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])]));
    return v;
  };
  return `${JSON.stringify(sort(value), null, 2)}\n`;
}

/**
 * adapter_config.json content for `modules` (and modules_to_save tensors `savedNames`, keys without prefix),
 * starting from `config.raw` so fields we do not interpret (lora_dropout, task_type, …) survive.
 */
export function adapterConfigJson(config: AdapterConfig, modules: ModuleShape[], savedNames: string[]): Record<string, unknown> {
  if (modules.length === 0) throw new InvalidInputError('an adapter needs at least one LoRA module');
  const useRslora = config.useRslora;
  const withAlpha = modules.map((m) => ({ ...m, alpha: alphaFor(m, useRslora) }));
  const r = mode(withAlpha.map((m) => m.rank));
  const loraAlpha = mode(withAlpha.map((m) => m.alpha));
  const rankPattern = patternFor(withAlpha.map((m) => ({ name: m.name, value: m.rank })), r);
  const alphaPattern = patternFor(withAlpha.map((m) => ({ name: m.name, value: m.alpha })), loraAlpha);

  let targetModules: string[] | string = Array.isArray(config.targetModules) ? [...config.targetModules] : config.targetModules;
  if (Array.isArray(targetModules) && targetModules.length === 0) {
    targetModules = [...new Set(modules.map((m) => m.name.split('.').pop()!))].sort();
  }
  const raw: Record<string, unknown> = { ...config.raw };
  const draft: AdapterConfig = { ...config, targetModules, raw };
  if (modules.some((m) => isExcluded(draft, m.name))) delete raw.exclude_modules; // it would drop weights we hold
  const untargeted = modules.filter((m) => !targetsModule(draft, m.name)).map((m) => m.name);
  if (untargeted.length > 0) {
    targetModules = Array.isArray(targetModules)
      ? [...targetModules, ...untargeted]
      : [`(?:${targetModules})`, ...untargeted.map(escapeDots)].join('|');
  }

  let modulesToSave = config.modulesToSave;
  if (savedNames.length > 0) {
    const have = effectiveModulesToSave(config);
    const missing = savedNames.filter((k) => !isSavedModuleKey(have, k)).map((k) => k.split('.').slice(0, -1).join('.'));
    if (missing.length > 0) modulesToSave = [...new Set([...(modulesToSave ?? []), ...missing])];
  }

  delete raw.peft_version; // describes the writer, and we are not PEFT
  const out: Record<string, unknown> = {
    ...raw,
    peft_type: 'LORA',
    base_model_name_or_path: config.baseModel,
    task_type: config.taskType,
    r,
    lora_alpha: loraAlpha,
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
    target_modules: targetModules,
    use_rslora: useRslora,
    fan_in_fan_out: config.fanInFanOut,
    modules_to_save: modulesToSave,
    layers_to_transform: config.layersToTransform,
    layers_pattern: config.layersPattern,
    use_dora: false,
    bias: 'none',
    inference_mode: true,
  };

  // the config must give every module back its rank and scaling: check with the reader's own rules
  const check: AdapterConfig = { ...config, r, loraAlpha, rankPattern, alphaPattern, targetModules, modulesToSave, raw: out };
  for (const m of withAlpha) {
    const got = moduleHyperparameters(check, m.name);
    if (got.rank !== m.rank || got.alpha !== m.alpha || !targetsModule(check, m.name)) {
      throw new Error(`internal: the written config would give ${m.name} rank ${got.rank} alpha ${got.alpha}, not ${m.rank} / ${m.alpha}`);
    }
  }
  return out;
}
