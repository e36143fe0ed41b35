// merge-report.json: everything needed to trust, compare and reproduce a merge.
import type { MergeOptions } from './options.js';
import type { ModuleDiagnostics, OverallDiagnostics } from './diagnostics.js';
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
