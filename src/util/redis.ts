// Redis for a loraforge process: connect (failing with one clear line when nothing answers), check the settings
// a job queue needs in production, and for `loraforge all` start a throwaway local redis-server when none runs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Redis, type RedisOptions } from 'ioredis';
import { UnavailableError } from '../errors.js';
import type { Logger } from './log.js';

export const INSTALL_REDIS_HINT =
  'install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`) or point REDIS_URL at one';

/** Resolves once `redis` answers PING, or throws UnavailableError after `timeoutMs`. */
export async function waitForRedis(redis: Redis, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await redis.ping();
      return;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new UnavailableError(`Redis does not answer at ${url} (${(last as Error | undefined)?.message ?? 'timeout'}); ${INSTALL_REDIS_HINT}`);
}

export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  // keep retrying forever: a Redis restart must not take the process down
  return new Redis(url, { lazyConnect: false, retryStrategy: (times) => Math.min(times * 200, 2_000), ...options });
}

async function answers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * For the one-process demo: when nothing answers at a loopback `url`, starts `redis-server` on its port (no
 * persistence) and returns a function that stops it. Returns undefined when Redis already answers.
 */
export async function ensureLocalRedis(url: string, log: Logger): Promise<(() => Promise<void>) | undefined> {
  if (await answers(url)) return undefined;
  const parsed = new URL(url);
  const host = parsed.hostname || '127.0.0.1';
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
    throw new UnavailableError(`Redis does not answer at ${url}; start it, or fix REDIS_URL`);
  }
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error) {
    throw new UnavailableError(`Redis does not answer at ${url} and redis-server is not installed: ${INSTALL_REDIS_HINT}`);
  }
  const port = parsed.port || '6379';
  log.info({ port }, 'no Redis answering: starting a local redis-server (no persistence) for this process');
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', port, '--bind', host === 'localhost' ? '127.0.0.1' : host, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'],
    // its own process group: Ctrl-C reaches us only, and we stop Redis last, after the queue is closed
    { stdio: 'ignore', detached: true },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await answers(url))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new UnavailableError(`could not start redis-server on port ${port} (is the port taken?); ${INSTALL_REDIS_HINT}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return async () => {
    child.kill('SIGTERM');
    await exited;
  };
}

/**
 * Warns when Redis would lose accepted jobs: without AOF a restart forgets them, and with an eviction policy
 * other than noeviction Redis may drop job keys under memory pressure (BullMQ's production guide).
 */
export async function checkRedisSettings(redis: Redis, log: Logger): Promise<string[]> {
  const warnings: string[] = [];
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
    const [, aof] = (await redis.config('GET', 'appendonly')) as [string, string];
    if (policy !== 'noeviction') {
      warnings.push(`Redis maxmemory-policy is "${policy}": set it to "noeviction" or Redis may evict job keys`);
    }
    if (aof !== 'yes') warnings.push('Redis runs without AOF (appendonly no): queued merges are lost if Redis restarts');
  } catch (err) {
    warnings.push(`could not read the Redis settings (${(err as Error).message}): make sure of AOF and maxmemory-policy noeviction`);
  }
  for (const w of warnings) log.warn(w);
  return warnings;
}
