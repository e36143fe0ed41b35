// RouterStore against a real Redis: what serving reads per request (`current`) follows every save, replace and
// removal, and parses a record again only when its revision changed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { RouterStore, type RouterRecord } from '../../src/registry/routers.js';
import { deletePrefix, testPrefix, testRedis } from '../helpers/redis.js';

let redis: Redis;
const prefix = testPrefix('router-store');

beforeAll(() => {
  redis = testRedis();
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

function record(name: string, margin: number): RouterRecord {
  return {
    name,
    baseModel: 'demo',
    members: [{ model: 'a' }, { model: 'b' }],
    fallback: null,
    rule: 'text',
    margin,
    calibration: { source: 'prompts', counts: [1, 1] },
    createdBy: 'test',
    createdAt: new Date(0).toISOString(),
    center: [0, 0],
    centroids: [
      [1, 0],
      [0, 1],
    ],
    dims: [7],
  };
}

describe('RouterStore.current', () => {
  it('reads a saved router once, and again only after it was replaced; a removed one is gone', async () => {
    const store = new RouterStore(redis, prefix);
    const server = new RouterStore(redis, prefix); // another process's view
    expect(await server.current('r')).toBeUndefined();
    await store.save(record('r', 0.02));
    const first = await server.current('r');
    expect(first).toMatchObject({ name: 'r', margin: 0.02 });
    expect(await server.current('r')).toBe(first); // not parsed again

    await store.save(record('r', 0.05), { replace: true });
    const replaced = await server.current('r');
    expect(replaced).toMatchObject({ margin: 0.05 });
    expect(replaced).not.toBe(first);

    await store.remove('r');
    expect(await server.current('r')).toBeUndefined();
    await store.save(record('r', 0.1));
    expect(await server.current('r')).toMatchObject({ margin: 0.1 });
  });

  it('lists routers by name, parsing only those that changed', async () => {
    const store = new RouterStore(redis, `${prefix}:list`);
    const server = new RouterStore(redis, `${prefix}:list`);
    await store.save(record('b', 0.02));
    await store.save(record('a', 0.02));
    const first = await server.list();
    expect(first.map((r) => r.name)).toEqual(['a', 'b']);
    await store.save(record('b', 0.05), { replace: true });
    const second = await server.list();
    expect(second[0]).toBe(first[0]);
    expect(second[1]).toMatchObject({ name: 'b', margin: 0.05 });
    await store.remove('a');
    expect((await server.list()).map((r) => r.name)).toEqual(['b']);
  });

  it('serves a router stored before revisions existed, and gives it one', async () => {
    await redis.hset(`${prefix}:registry:routers`, 'old', JSON.stringify(record('old', 0.02)));
    const server = new RouterStore(redis, prefix);
    const first = await server.current('old');
    expect(first).toMatchObject({ name: 'old', margin: 0.02 });
    expect(await redis.hget(`${prefix}:registry:routers:rev`, 'old')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await server.current('old')).toBe(first);
  });

  it('refuses text buckets out of order: routing projects prompts onto them by merge join', async () => {
    const server = new RouterStore(redis, prefix);
    await expect(server.save({ ...record('unsorted', 0.02), center: [0, 0, 0], centroids: [[1, 0, 0], [0, 1, 0]], dims: [9, 3] })).rejects.toThrow(/text buckets out of order/);
    expect(await redis.hexists(`${prefix}:registry:routers`, 'unsorted')).toBe(0);
  });
});
