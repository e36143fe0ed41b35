// /v1/merges from the client side: queue, status, cancel, and follow the progress stream to the end.
import type { MergeProgress, MergeRequestInput, MergeStatus } from '../queue/types.js';
import type { HttpClient } from './http.js';
import { JobClient, type JobEvent } from './jobs.js';

export type MergeStreamEvent = JobEvent<MergeStatus, MergeProgress>;

export class MergesClient extends JobClient<MergeStatus, MergeProgress> {
  constructor(http: HttpClient) {
    super(http, '/v1/merges');
  }

  /** Queues a merge; `deduplicated` says the same recipe was queued or merged already. */
  create(request: MergeRequestInput): Promise<MergeStatus> {
    return this.http.json('POST', '/v1/merges', { json: request });
  }
}
