// How a cancel reaches a running job, for the merge and the eval workers alike: the API sets a flag in Redis that
// the job polls, and publishes on a control channel so that the worker running the job aborts it at once.
import type { Redis } from 'ioredis';

const REASON = 'cancelled by request';

/** Aborts `signal` once `key` exists, checked every `everyMs`; stop() ends the polling. */
export function pollCancelFlag(redis: Redis, key: string, everyMs: number): { signal: AbortSignal; stop(): void } {
  const controller = new AbortController();
  const timer = setInterval(() => {
    void redis.exists(key).then((n) => n === 1 && controller.abort(REASON), () => undefined);
  }, everyMs);
  return { signal: controller.signal, stop: () => clearInterval(timer) };
}

/**
 * Follows `channel` on a connection of its own; a `{type: "cancel", id}` message cancels job `id` through
 * `cancelJob` (BullMQ's Worker.cancelJob: true when this worker runs it), then calls `onCancel`. Returns the close.
 */
export async function listenForCancels(
  redis: Redis,
  channel: string,
  cancelJob: (id: string, reason: string) => boolean,
  onCancel: (id: string) => void,
): Promise<() => void> {
  const control = redis.duplicate();
  control.on('error', () => undefined);
  control.on('message', (_channel, message: string) => {
    try {
      const { type, id } = JSON.parse(message) as { type: string; id: string };
      if (type === 'cancel' && cancelJob(id, REASON)) onCancel(id);
    } catch {
      // not ours
    }
  });
  await control.subscribe(channel);
  return () => control.disconnect();
}
