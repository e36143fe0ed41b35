// `loraforge healthcheck <role>`: exit 0 when the process of that role works, 1 otherwise (Docker's HEALTHCHECK).
// api and all answer /healthz; a worker needs its Redis; the bot keeps a heartbeat file fresh while connected.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import { HEARTBEAT_EVERY_MS, heartbeatAgeSeconds } from '../../util/heartbeat.js';

const ROLES = ['api', 'worker', 'bot', 'all'] as const;
/** where the container's entrypoint (docker/entrypoint.sh) notes which role it runs */
const roleFile = () => process.env.LORAFORGE_ROLE_FILE ?? '/tmp/loraforge-role';

async function check(role: (typeof ROLES)[number]): Promise<string> {
  const { loadConfig } = await import('../../config/index.js');
  const config = loadConfig();
  if (role === 'api' || role === 'all') {
    const url = `http://127.0.0.1:${config.server.port}/healthz`;
    const response = await fetch(url, { signal: AbortSignal.timeout(3_000) }).catch((err: unknown) => {
      throw new Error(`${url}: ${(err as Error).message}`);
    });
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    return `${url} ok`;
  }
  if (role === 'worker') {
    const { Redis } = await import('ioredis');
    const redis = new Redis(config.redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3_000 });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      await redis.ping();
      return `redis at ${config.redis.url} ok`;
    } finally {
      redis.disconnect();
    }
  }
  const age = await heartbeatAgeSeconds(config.bot.heartbeatFile);
  if (age === null) throw new Error(`no heartbeat at ${config.bot.heartbeatFile}: the bot has not connected to Discord`);
  if (age > (3 * HEARTBEAT_EVERY_MS) / 1000) throw new Error(`the bot's last heartbeat is ${Math.round(age)} s old: it lost Discord`);
  return `bot heartbeat ${Math.round(age)} s old`;
}

export function healthcheckCommand(program: Command): void {
  program
    .command('healthcheck [role]')
    .description(`check that this container's process works (role: ${ROLES.join(', ')}; default: the one the container runs)`)
    .action(async (given?: string) => {
      const role = given ?? (await readFile(roleFile(), 'utf8').catch(() => '')).trim();
      if (!(ROLES as readonly string[]).includes(role)) throw new InvalidInputError(`give the role to check: one of ${ROLES.join(', ')}`);
      try {
        process.stdout.write(`healthy: ${await check(role as (typeof ROLES)[number])}\n`);
      } catch (err) {
        process.stderr.write(`unhealthy: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
