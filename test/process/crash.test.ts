// Crash safety with real processes: a worker killed with SIGKILL mid-merge, and Redis restarted mid-merge.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/util/log.js';
import { checkRedisSettings } from '../../src/util/redis.js';
import { writeTestAdapter } from '../helpers/adapters.js';
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js';
import { startTestService, type TestService } from '../helpers/service.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// about 2 s of merging here, on the dense worker threads: a kill, a SIGTERM, a cancel or a Redis restart lands
// mid-merge (progress is sent every 250 ms), with modules running in those threads
const SLOW = { hidden: 1024, kv: 256, layers: 16, rank: 8 };
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'lf-crash-'));
  await writeTestAdapter(path.join(work, 'a'), SLOW, 21);
  await writeTestAdapter(path.join(work, 'b'), SLOW, 22);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function workerProcess(env: Record<string, string>): ChildProcess {
  // the real CLI entry, from sources through tsx
  return spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), 'worker'], {
    cwd: repo,
    env: { ...process.env, LORAFORGE_LOG_LEVEL: 'error', LORAFORGE_LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

async function registerInputs(svc: TestService): Promise<void> {
  await svc.client.adapters.upload(path.join(work, 'a'), { name: 'slow-a' });
  await svc.client.adapters.upload(path.join(work, 'b'), { name: 'slow-b' });
}

const request = { adapters: ['slow-a', 'slow-b'], weights: [0.5, 0.5], method: 'ties' as const, density: 0.3, name: 'slow-ties' };

describe('crash safety', () => {
  it('a worker killed with SIGKILL mid-merge: the job runs again and completes once', async () => {
    const svc = await startTestService({ name: 'sigkill', worker: false, server: { uploadLimitBytes: 1 << 30 } });
    const env = { REDIS_URL: TEST_REDIS_URL, LORAFORGE_REDIS_PREFIX: svc.prefix, LORAFORGE_DATA_DIR: svc.dataDir, LORAFORGE_WORKER_LOCK_SECONDS: '2' };
    const workers: ChildProcess[] = [];
    try {
      await registerInputs(svc);
      const first = workerProcess(env);
      workers.push(first);
      const queued = await svc.client.merges.create(request);
      // kill the worker once the merge is under way (past reading, some modules done)
      let killedAt: { phase: string; done: number } | undefined;
      const final = await svc.client.merges.wait(queued.id, (event) => {
        if (!killedAt && event.event === 'progress' && event.data.phase === 'merge' && event.data.done >= 1) {
          killedAt = event.data;
          first.kill('SIGKILL');
          workers.push(workerProcess(env));
        }
      });
      expect(killedAt).toBeDefined();
      expect(first.signalCode).toBe('SIGKILL');
      expect(final.state).toBe('completed');
      expect(final.result?.name).toBe('slow-ties');
      // the killed attempt was found stalled and run again (not finished before the kill landed)
      expect((await svc.merges.queue.getJob(queued.id))?.stalledCounter).toBeGreaterThanOrEqual(1);
      // exactly one result: one name for the recipe, one new store dir, no half-written adapter anywhere visible
      const records = await svc.registry.list();
      expect(records.map((r) => r.name).sort()).toEqual(['slow-a', 'slow-b', 'slow-ties']);
      expect(await svc.registry.store.list()).toHaveLength(3);
      expect((await readdir(svc.registry.store.root)).filter((n) => n.startsWith('.'))).toEqual([]);
      // the killed attempt's staging dir is a leftover the sweeper removes
      await svc.registry.sweep(0);
      expect(await readdir(svc.registry.store.tmpRoot).catch(() => [])).toEqual([]);
      expect(await svc.registry.store.list()).toHaveLength(3);
    } finally {
      for (const w of workers) w.kill('SIGKILL');
      await Promise.all(workers.map(exited));
      await svc.close();
    }
  }, 240_000);

  it('SIGTERM hands the active merge back to the queue and exits; another worker completes it', async () => {
    const svc = await startTestService({ name: 'sigterm', worker: false, server: { uploadLimitBytes: 1 << 30 } });
    const env = {
      REDIS_URL: TEST_REDIS_URL,
      LORAFORGE_REDIS_PREFIX: svc.prefix,
      LORAFORGE_DATA_DIR: svc.dataDir,
      LORAFORGE_WORKER_SHUTDOWN_GRACE: '0',
    };
    const workers: ChildProcess[] = [];
    try {
      await registerInputs(svc);
      const first = workerProcess(env);
      workers.push(first);
      const queued = await svc.client.merges.create(request);
      let stopped = false;
      const final = await svc.client.merges.wait(queued.id, (event) => {
        if (!stopped && event.event === 'progress' && event.data.phase === 'merge' && event.data.done >= 1) {
          stopped = true;
          first.kill('SIGTERM');
          void exited(first).then(() => workers.push(workerProcess(env)));
        }
      });
      expect(first.exitCode).toBe(0);
      expect(final.state).toBe('completed');
      expect((await svc.registry.list()).filter((r) => r.name === 'slow-ties')).toHaveLength(1);
    } finally {
      for (const w of workers) w.kill('SIGKILL');
      await Promise.all(workers.map(exited));
      await svc.close();
    }
  }, 240_000);

  it('cancel reaches the worker process running the merge; the job fails as cancelled and is not retried', async () => {
    const svc = await startTestService({ name: 'cancel-running', worker: false, server: { uploadLimitBytes: 1 << 30 } });
    const worker = workerProcess({ REDIS_URL: TEST_REDIS_URL, LORAFORGE_REDIS_PREFIX: svc.prefix, LORAFORGE_DATA_DIR: svc.dataDir });
    try {
      await registerInputs(svc);
      const queued = await svc.client.merges.create(request);
      let cancelAt = 0;
      const final = await svc.client.merges.wait(queued.id, (event) => {
        if (!cancelAt && event.event === 'progress' && event.data.phase === 'merge' && event.data.done >= 1) {
          cancelAt = Date.now();
          void svc.client.merges.cancel(queued.id);
        }
      });
      expect(final.state).toBe('cancelled');
      expect(final.error?.code).toBe('cancelled');
      expect(final.attempts).toBe(1);
      expect(await svc.registry.find('slow-ties')).toBeUndefined();
      expect(await svc.registry.store.list()).toHaveLength(2);
      // a new request of the same recipe runs it afresh
      const again = await svc.client.merges.create(request);
      expect(again.deduplicated).toBe(false);
      expect((await svc.client.merges.wait(again.id)).state).toBe('completed');
    } finally {
      worker.kill('SIGKILL');
      await exited(worker);
      await svc.close();
    }
  }, 240_000);

  it('Redis restarted mid-merge: the API and the worker reconnect and the job finishes', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lf-redis-'));
    const startRedis = () =>
      spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', '', '--maxmemory-policy', 'noeviction'], {
        stdio: 'ignore',
      });
    const url = `redis://127.0.0.1:${port}`;
    const waitUp = async () => {
      const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => undefined);
      for (let i = 0; i < 100; i++) {
        try {
          await probe.connect();
          await probe.ping();
          probe.disconnect();
          return;
        } catch {
          probe.disconnect();
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw new Error('redis-server did not start');
    };
    let redis = startRedis();
    await waitUp();
    // started with AOF and noeviction: the production check has nothing to say
    const settings = new Redis(url);
    expect(await checkRedisSettings(settings, silentLogger())).toEqual([]);
    settings.disconnect();
    const svc = await startTestService({ name: 'restart', redisUrl: url, prefix: testPrefix('restart'), server: { uploadLimitBytes: 1 << 30 } });
    try {
      await registerInputs(svc);
      const queued = await svc.client.merges.create(request);
      let restarted = false;
      const final = await svc.client.merges.wait(queued.id, (event) => {
        if (!restarted && event.event === 'progress' && event.data.phase === 'merge' && event.data.done >= 1) {
          restarted = true;
          redis.kill('SIGTERM'); // AOF is written on shutdown
          void exited(redis).then(async () => {
            await new Promise((r) => setTimeout(r, 1_000));
            redis = startRedis();
          });
        }
      });
      expect(restarted).toBe(true);
      expect(final.state).toBe('completed');
      expect((await svc.client.adapters.get('slow-ties')).inputs?.map((i) => i.name)).toEqual(['slow-a', 'slow-b']);
      expect(await svc.client.system.ready()).toMatchObject({ status: 'ready' });
    } finally {
      await svc.close();
      redis.kill('SIGKILL');
      await exited(redis);
      await rm(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
