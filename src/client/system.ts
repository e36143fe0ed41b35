// Probes and the API description.
import type { HttpClient } from './http.js';

export class SystemClient {
  constructor(private readonly http: HttpClient) {}

  health(): Promise<{ status: 'ok' }> {
    return this.http.json('GET', '/healthz');
  }

  /** resolves when the API and its dependencies are ready; throws UnavailableError otherwise */
  ready(): Promise<{ status: 'ready'; checks: string[] }> {
    return this.http.json('GET', '/readyz');
  }

  openapi(): Promise<Record<string, unknown>> {
    return this.http.json('GET', '/openapi.json');
  }
}
