// A status read races the job's end: the job hash read while it ran, its state asked after it failed. The view must
// then read the job again and give the real reason (CI once showed "unknown failure" for a stalled-out merge).
import { Queue, Worker, type Job } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { jobView } from '../../src/queue/merges.js';
import { deletePrefix, TEST_REDIS_URL, testPrefix, testRedis } from '../helpers/redis.js';

const prefix = testPrefix('job-view');
const redis = testRedis();
const connection = { url: TEST_REDIS_URL, maxRetriesPerRequest: null };

afterAll(async () => {
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

describe('jobView', () => {
  it('a job read before it failed gives the reason it failed with, not "unknown failure"', async () => {
    const queue = new Queue('race', { connection, prefix });
    const worker = new Worker('race', async () => {
      throw new Error('invalid_input: weights must sum to more than 0');
    }, { connection, prefix, autorun: false });
    try {
      const added = await queue.add('j', {}, { attempts: 1 });
      const stale = (await queue.getJob(added.id!)) as Job;
      const failed = new Promise<void>((resolve) => worker.once('failed', () => resolve()));
      void worker.run();
      await failed;
      expect(stale.failedReason).toBeUndefined(); // the race: this copy was read while the job was waiting
      const { view, job } = await jobView(stale, Promise.resolve(0), () => queue.getJob(added.id!));
      expect(view.state).toBe('failed');
      expect('error' in view && view.error).toEqual({ code: 'invalid_input', message: 'weights must sum to more than 0' });
      expect(job.finishedOn).toBeGreaterThan(0);
    } finally {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
