// Runs each merge in a worker thread of its own (a fresh heap per merge, and a hard stop is possible) and turns
// its messages back into a promise: progress to a callback, cancel from an AbortSignal, errors back into
// LoraforgeError kinds (by code) or plain errors. One thread is kept started ahead, so loading the engine is not
// part of a job's time.
import type { Worker } from 'node:worker_threads';
import { LoraforgeError, type ErrorCode } from '../errors.js';
import { siblingModule, startWorker } from '../util/worker.js';
import type { MergeThreadData, ParentMessage, ThreadMessage } from './merge-thread.js';

const CANCEL_GRACE_MS = 10_000;

export class MergeThreads {
  private spare: Worker | undefined;

  constructor() {
    this.spare = this.spawn();
  }

  private spawn(): Worker {
    const thread = startWorker(siblingModule(import.meta.url, 'merge-thread'));
    thread.unref(); // an idle spare does not keep the process alive
    thread.on('error', () => undefined); // a spare that fails to start is replaced when taken
    thread.once('exit', () => {
      if (this.spare === thread) this.spare = undefined;
    });
    return thread;
  }

  /** Runs one merge; resolves with the engine's report, its wall time inside the thread and the output weights' sha256. */
  run(
    data: MergeThreadData,
    hooks: { onProgress(p: { phase: string; done: number; total: number }): void; signal: AbortSignal },
  ): Promise<{ report: unknown; seconds: number; weightsSha256?: string }> {
    const thread = this.spare ?? this.spawn();
    this.spare = this.spawn();
    thread.ref();
    return new Promise((resolve, reject) => {
      let settled = false;
      let killTimer: NodeJS.Timeout | undefined;
      const send = (message: ParentMessage) => thread.postMessage(message);
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(killTimer);
        hooks.signal.removeEventListener('abort', onAbort);
        void thread.terminate();
        fn();
      };
      const onAbort = () => {
        send({ type: 'cancel', reason: String(hooks.signal.reason ?? 'cancelled') });
        // the engine stops between modules; one that does not within the grace is stopped hard
        killTimer = setTimeout(() => void thread.terminate(), CANCEL_GRACE_MS);
      };

      thread.on('message', (message: ThreadMessage) => {
        if (message.type === 'progress') hooks.onProgress(message);
        else if (message.type === 'done') settle(() => resolve({ report: message.report, seconds: message.seconds, weightsSha256: message.weightsSha256 }));
        else {
          settle(() =>
            reject(
              message.code
                ? new LoraforgeError(message.code as ErrorCode, message.message)
                : Object.assign(new Error(message.message), { name: message.name, stack: message.stack }),
            ),
          );
        }
      });
      thread.on('error', (err) => settle(() => reject(err)));
      thread.on('exit', (code) => {
        settle(() =>
          reject(
            hooks.signal.aborted
              ? new LoraforgeError('cancelled', `merge stopped: ${String(hooks.signal.reason ?? 'cancelled')}`)
              : new Error(`the merge thread exited with code ${code} before finishing`),
          ),
        );
      });
      send({ type: 'run', data });
      if (hooks.signal.aborted) onAbort();
      else hooks.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async close(): Promise<void> {
    await this.spare?.terminate();
    this.spare = undefined;
  }
}
