// Worker threads for the dense path: the elementwise passes of TIES, DARE and magnitude pruning are JS loops on
// one core, so whole modules go to threads of their own, as many as the cores (each with a one-thread ORT
// kernel). The engine keeps a few modules in flight and takes the results in module order, so a merge's numbers
// do not depend on the number of threads.
import type { Worker } from 'node:worker_threads';
import { siblingModule, startWorker } from '../util/worker.js';
import type { Device } from './kernels/matmul.js';
import type { DenseModuleJob, DenseModuleResult } from './dense.js';
import type { DenseThreadData, DenseThreadMessage, DenseThreadReply } from './dense-thread.js';

const CLOSE_GRACE_MS = 60_000;

interface Task {
  job: DenseModuleJob;
  resolve(r: DenseModuleResult): void;
  reject(err: Error): void;
}

export class DensePool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: Task[] = [];
  private failure: Error | null = null;

  constructor(size: number, device: Device) {
    for (let i = 0; i < size; i++) {
      const worker = startWorker(siblingModule(import.meta.url, 'dense-thread'), { workerData: { device } satisfies DenseThreadData });
      worker.on('error', (err) => this.fail(err));
      this.all.push(worker);
      this.idle.push(worker);
    }
  }

  get size(): number {
    return this.all.length;
  }

  run(job: DenseModuleJob): Promise<DenseModuleResult> {
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
    this.fail(new Error('dense pool closed'));
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
            w.postMessage({ type: 'close' } satisfies DenseThreadMessage);
          }),
      ),
    );
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const task = this.queue.shift()!;
      const onExit = () => task.reject(this.failure ?? new Error('a dense merge thread stopped'));
      worker.once('exit', onExit);
      worker.once('message', (reply: DenseThreadReply) => {
        worker.off('exit', onExit);
        this.idle.push(worker);
        if (reply.type === 'done') task.resolve(reply.result);
        else task.reject(new Error(reply.message));
        this.pump();
      });
      worker.postMessage({ type: 'job', job: task.job } satisfies DenseThreadMessage);
    }
  }

  /** A thread that crashed (or closing) fails every waiting task. */
  private fail(err: Error): void {
    this.failure ??= err;
    for (const task of this.queue.splice(0)) task.reject(this.failure);
  }
}
