import { afterAll, describe, expect, it } from 'vitest';
import { checkRedisSettings } from '../../src/util/redis.js';
import { silentLogger } from '../../src/util/log.js';
import { testRedis } from '../helpers/redis.js';

const redis = testRedis();
afterAll(async () => {
  await redis.quit();
});

describe('checkRedisSettings', () => {
  it('warns about each unsafe setting of the Redis it talks to', async () => {
    const [, aof] = (await redis.config('GET', 'appendonly')) as [string, string];
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
    const warnings = await checkRedisSettings(redis, silentLogger());
    expect(warnings.some((w) => /without AOF/.test(w))).toBe(aof !== 'yes');
    expect(warnings.some((w) => /maxmemory-policy/.test(w))).toBe(policy !== 'noeviction');
  });
});
