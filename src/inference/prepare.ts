// A model directory the engine can load, from what a user points at: a built model dir (has manifest.json) is used
// as is; an HF checkpoint dir is built (once: the builder caches it under <dataDir>/models).
import { access } from 'node:fs/promises';
import path from 'node:path';
import { buildModel, type BuildOptions } from './builder/index.js';
import { MANIFEST_FILE } from './builder/manifest.js';

export async function isBuiltModel(dir: string): Promise<boolean> {
  try {
    await access(path.join(dir, MANIFEST_FILE));
    return true;
  } catch {
    return false;
  }
}

/** The built model dir for `dir`, building it when it is a checkpoint. */
export async function prepareModel(dir: string, options: BuildOptions): Promise<{ dir: string; built: boolean }> {
  if (await isBuiltModel(dir)) return { dir, built: false };
  const result = await buildModel(dir, options);
  return { dir: result.dir, built: !result.cached };
}
