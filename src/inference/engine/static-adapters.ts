// Adapters known by directory rather than through the registry: the CLI's `--adapter <dir>`, and tests.
import path from 'node:path';
import type { AdapterResolver, ResolvedAdapter } from './index.js';

/** Serves the PEFT directories given, under the names given (default: each directory's name). */
export function staticAdapters(entries: Array<{ dir: string; name?: string }>): AdapterResolver {
  const byName = new Map<string, ResolvedAdapter>();
  for (const entry of entries) {
    const dir = path.resolve(entry.dir);
    const name = entry.name ?? path.basename(dir);
    byName.set(name, { name, dir, key: `dir:${dir}`, baseModel: null, rank: null });
  }
  return {
    resolve: async (name) => byName.get(name) ?? null,
    list: async () => [...byName.values()],
  };
}
