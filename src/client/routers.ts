// /v1/routers from the client side: create, list, show, remove (docs/ROUTERS.md).
import type { CreateRouterRequest } from '../eval/routers.js';
import type { RouterSummary } from '../registry/routers.js';
import type { HttpClient } from './http.js';

export type { CreateRouterRequest, RouterSummary };

const enc = encodeURIComponent;

/** What answers a prompt no member is clearly nearest to, in words; `name` formats a model name (the bot quotes it). */
export function whenUnsure(r: Pick<RouterSummary, 'fallback' | 'blend'>, name = (model: string) => model): string {
  return r.fallback ? `the fallback ${name(r.fallback)}` : r.blend ? `a blend of the two nearest at ${r.blend}` : 'the nearest member';
}

export class RoutersClient {
  constructor(private readonly http: HttpClient) {}

  /** Creates a router; calibration runs on the server's engine, so this returns once the centroids are fitted. */
  create(request: CreateRouterRequest): Promise<{ status: 'created' | 'replaced'; router: RouterSummary }> {
    return this.http.json('POST', '/v1/routers', { json: request, noTimeout: true });
  }

  async list(): Promise<RouterSummary[]> {
    return (await this.http.json<{ routers: RouterSummary[] }>('GET', '/v1/routers')).routers;
  }

  get(name: string): Promise<RouterSummary> {
    return this.http.json('GET', `/v1/routers/${enc(name)}`);
  }

  async remove(name: string): Promise<RouterSummary> {
    return (await this.http.json<{ removed: RouterSummary }>('DELETE', `/v1/routers/${enc(name)}`)).removed;
  }
}
