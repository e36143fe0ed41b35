// /v1/evals and /v1/sweeps from the client side: start one, read its status and results, follow its events to the
// end, cancel it, fetch the retention heat map (PNG bytes), and keep a sweep's best merge under a name.
import type { EvalStatus, JobProgress, RegisterBestRequest, SweepPointResult, SweepStatus } from '../eval/jobs.js';
import type { EvalRequestInput, SweepRequestInput } from '../eval/requests.js';
import type { AdapterRecord } from '../registry/types.js';
import type { HttpClient } from './http.js';
import { JobClient, type JobEvent } from './jobs.js';

export type { EvalStatus, JobProgress, SweepPointResult, SweepStatus };
export type { EvalReport, ModelReport } from '../eval/report.js';

export type JobStreamEvent<S> = JobEvent<S, JobProgress>;

/** Shared by evals and sweeps: the same job routes under `/v1/<kind>s`, and a heat map. */
class EvalJobClient<S extends { state: string }> extends JobClient<S, JobProgress> {
  /** The retention heat map as PNG bytes (an eval's once completed; a sweep's at any time, with the points so far). */
  async heatmap(id: string, signal?: AbortSignal): Promise<Buffer> {
    const response = await this.http.send('GET', this.path(id, '/heatmap.png'), { signal, headers: { accept: 'image/png' } });
    return Buffer.from(await response.arrayBuffer());
  }
}

export class EvalsClient extends EvalJobClient<EvalStatus> {
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

export class SweepsClient extends EvalJobClient<SweepStatus> {
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
