// The LoRA targets a graph needs for given PEFT adapters: the projections their adapter_config.json names, in the
// builder's terms (`gate_proj` → `gate`), so a model built for them takes every module they adapt.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidFileError } from '../../errors.js';
import { CONFIG_NAME, parseAdapterConfig } from '../../formats/peft-config.js';
import { isLoraTarget, type LoraTarget } from './naming.js';

/** Union over the adapters; undefined when one names its modules by a regex (then the configured default applies). */
export async function targetsOfAdapters(dirs: readonly string[]): Promise<LoraTarget[] | undefined> {
  const targets = new Set<LoraTarget>();
  for (const dir of dirs) {
    const file = path.join(dir, CONFIG_NAME);
    const config = parseAdapterConfig(JSON.parse(await readFile(file, 'utf8')), file);
    if (!Array.isArray(config.targetModules)) return undefined;
    for (const module of config.targetModules) {
      const target = (module.split('.').pop() ?? module).replace(/_proj$/, '');
      if (!isLoraTarget(target)) throw new InvalidFileError(file, `targets ${JSON.stringify(module)}, which loraforge cannot serve`);
      targets.add(target);
    }
  }
  return [...targets];
}
