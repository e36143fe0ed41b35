// worker.maxStalledCount with real worker processes, BullMQ and Redis: a merge whose worker dies runs again up to
// the limit; the next death fails it for good, and its status says why (docs/CONFIG.md, LORAFORGE_WORKER_MAX_STALLED).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestAdapter } from '../helpers/adapters.js';
import { TEST_REDIS_URL } from '../helpers/redis.js';
import { startTestService } from '../helpers/service.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// about 2 s of merging (as in crash.test.ts): each kill lands mid-merge
const SLOW = { hidden: 1024, kv: 256, layers: 16, rank: 8 };
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'lf-stalled-'));
  await writeTestAdapter(path.join(work, 'a'), SLOW, 31);
  await writeTestAdapter(path.join(work, 'b'), SLOW, 32);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

describe('worker.maxStalledCount', () => {
  it('a merge whose worker dies once more than the limit allows fails for good, saying why', async () => {
    const svc = await startTestService({ name: 'stalled', worker: false, server: { uploadLimitBytes: 1 << 30 } });
    const env = {
      ...process.env,
      REDIS_URL: TEST_REDIS_URL,
      LORAFORGE_REDIS_PREFIX: svc.prefix,
      LORAFORGE_DATA_DIR: svc.dataDir,
      LORAFORGE_WORKER_LOCK_SECONDS: '2',
      LORAFORGE_WORKER_MAX_STALLED: '1',
      LORAFORGE_LOG_LEVEL: 'error',
      LORAFORGE_LOG_FORMAT: 'json',
    };
    const workers: ChildProcess[] = [];
    const startWorker = () => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), 'worker'], { cwd: repo, env, stdio: ['ignore', 'ignore', 'inherit'] });
      workers.push(child);
      return child;
    };
    try {
      await svc.client.adapters.upload(path.join(work, 'a'), { name: 'stall-a' });
      await svc.client.adapters.upload(path.join(work, 'b'), { name: 'stall-b' });
      let current = startWorker();
      const queued = await svc.client.merges.create({ adapters: ['stall-a', 'stall-b'], weights: [0.5, 0.5], method: 'ties', density: 0.3, name: 'stall-ties' });
      // kill the worker mid-merge twice: the first death is within the limit of 1, the second is not
      let kills = 0;
      let killedPid: number | undefined;
      const final = await svc.client.merges.wait(queued.id, (event) => {
        const running = event.event === 'progress' && event.data.phase === 'merge' && event.data.done >= 1;
        if (running && kills < 2 && killedPid !== current.pid) {
          killedPid = current.pid;
          kills++;
          current.kill('SIGKILL');
          current = startWorker();
        }
      });
      expect(kills).toBe(2);
      expect(final.state).toBe('failed');
      expect(final.error?.message).toMatch(/the worker running it died 2 times .*worker\.maxStalledCount/);
      // it is not run again: no result registered, the last worker is idle
      expect((await svc.registry.list()).map((r) => r.name).sort()).toEqual(['stall-a', 'stall-b']);
      expect(current.exitCode).toBeNull();
    } finally {
      for (const w of workers) w.kill('SIGKILL');
      await Promise.all(workers.map(exited));
      await svc.close();
    }
  }, 240_000);
});
