// The planner: checks that the inputs can be merged with the requested recipe and lists the per-module work.
// Incompatible inputs are refused with the adapters and modules named, before any math runs.
import { InvalidInputError } from '../errors.js';
import { baseModelKey, naturalCompare, type LoraAdapter, type LoraModule } from '../formats/peft.js';
import { traitsOf, type MergeOptions } from './options.js';
import { strongestWeights } from './layer-groups.js';

export interface ModuleWork {
  name: string;
  kind: LoraModule['kind'];
  inFeatures: number;
  outFeatures: number;
  /** indices of the adapters that have this module, in input order */
  present: number[];
}

export interface MergePlan {
  modules: ModuleWork[];
  baseModel: string | null;
  /** the method that actually runs (PEFT merges a single adapter in factors space linearly) */
  method: MergeOptions['method'];
  warnings: string[];
}

/** Module paths in model order: layer 2 before layer 10. */
export const compareModuleNames = naturalCompare;

export function planMerge(adapters: LoraAdapter[], labels: string[], options: MergeOptions): MergePlan {
  const n = adapters.length;
  if (n === 0) throw new InvalidInputError('give at least one adapter to merge');
  if (options.weights.length !== n) {
    throw new InvalidInputError(`got ${options.weights.length} weight(s) for ${n} adapter(s): give one weight per adapter, in the same order`);
  }
  const warnings: string[] = [];

  const bases = adapters.map((a, i) => ({ label: labels[i]!, id: a.config.baseModel })).filter((b) => b.id);
  const distinct = new Map(bases.map((b) => [baseModelKey(b.id!), b]));
  if (distinct.size > 1) {
    const list = [...distinct.values()].map((b) => `${b.label} (${b.id})`).join(', ');
    throw new InvalidInputError(`these adapters were trained on different base models and cannot be merged: ${list}`);
  }
  const baseModel = bases[0]?.id ?? null;

  const byName = new Map<string, ModuleWork>();
  adapters.forEach((adapter, i) => {
    for (const m of adapter.modules.values()) {
      const work = byName.get(m.name);
      if (!work) {
        byName.set(m.name, { name: m.name, kind: m.kind, inFeatures: m.inFeatures, outFeatures: m.outFeatures, present: [i] });
        continue;
      }
      if (work.kind !== m.kind || work.inFeatures !== m.inFeatures || work.outFeatures !== m.outFeatures) {
        const first = adapters[work.present[0]!]!.modules.get(m.name)!;
        throw new InvalidInputError(
          `module ${m.name} has different shapes: ${labels[work.present[0]!]} has ${describe(first)}, ${labels[i]} has ${describe(m)}; ` +
            'the adapters must come from the same base model',
        );
      }
      work.present.push(i);
    }
  });
  const modules = [...byName.values()].sort((a, b) => compareModuleNames(a.name, b.name));
  if (modules.length === 0) throw new InvalidInputError('the adapters have no LoRA modules to merge');

  let method = options.method;
  if (options.space === 'factors' && n === 1 && !traitsOf(method).exact) {
    warnings.push(`PEFT merges a single adapter with "linear" whatever the method; ${method} was replaced by linear (use delta space to prune one adapter)`);
    method = 'linear';
  }
  // PEFT's entry-by-entry combination of the A's and of the B's
  if (options.space === 'factors' && traitsOf(method).factors !== 'stack' && traitsOf(method).factors !== 'svd') {
    for (const work of modules) {
      const ranks = work.present.map((i) => adapters[i]!.modules.get(work.name)!.rank);
      if (new Set(ranks).size > 1) {
        const list = work.present.map((i, j) => `${labels[i]} r=${ranks[j]}`).join(', ');
        throw new InvalidInputError(
          `factors-space ${method} needs equal ranks, as in PEFT, but module ${work.name} has ${list}; use delta space (the default), cat or svd`,
        );
      }
    }
  }

  const partial = modules.filter((m) => m.present.length < n);
  if (partial.length > 0) {
    warnings.push(
      `${partial.length} of ${modules.length} modules are missing from some adapters (e.g. ${partial[0]!.name}); ` +
        'a missing adapter contributes nothing there and the weights are not renormalised',
    );
  }

  const saved = new Map<string, number>();
  adapters.forEach((a, i) => {
    for (const name of a.savedModules.keys()) {
      if (saved.has(name)) {
        throw new InvalidInputError(
          `${labels[saved.get(name)!]} and ${labels[i]} both carry a full copy of ${name} (modules_to_save); ` +
            'it cannot be merged: remove it from all but one adapter',
        );
      }
      saved.set(name, i);
    }
  });

  if (options.density !== undefined && options.density >= 1 && traitsOf(method).sparsify !== 'none') {
    warnings.push(`density ${options.density} keeps every entry: ${method} prunes nothing`);
  }
  const overshoot = overshootWarning(options, method);
  if (overshoot) warnings.push(overshoot);
  return { modules, baseModel, method, warnings };
}

function describe(m: LoraModule): string {
  return m.kind === 'embedding' ? `an embedding ${m.inFeatures}×${m.outFeatures}` : `${m.outFeatures}×${m.inFeatures}`;
}

/**
 * MERGE.md "What this means in practice": adding several full updates overshoots. In delta space linear-like
 * methods add Σw_i updates; TIES and DARE-TIES average agreeing entries, so their scale is about the largest
 * weight. Past 1.5 the merged model usually does worse than any input.
 */
function overshootWarning(options: MergeOptions, method: MergeOptions['method']): string | null {
  const w = strongestWeights(options);
  const averaging = traitsOf(method).electSigns;
  const scale = averaging ? Math.max(...w.map(Math.abs)) : w.reduce((a, b) => a + b, 0);
  if (options.space === 'delta' && scale > 1.5) {
    const what = averaging ? `the largest weight is ${round(scale)}` : `the weights sum to ${round(scale)}`;
    return (
      `${what}: ${method} will likely overshoot (each adapter's full update is added); weights summing to about 1 ` +
      'are the sane start, and a sweep over the weights finds the best'
    );
  }
  if (options.space === 'factors' && traitsOf(method).factors === 'sum' && w.length > 1) {
    return 'factors-space linear multiplies the summed factors, so cross terms B_i·A_j join the result (see relError); delta space is exact';
  }
  return null;
}

const round = (x: number) => Math.round(x * 100) / 100;
