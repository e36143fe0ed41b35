// Worker thread of the module pool (module-pool.ts): merges the modules it is sent, one at a time, with a matmul
// kernel of one thread: the threads of the pool, not ORT's, share the cores. The written factors go back
// transferred, not copied.
import { parentPort, workerData } from 'node:worker_threads';
import { MatmulKernel, type Device } from './kernels/matmul.js';
import { TileArena } from './dense.js';
import { mergeModule, type ModuleJob, type ModuleOutcome } from './module-step.js';

export interface ModuleThreadData {
  device: Device;
}

export type ModuleThreadReply = { type: 'done'; outcome: ModuleOutcome } | { type: 'error'; message: string };
export type ModuleThreadMessage = { type: 'job'; job: ModuleJob } | { type: 'close' };

const kernel = new MatmulKernel({ device: (workerData as ModuleThreadData).device, threads: 1 });
const arena = new TileArena();
const port = parentPort!;
let busy: Promise<unknown> = Promise.resolve();

/** The buffers a reply can hand over: arrays that own their whole (unshared) buffer, each once. */
function transferable(outcome: ModuleOutcome): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const x of [outcome.merged.B.data, outcome.merged.A.data]) {
    if (x.buffer instanceof ArrayBuffer && x.byteOffset === 0 && x.byteLength === x.buffer.byteLength) out.add(x.buffer);
  }
  return [...out];
}

port.on('message', (message: ModuleThreadMessage) => {
  if (message.type === 'close') {
    // leave on our own once the module in hand is done: terminating a thread inside an ONNX Runtime run aborts
    // the whole process
    void busy.then(async () => {
      await kernel.release();
      port.close();
    });
    return;
  }
  busy = mergeModule(kernel, arena, message.job, null).then(
    (outcome) => port.postMessage({ type: 'done', outcome } satisfies ModuleThreadReply, transferable(outcome)),
    (err: unknown) => port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies ModuleThreadReply),
  );
});
