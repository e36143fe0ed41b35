// Worker-thread entry of one merge: runs the merge engine off the worker process's event loop (so BullMQ's job
// lock keeps renewing), reports progress, and stops between modules when the parent says cancel.
import { parentPort, workerData } from 'node:worker_threads';
import { mergeToDirectory } from '../merge/index.js';
import type { MergeOptions } from '../merge/options.js';

export interface MergeThreadData {
  inputDirs: string[];
  outDir: string;
  options: MergeOptions;
  /** the inputs' registry names, for the engine's messages and the report */
  labels: string[];
  /** where the matrix products run (config `merge`) */
  compute: { device: 'cpu' | 'cuda'; threads?: number };
  denseCacheBytes: number;
}

export type ThreadMessage =
  | { type: 'progress'; phase: string; done: number; total: number }
  | { type: 'done'; report: unknown }
  | { type: 'error'; code?: string; name: string; message: string; stack?: string };

const port = parentPort!;
const { inputDirs, outDir, options, labels, compute, denseCacheBytes } = workerData as MergeThreadData;
const controller = new AbortController();
port.on('message', (message: { type: 'cancel'; reason: string }) => {
  if (message.type === 'cancel') controller.abort(message.reason);
});

try {
  const report = await mergeToDirectory(inputDirs, outDir, options, {
    onProgress: (p) => port.postMessage({ type: 'progress', phase: p.phase, done: p.done, total: p.total } satisfies ThreadMessage),
    signal: controller.signal,
    labels,
    compute,
    denseCacheBytes,
  });
  port.postMessage({ type: 'done', report } satisfies ThreadMessage);
} catch (err) {
  const e = err as Error & { code?: unknown };
  port.postMessage({
    type: 'error',
    code: typeof e.code === 'string' ? e.code : undefined,
    name: e.name,
    message: e.message,
    stack: e.stack,
  } satisfies ThreadMessage);
}
port.close();
