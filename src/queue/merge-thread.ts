// Worker-thread entry of one merge: runs the merge engine off the worker process's event loop (so BullMQ's job
// lock keeps renewing), reports progress, and stops between modules when the parent says cancel. The thread is
// started ahead of its job (loading the engine takes a moment) and waits for one `run` message.
import { parentPort } from 'node:worker_threads';
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

export type ParentMessage = { type: 'run'; data: MergeThreadData } | { type: 'cancel'; reason: string };

export type ThreadMessage =
  | { type: 'progress'; phase: string; done: number; total: number }
  | { type: 'done'; report: unknown; seconds: number; weightsSha256?: string }
  | { type: 'error'; code?: string; name: string; message: string; stack?: string };

const port = parentPort!;
const controller = new AbortController();

async function run(data: MergeThreadData): Promise<void> {
  const started = performance.now();
  let weightsSha256: string | undefined;
  try {
    const report = await mergeToDirectory(data.inputDirs, data.outDir, data.options, {
      onProgress: (p) => port.postMessage({ type: 'progress', phase: p.phase, done: p.done, total: p.total } satisfies ThreadMessage),
      signal: controller.signal,
      labels: data.labels,
      compute: data.compute,
      denseCacheBytes: data.denseCacheBytes,
      onWritten: (output) => (weightsSha256 = output.weightsSha256),
    });
    port.postMessage({ type: 'done', report, seconds: (performance.now() - started) / 1000, weightsSha256 } satisfies ThreadMessage);
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
}

port.on('message', (message: ParentMessage) => {
  if (message.type === 'cancel') controller.abort(message.reason);
  else void run(message.data);
});
