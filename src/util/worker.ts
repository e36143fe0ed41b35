// Starts a worker thread from a module next to the caller. From compiled code (dist/) the entry is a .js file; from
// sources (vitest, tsx) it is a .ts file, which Node 20 cannot load by itself, so it is booted through tsx.
import { Worker, type WorkerOptions } from 'node:worker_threads';
import './ort-env.js';

export function startWorker(entry: URL, options: WorkerOptions = {}): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, options);
  const boot =
    `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};\n` +
    `register();\nawait import(${JSON.stringify(entry.href)});\n`;
  return new Worker(boot, { ...options, eval: true });
}

/** The sibling module `name` of `importMetaUrl`, with the extension the caller itself was loaded with. */
export function siblingModule(importMetaUrl: string, name: string): URL {
  const ext = importMetaUrl.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, importMetaUrl);
}
