// What the registry records about an adapter dir, read by formats' inspectAdapter: the directory checked by
// openAdapterFiles (as the CLI and the worker do), the config and the safetensors header, and every tensor's
// values read once so NaN and ±inf are refused at the door. A bad adapter is refused with formats' own message.
import path from 'node:path';
import { inspectAdapter, openAdapterFiles } from '../formats/peft.js';
import type { ModuleShapes } from './types.js';

export interface AdapterFacts {
  baseModel: string | null;
  rank: number;
  alpha: number;
  targetModules: string[];
  dtype: string;
  modules: number;
  parameters: number;
  bytes: number;
  moduleShapes: ModuleShapes;
  /** formats' warnings (at most 5), absent when there are none */
  warnings?: string[];
}

export async function describeAdapter(dir: string): Promise<AdapterFacts> {
  const summary = await inspectAdapter(await openAdapterFiles(dir), { values: 'refuse' });
  const moduleShapes: ModuleShapes = {};
  for (const m of summary.modules) {
    moduleShapes[m.name] = { kind: m.kind, inFeatures: m.inFeatures, outFeatures: m.outFeatures, rank: m.rank };
  }
  return {
    baseModel: summary.config.baseModel,
    rank: Math.max(...summary.ranks),
    alpha: summary.config.loraAlpha,
    targetModules: summary.targets,
    dtype: summary.dtype,
    modules: summary.modules.length,
    parameters: summary.parameters,
    bytes: summary.bytes,
    moduleShapes,
    // the staging dir means nothing to whoever reads the record: files are named alone
    ...(summary.warnings.length > 0 && { warnings: summary.warnings.slice(0, 5).map((w) => w.replaceAll(summary.dir + path.sep, '')) }),
  };
}
