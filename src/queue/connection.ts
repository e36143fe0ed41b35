// BullMQ connection settings from the configured Redis URL and prefix. Workers need maxRetriesPerRequest: null
// (BullMQ sets it); producers in the API fail fast instead of queueing commands while Redis is away.
import type { ConnectionOptions } from 'bullmq';

export function bullConnection(url: string, role: 'worker' | 'producer'): ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: role === 'worker' ? null : 3,
    retryStrategy: (times: number) => Math.min(times * 200, 2_000),
  };
}

/** Every BullMQ key of this deployment starts with `<redis prefix>:bull`. */
export const bullPrefix = (redisPrefix: string) => `${redisPrefix}:bull`;

/** The channel and flag keys through which a cancel request reaches the worker running the job. */
export const controlChannel = (redisPrefix: string) => `${redisPrefix}:merge:control`;
export const cancelKey = (redisPrefix: string, jobId: string) => `${redisPrefix}:merge:cancel:${jobId}`;
export const cancelledKey = (redisPrefix: string) => `${redisPrefix}:merge:cancelled`;
