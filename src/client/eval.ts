// /v1/evals and /v1/sweeps from the client side: start one, read its status and results, follow its events to the
// end, cancel it, fetch the retention heat map (PNG bytes), and keep a sweep's best merge under a name.
import type { EvalStatus, JobProgress, RegisterBestRequest, SweepPointResult, SweepStatus } from '../eval/jobs.js';
import type { EvalRequestInput, SweepRequestInput } from '../eval/requests.js';
import type { AdapterRecord } from '../registry/types.js';
import type { HttpClient } from './http.js';
import { readSse } from './sse.js';

export type { EvalStatus, JobProgress, SweepPointResult, SweepStatus };
export type { EvalReport, ModelReport } from '../eval/report.js';

export type JobStreamEvent<S> = { event: 'status'; data: S } | { event: 'progress'; data: JobProgress };

const FINAL = new Set(['completed', 'failed', 'cancelled']);

/** Shared by evals and sweeps: the same job routes under `/v1/<kind>s`. */
class JobClient<S extends { state: string }> {
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
  async *events(id: string, signal?: AbortSignal): AsyncGenerator<JobStreamEvent<S>> {
    const response = await this.http.send('GET', this.path(id, '/events'), { noTimeout: true, signal, headers: { accept: 'text/event-stream' } });
    for await (const e of readSse(response)) yield e as JobStreamEvent<S>;
  }

  /**
   * Follows the job to its end and returns the final status. A dropped stream (API restart) is reopened; its
   * first event is the current status, so nothing is missed.
   */
  async wait(id: string, onEvent?: (event: JobStreamEvent<S>) => void, signal?: AbortSignal): Promise<S> {
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

  /** The retention heat map as PNG bytes (an eval's once completed; a sweep's at any time, with the points so far). */
  async heatmap(id: string, signal?: AbortSignal): Promise<Buffer> {
    const response = await this.http.send('GET', this.path(id, '/heatmap.png'), { signal, headers: { accept: 'image/png' } });
    return Buffer.from(await response.arrayBuffer());
  }
}

export class EvalsClient extends JobClient<EvalStatus> {
  constructor(http: HttpClient) {
    super(http, '/v1/evals');
  }

  /** Queues an eval; the status's `report` is there once it has completed. */
  create(request: EvalRequestInput): Promise<EvalStatus> {
    return this.http.json('POST', '/v1/evals', { json: request });
  }

  /** Names of the suites the server has. */
  async suites(): Promise<string[]> {
    return (await this.http.json<{ suites: string[] }>('GET', '/v1/suites')).suites;
  }
}

export class SweepsClient extends JobClient<SweepStatus> {
  constructor(http: HttpClient) {
    super(http, '/v1/sweeps');
  }

  create(request: SweepRequestInput): Promise<SweepStatus> {
    return this.http.json('POST', '/v1/sweeps', { json: request });
  }

  /** Registers the best point's merge (or `point`'s) under `name`. */
  register(
    id: string,
    request: Partial<RegisterBestRequest> & { name: string },
  ): Promise<{ point: SweepPointResult; adapter: AdapterRecord; status: 'created' | 'replaced' | 'unchanged' }> {
    return this.http.json('POST', this.path(id, '/register'), { json: request });
  }
}
