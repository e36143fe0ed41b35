// /v1/merges from the client side: queue, status, cancel, and follow the progress stream to the end.
import type { MergeProgress, MergeRequestInput, MergeStatus } from '../queue/types.js';
import type { HttpClient } from './http.js';
import { readSse } from './sse.js';

export type MergeStreamEvent = { event: 'status'; data: MergeStatus } | { event: 'progress'; data: MergeProgress };

const FINAL = new Set(['completed', 'failed', 'cancelled']);

export class MergesClient {
  constructor(private readonly http: HttpClient) {}

  /** Queues a merge; `deduplicated` says the same recipe was queued or merged already. */
  create(request: MergeRequestInput): Promise<MergeStatus> {
    return this.http.json('POST', '/v1/merges', { json: request });
  }

  get(id: string): Promise<MergeStatus> {
    return this.http.json('GET', `/v1/merges/${encodeURIComponent(id)}`);
  }

  cancel(id: string): Promise<MergeStatus> {
    return this.http.json('POST', `/v1/merges/${encodeURIComponent(id)}/cancel`);
  }

  /** The job's events until it ends (the last one is a status in a final state). */
  async *events(id: string, signal?: AbortSignal): AsyncGenerator<MergeStreamEvent> {
    const response = await this.http.send('GET', `/v1/merges/${encodeURIComponent(id)}/events`, {
      noTimeout: true,
      signal,
      headers: { accept: 'text/event-stream' },
    });
    for await (const e of readSse(response)) yield e as MergeStreamEvent;
  }

  /**
   * Follows a merge to its end and returns the final status. When the stream drops (API restart), it reconnects;
   * the first event after reconnecting is the current status, so nothing is missed.
   */
  async wait(id: string, onEvent?: (event: MergeStreamEvent) => void, signal?: AbortSignal): Promise<MergeStatus> {
    for (let attempt = 0; ; attempt++) {
      try {
        for await (const event of this.events(id, signal)) {
          onEvent?.(event);
          if (event.event === 'status' && FINAL.has(event.data.state)) return event.data;
        }
      } catch (err) {
        if (signal?.aborted || attempt >= 30) throw err;
      }
      const status = await this.get(id).catch(() => undefined);
      if (status && FINAL.has(status.state)) return status;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}
