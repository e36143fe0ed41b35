// Runs one merge in a worker thread of its own and turns its messages back into a promise: progress to a
// callback, cancel from an AbortSignal, errors back into LoraforgeError kinds (by code) or plain errors.
import { LoraforgeError, type ErrorCode } from '../errors.js';
import { siblingModule, startWorker } from '../util/worker.js';
import type { MergeThreadData, ThreadMessage } from './merge-thread.js';

const CANCEL_GRACE_MS = 10_000;

export function runMergeInThread(
  data: MergeThreadData,
  hooks: { onProgress(p: { phase: string; done: number; total: number }): void; signal: AbortSignal },
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const thread = startWorker(siblingModule(import.meta.url, 'merge-thread'), { workerData: data });
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(killTimer);
      hooks.signal.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => {
      thread.postMessage({ type: 'cancel', reason: String(hooks.signal.reason ?? 'cancelled') });
      // the engine stops between modules; one that does not within the grace is stopped hard
      killTimer = setTimeout(() => void thread.terminate(), CANCEL_GRACE_MS);
    };
    if (hooks.signal.aborted) onAbort();
    else hooks.signal.addEventListener('abort', onAbort, { once: true });

    thread.on('message', (message: ThreadMessage) => {
      if (message.type === 'progress') hooks.onProgress(message);
      else if (message.type === 'done') settle(() => resolve(message.report));
      else {
        settle(() => {
          const err = message.code
            ? new LoraforgeError(message.code as ErrorCode, message.message)
            : Object.assign(new Error(message.message), { name: message.name, stack: message.stack });
          reject(err);
        });
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
  });
}
