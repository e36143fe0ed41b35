// merge-report.json: everything needed to trust, compare and reproduce a merge.
import type { LoraAdapter } from '../formats/peft.js';
import type { MergeOptions } from './options.js';
import { round, type ModuleDiagnostics, type OverallDiagnostics } from './diagnostics.js';
import type { Device } from './kernels/matmul.js';

export interface MergeInputSummary {
  /** how the input was named (its directory, or its registry name) */
  label: string;
  /** sha256 of its adapter_model.safetensors, when read from a directory */
  sha256?: string;
  baseModel: string | null;
  rank: number;
  dtype: string;
  modules: number;
}

export interface MergeReport {
  format: 'loraforge-merge-report';
  version: 1;
  createdAt: string;
  /** the recipe with every default filled in; `methodRun` differs from `method` only where PEFT rules replace it */
  recipe: MergeOptions & { methodRun: MergeOptions['method'] };
  inputs: MergeInputSummary[];
  output: { baseModel: string | null; rank: number; dtype: 'F32' | 'F16' | 'BF16'; modules: number; parameters: number };
  diagnostics: { overall: OverallDiagnostics; modules: ModuleDiagnostics[] };
  warnings: string[];
  /** where the matrix products ran */
  device: Device;
  timings: { readSeconds?: number; mergeSeconds: number; secondsPerModule: number };
}

export const REPORT_FILE = 'merge-report.json';

/** The report of a finished merge: the recipe as run, inputs and output summarised, diagnostics, timings. */
export function buildReport(r: {
  options: MergeOptions;
  methodRun: MergeOptions['method'];
  inputs: LoraAdapter[];
  labels: string[];
  output: LoraAdapter;
  dtype: 'F32' | 'F16' | 'BF16';
  diagnostics: MergeReport['diagnostics'];
  warnings: string[];
  device: Device;
  mergeSeconds: number;
}): MergeReport {
  const modules = [...r.output.modules.values()];
  return {
    format: 'loraforge-merge-report',
    version: 1,
    createdAt: new Date().toISOString(),
    recipe: { ...r.options, methodRun: r.methodRun },
    inputs: r.inputs.map((a, i) => ({
      label: r.labels[i]!,
      baseModel: a.config.baseModel,
      rank: Math.max(...[...a.modules.values()].map((m) => m.rank)),
      dtype: a.dtype,
      modules: a.modules.size,
    })),
    output: {
      baseModel: r.output.config.baseModel,
      rank: r.output.config.r,
      dtype: r.dtype,
      modules: modules.length,
      parameters: modules.reduce((s, m) => s + m.A.length + m.B.length, 0),
    },
    diagnostics: r.diagnostics,
    warnings: [...r.warnings, ...r.inputs.flatMap((a, i) => (a.warnings ?? []).map((w) => `${r.labels[i]}: ${w}`))],
    device: r.device,
    timings: { mergeSeconds: round(r.mergeSeconds), secondsPerModule: round(r.mergeSeconds / modules.length) },
  };
}
