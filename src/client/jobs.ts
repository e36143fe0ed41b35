// The client side of every queued job the API runs (merges, evals, sweeps): the same routes under its own base
// path: status, cancel, and the progress stream followed to the end across API restarts.
import type { HttpClient } from './http.js';
import { readSse } from './sse.js';

export type JobEvent<S, P> = { event: 'status'; data: S } | { event: 'progress'; data: P };

const FINAL = new Set(['completed', 'failed', 'cancelled']);

export class JobClient<S extends { state: string }, P> {
  constructor(
    protected readonly http: HttpClient,
    private readonly base: string,
  ) {}

  protected path(id: string, rest = ''): string {
    return `${this.base}/${encodeURIComponent(id)}${rest}`;
  }

  get(id: string): Promise<S> {
    return this.http.json('GET', this.path(id));
  }

  cancel(id: string): Promise<S> {
    return this.http.json('POST', this.path(id, '/cancel'));
  }

  /** The job's events until it ends (the last one is a status in a final state). */
  async *events(id: string, signal?: AbortSignal): AsyncGenerator<JobEvent<S, P>> {
    const response = await this.http.send('GET', this.path(id, '/events'), { noTimeout: true, signal, headers: { accept: 'text/event-stream' } });
    for await (const e of readSse(response)) yield e as JobEvent<S, P>;
  }

  /**
   * Follows the job to its end and returns the final status. A dropped stream (API restart) is reopened; its
   * first event is the current status, so nothing is missed.
   */
  async wait(id: string, onEvent?: (event: JobEvent<S, P>) => void, signal?: AbortSignal): Promise<S> {
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
