// The typed client of the loraforge API, used by the CLI and the bot. One field per domain; each domain's methods
// live in client/<domain>.ts over the shared HttpClient.
import { AdaptersClient } from './adapters.js';
import { ArenaClient } from './arena.js';
import { EvalsClient, SweepsClient } from './eval.js';
import { HttpClient, type HttpClientOptions } from './http.js';
import { InferenceClient } from './inference.js';
import { MergesClient } from './merges.js';
import { RoutersClient } from './routers.js';
import { SystemClient } from './system.js';

export { AdaptersClient, type RegisterOptions } from './adapters.js';
export { ArenaClient } from './arena.js';
export { EvalsClient, SweepsClient, type JobStreamEvent } from './eval.js';
export { ApiError } from './errors.js';
export { MergesClient, type MergeStreamEvent } from './merges.js';
export { RoutersClient, whenUnsure, type CreateRouterRequest, type RouterSummary } from './routers.js';
export { HttpClient, type HttpClientOptions } from './http.js';
export { readSse, type SseEvent } from './sse.js';

export class LoraforgeClient {
  readonly http: HttpClient;
  readonly system: SystemClient;
  readonly adapters: AdaptersClient;
  readonly merges: MergesClient;
  readonly inference: InferenceClient;
  readonly arena: ArenaClient;
  /** /v1/evals: skill retention of models on suites */
  readonly evals: EvalsClient;
  /** /v1/sweeps: merge-setting searches */
  readonly sweeps: SweepsClient;
  /** /v1/routers: models that route each request to one of their members */
  readonly routers: RoutersClient;

  constructor(options: HttpClientOptions) {
    this.http = new HttpClient(options);
    this.system = new SystemClient(this.http);
    this.adapters = new AdaptersClient(this.http);
    this.merges = new MergesClient(this.http);
    this.inference = new InferenceClient(this.http);
    this.arena = new ArenaClient(this.http);
    this.evals = new EvalsClient(this.http);
    this.sweeps = new SweepsClient(this.http);
    this.routers = new RoutersClient(this.http);
  }
}
