// Worker threads for a large dense merge: its elementwise passes (TIES, DARE, magnitude pruning) are JS on one
// core, so whole module steps go to threads of their own, as many as the cores (each with a one-thread ORT
// kernel); any path runs there when a merge asks for threads. The dispatch keeps a few modules in flight and
// takes the results in module order, so a merge's numbers do not depend on the number of threads.
import type { Worker } from 'node:worker_threads';
import { siblingModule, startWorker } from '../util/worker.js';
import type { Device } from './kernels/matmul.js';
import type { ModuleJob, ModuleOutcome } from './module-step.js';
import type { ModuleThreadData, ModuleThreadMessage, ModuleThreadReply } from './module-thread.js';

const CLOSE_GRACE_MS = 60_000;

interface Task {
  job: ModuleJob;
  resolve(r: ModuleOutcome): void;
  reject(err: Error): void;
}

/**
 * The array as it should travel to a thread: a message clones a view's whole buffer, and an adapter is read in
 * one piece, one buffer for all its tensors (a module's job once cloned all four 8B-shaped adapters, 218 MB). So
 * a view travels as a copy of itself alone. (Views of a SharedArrayBuffer would need no copy, but
 * onnxruntime-node refuses them as tensor data.)
 */
export function portable(x: Float32Array): Float32Array {
  return x.byteLength === x.buffer.byteLength ? x : x.slice();
}

function portableJob(job: ModuleJob): ModuleJob {
  return { ...job, inputs: job.inputs.map((x) => ({ ...x, module: { ...x.module, A: portable(x.module.A), B: portable(x.module.B) } })) };
}

export class ModulePool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: Task[] = [];
  private failure: Error | null = null;

  constructor(size: number, device: Device) {
    for (let i = 0; i < size; i++) {
      const worker = startWorker(siblingModule(import.meta.url, 'module-thread'), { workerData: { device } satisfies ModuleThreadData });
      worker.on('error', (err) => this.fail(err));
      this.all.push(worker);
      this.idle.push(worker);
    }
  }

  get size(): number {
    return this.all.length;
  }

  run(job: ModuleJob): Promise<ModuleOutcome> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  /**
   * Fails the waiting tasks and lets every thread finish the module in hand and exit by itself: terminating a
   * thread inside an ONNX Runtime run aborts the process (seen on cancel and SIGTERM mid-merge). A thread that has
   * not left after CLOSE_GRACE_MS is terminated.
   */
  async close(): Promise<void> {
    this.fail(new Error('module pool closed'));
    await Promise.all(
      this.all.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.threadId === -1) return resolve(); // already gone
            const timer = setTimeout(() => void w.terminate(), CLOSE_GRACE_MS);
            w.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            w.postMessage({ type: 'close' } satisfies ModuleThreadMessage);
          }),
      ),
    );
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const task = this.queue.shift()!;
      const onExit = () => task.reject(this.failure ?? new Error('a merge thread stopped'));
      worker.once('exit', onExit);
      worker.once('message', (reply: ModuleThreadReply) => {
        worker.off('exit', onExit);
        this.idle.push(worker);
        if (reply.type === 'done') task.resolve(reply.outcome);
        else task.reject(new Error(reply.message));
        this.pump();
      });
      worker.postMessage({ type: 'job', job: portableJob(task.job) } satisfies ModuleThreadMessage);
    }
  }

  /** A thread that crashed (or closing) fails every waiting task. */
  private fail(err: Error): void {
    this.failure ??= err;
    for (const task of this.queue.splice(0)) task.reject(this.failure);
  }
}
