// The merge engine's public face: what the CLI, the queue worker and the API use.
export { mergeAdapters, type MergeHooks, type MergeProgress, type MergeResult } from './engine.js';
export { mergeToDirectory, type DirectoryHooks } from './directory.js';
export {
  DEFAULT_WEIGHTS_TEXT,
  defaultWeights,
  listMethods,
  MergeOptionsSchema,
  MERGE_METHODS,
  METHODS,
  parseMergeOptions,
  PRUNING_METHODS,
  traitsOf,
  type MergeMethod,
  type MergeOptions,
  type MergeOptionsInput,
  type MethodTraits,
} from './options.js';
export { REPORT_FILE, type MergeReport, type MergeInputSummary } from './report.js';
export type { ModuleDiagnostics, OverallDiagnostics } from './diagnostics.js';
export type { ComputeOptions, Device, MergeLogger } from './kernels/matmul.js';
