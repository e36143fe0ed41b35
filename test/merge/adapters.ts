// In-memory LoRA adapters for the merge tests.
import type { LoraAdapter, LoraModule } from '../../src/formats/peft.js';
import { adapterConfig } from '../helpers/adapters.js';
import { randn } from './reference.js';

export interface ModuleSpec {
  name: string;
  out: number;
  inn: number;
  r: number;
  alpha?: number;
  seed?: number;
  A?: number[];
  B?: number[];
  kind?: 'linear' | 'embedding';
}

export function makeModule(s: ModuleSpec, rslora = false): LoraModule {
  const alpha = s.alpha ?? s.r;
  return {
    name: s.name,
    kind: s.kind ?? 'linear',
    rank: s.r,
    alpha,
    scaling: rslora ? alpha / Math.sqrt(s.r) : alpha / s.r,
    inFeatures: s.inn,
    outFeatures: s.out,
    A: s.A ? Float32Array.from(s.A) : randn(s.r * s.inn, s.seed ?? 1, 0.5),
    B: s.B ? Float32Array.from(s.B) : randn(s.out * s.r, (s.seed ?? 1) + 1000, 0.5),
  };
}

export function makeAdapter(modules: ModuleSpec[], opts: { base?: string | null; rslora?: boolean; dtype?: 'F32' | 'F16' | 'BF16' } = {}): LoraAdapter {
  const mods = modules.map((m) => makeModule(m, opts.rslora));
  const r = Math.max(...mods.map((m) => m.rank));
  const leaf = [...new Set(mods.map((m) => m.name.split('.').pop()!))];
  return {
    config: adapterConfig({
      baseModel: opts.base === undefined ? 'HuggingFaceTB/SmolLM-135M-Instruct' : opts.base,
      r,
      loraAlpha: mods[0]!.alpha,
      targetModules: leaf,
      useRslora: opts.rslora ?? false,
      raw: { peft_type: 'LORA', r, lora_alpha: mods[0]!.alpha, use_rslora: opts.rslora ?? false, task_type: 'CAUSAL_LM', lora_dropout: 0.05 },
    }),
    modules: new Map(mods.map((m) => [m.name, m])),
    savedModules: new Map(),
    dtype: opts.dtype ?? 'F32',
    warnings: [],
  };
}

/** Dense s·B·A of a module (float64). */
export function denseDelta(m: LoraModule, weight = 1): Float64Array {
  const d = new Float64Array(m.outFeatures * m.inFeatures);
  for (let i = 0; i < m.outFeatures; i++)
    for (let p = 0; p < m.rank; p++) {
      const b = weight * m.scaling * m.B[i * m.rank + p]!;
      for (let j = 0; j < m.inFeatures; j++) d[i * m.inFeatures + j] = d[i * m.inFeatures + j]! + b * m.A[p * m.inFeatures + j]!;
    }
  return d;
}

export function moduleProduct(m: LoraModule): Float64Array {
  return denseDelta(m, 1 / m.scaling);
}
