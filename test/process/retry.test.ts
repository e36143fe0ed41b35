// Retries: a transient failure (the data dir's staging area unusable for a moment) is retried with backoff and the
// merge completes on a later attempt; bad input (an input's files gone from the store) fails once, unretried.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker } from '../../src/app.js';
import type { MergeStatus } from '../../src/queue/types.js';
import { writeTestAdapter } from '../helpers/adapters.js';
import { startTestService, type TestService } from '../helpers/service.js';

const SHAPE = { hidden: 64, kv: 16, layers: 2, rank: 4 };

describe('merge retries', () => {
  let work: string;
  let svc: TestService;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'lf-retry-'));
    for (const [k, name] of ['a', 'b', 'c'].entries()) await writeTestAdapter(path.join(work, name), SHAPE, 60 + k);
    svc = await startTestService({ name: 'retry', worker: false });
    for (const name of ['a', 'b', 'c']) await svc.client.adapters.upload(path.join(work, name), { name });
  });

  afterAll(async () => {
    await svc?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('retries a transient failure with backoff, and the merge completes once', async () => {
    // a file where the staging directory should be: every attempt fails with ENOTDIR until it is gone
    const tmpRoot = svc.registry.store.tmpRoot;
    await rm(tmpRoot, { recursive: true, force: true });
    await writeFile(tmpRoot, 'not a directory');
    await startWorker(svc.rt, svc.registry);
    const queued = await svc.client.merges.create({ adapters: ['a', 'b'], weights: [0.5, 0.5], method: 'linear', name: 'retried' });
    let failedOnce: MergeStatus | undefined;
    for (let i = 0; i < 200 && !failedOnce; i++) {
      const status = await svc.client.merges.get(queued.id);
      if (status.attempts >= 1) failedOnce = status;
      else await new Promise((r) => setTimeout(r, 50));
    }
    // the first attempt failed and the job waits for its retry, not failed for good
    expect(failedOnce?.state).toBe('queued');
    await rm(tmpRoot, { force: true });
    await mkdir(tmpRoot);
    const final = await svc.client.merges.wait(queued.id);
    expect(final.state).toBe('completed');
    expect(final.attempts).toBe(2);
    expect((await svc.registry.list()).filter((r) => r.name === 'retried')).toHaveLength(1);
  }, 60_000);

  it('does not retry bad input: an input whose files left the store fails at once, saying which', async () => {
    const c = await svc.registry.record('c');
    await rm(svc.registry.store.pathOf(c.sha256), { recursive: true, force: true });
    const queued = await svc.client.merges.create({ adapters: ['a', 'c'], weights: [1, 1], method: 'cat', name: 'never' });
    const final = await svc.client.merges.wait(queued.id);
    expect(final.state).toBe('failed');
    expect(final.attempts).toBe(1);
    expect(final.error?.code).toBe('not_found');
    expect(final.error?.message).toMatch(/input adapter "c" .* is no longer in the store/);
    expect(await svc.registry.find('never')).toBeUndefined();
  }, 60_000);
});
