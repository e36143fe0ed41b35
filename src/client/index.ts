// The typed client of the loraforge API, used by the CLI and the bot. One field per domain; each domain's methods
// live in client/<domain>.ts over the shared HttpClient.
import { ArenaClient } from './arena.js';
import { HttpClient, type HttpClientOptions } from './http.js';
import { InferenceClient } from './inference.js';
import { SystemClient } from './system.js';

export { ArenaClient } from './arena.js';
export { ApiError } from './errors.js';
export { HttpClient, type HttpClientOptions } from './http.js';
export { readSse, type SseEvent } from './sse.js';

export class LoraforgeClient {
  readonly http: HttpClient;
  readonly system: SystemClient;
  readonly inference: InferenceClient;
  readonly arena: ArenaClient;

  constructor(options: HttpClientOptions) {
    this.http = new HttpClient(options);
    this.system = new SystemClient(this.http);
    this.inference = new InferenceClient(this.http);
    this.arena = new ArenaClient(this.http);
  }
}
