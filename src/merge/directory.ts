// mergeToDirectory: PEFT adapter directories in, a PEFT adapter directory out, with merge-report.json beside the
// weights, all written atomically (a failed or cancelled merge leaves nothing behind). The inputs are read at
// once, each with one large read, and their hashes (for the report) are taken in a worker thread while the
// merge runs.
import { CancelledError } from '../errors.js';
import { openAdapterFiles, readAdapter, writeAdapter } from '../formats/peft.js';
import type { MergeHooks, MergeResult } from './engine.js';
import { parseMergeOptions } from './options.js';
import { REPORT_FILE, type MergeReport } from './report.js';
import { siblingModule, startWorker } from '../util/worker.js';
import type { HashThreadData } from './hash-thread.js';


export interface DirectoryHooks extends MergeHooks {
  /** replace an existing output directory (default: refuse) */
  overwrite?: boolean;
  /**
   * called once the output is in place; when given, the weights are hashed as they are written, so a
   * content-addressed store can take the result without reading it again
   */
  onWritten?: (output: { weightsSha256?: string }) => void;
}

export async function mergeToDirectory(inputDirs: string[], outDir: string, optionsInput: unknown, hooks: DirectoryHooks = {}): Promise<MergeReport> {
  const options = parseMergeOptions(optionsInput);
  const started = performance.now();
  if (hooks.signal?.aborted) throw new CancelledError('merge cancelled');
  // the engine (ONNX Runtime, the ONNX writer) loads while the inputs are read: the main thread waits on the reads,
  // and loading it took a command about 0.1 s
  const engine = import('./engine.js');
  engine.catch(() => undefined); // awaited below, once the reads succeed
  const total = inputDirs.length;
  let done = 0;
  hooks.onProgress?.({ phase: 'read', done, total });
  // checked before anything is read: a FIFO or /dev/zero as the weights would never end the read or the hash
  const inputs = await inOrder(inputDirs.map((dir) => openAdapterFiles(dir)));
  const reads = inputs.map((files) =>
    readAdapter(files).then((adapter) => {
      hooks.onProgress?.({ phase: 'read', done: ++done, total });
      return adapter;
    }),
  );
  const adapters = await inOrder(reads);
  if (hooks.signal?.aborted) throw new CancelledError('merge cancelled');
  const readSeconds = (performance.now() - started) / 1000;
  // hashes are only needed for the report: a worker thread takes them while the modules are merged (not while
  // they are read: on two cores the reads then took a tenth longer, 1.51 → 1.38 s for the whole merge of four
  // 8B-shaped adapters)
  const hasher = hashInThread(inputs.map((files) => files.weights));
  let result: MergeResult & { sha: string[] };
  try {
    const { mergeAdapters } = await engine;
    const merged = await mergeAdapters(adapters, options, { ...hooks, labels: hooks.labels ?? inputDirs });
    result = { ...merged, sha: await hasher.hashes };
  } finally {
    await hasher.stop();
  }
  const { adapter, report, sha } = result;
  report.inputs.forEach((input, i) => (input.sha256 = sha[i]));
  report.timings.readSeconds = Math.round(readSeconds * 1000) / 1000;
  hooks.onProgress?.({ phase: 'write', done: 0, total: 1 });
  if (hooks.signal?.aborted) throw new CancelledError('merge cancelled');
  const written = await writeAdapter(outDir, adapter, {
    dtype: report.output.dtype,
    overwrite: hooks.overwrite ?? false,
    extraFiles: { [REPORT_FILE]: `${JSON.stringify(report, null, 2)}\n` },
    sha256: hooks.onWritten !== undefined,
  });
  hooks.onWritten?.(written);
  hooks.onProgress?.({ phase: 'write', done: 1, total: 1 });
  return report;
}

/** Every promise's value, or the failure of the first one in list order (not the first to fail in time), so the
 * error a user sees for several bad inputs does not depend on timing. */
async function inOrder<T>(promises: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** sha256 of each file, computed in a worker thread; `stop` ends the thread if it is still working. */
function hashInThread(files: string[]): { hashes: Promise<string[]>; stop(): Promise<void> } {
  const worker = startWorker(siblingModule(import.meta.url, 'hash-thread'), { workerData: { files } satisfies HashThreadData });
  const hashes = new Promise<string[]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the hashing thread exited with code ${code} before it answered`)));
  });
  hashes.catch(() => undefined); // awaited after the merge; a failure before then must not count as unhandled
  return { hashes, stop: async () => void (await worker.terminate()) };
}
