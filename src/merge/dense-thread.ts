// Worker thread of the dense pool (dense-pool.ts): merges the modules it is sent, one at a time, with a matmul
// kernel of one thread: the threads of the pool, not ORT's, share the cores.
import { parentPort, workerData } from 'node:worker_threads';
import { MatmulKernel, type Device } from './kernels/matmul.js';
import { mergeDenseModule, TileArena, type DenseModuleJob } from './dense.js';

export interface DenseThreadData {
  device: Device;
}

export type DenseThreadReply = { type: 'done'; result: Awaited<ReturnType<typeof mergeDenseModule>> } | { type: 'error'; message: string };
export type DenseThreadMessage = { type: 'job'; job: DenseModuleJob } | { type: 'close' };

const kernel = new MatmulKernel({ device: (workerData as DenseThreadData).device, threads: 1 });
const arena = new TileArena();
const port = parentPort!;
let busy: Promise<unknown> = Promise.resolve();

port.on('message', (message: DenseThreadMessage) => {
  if (message.type === 'close') {
    // leave on our own once the module in hand is done: terminating a thread inside an ONNX Runtime run aborts
    // the whole process
    void busy.then(async () => {
      await kernel.release();
      port.close();
    });
    return;
  }
  busy = mergeDenseModule(kernel, arena, message.job, null).then(
    (result) => port.postMessage({ type: 'done', result } satisfies DenseThreadReply),
    (err: unknown) => port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies DenseThreadReply),
  );
});
