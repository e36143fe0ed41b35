// The world a bot end-to-end test runs in: the fake Discord with a guild, an operator role and four members, the
// command definitions deployed to it, and a real LoraforgeBot logged into it (its REST and gateway pointed at the
// fake) that talks to an API at `apiUrl` over HTTP and keeps its state in the real Redis under a test prefix. Every
// bug the bot reports fails the test at once (through fake.fail) instead of leaving it waiting.
import { LoraforgeBot } from '../../src/bot/bot.js';
import { deployCommands } from '../../src/bot/deploy.js';
import { LoraforgeClient } from '../../src/client/index.js';
import { createLogger, silentLogger, type Logger } from '../../src/util/log.js';
import { FakeDiscord, type FakeMember, type FakeRole } from '../fake-discord/index.js';
import { deletePrefix, testPrefix, testRedis } from '../helpers/redis.js';

export const OPERATOR_ROLE = 'ml-ops';

export interface World {
  fake: FakeDiscord;
  bot: LoraforgeBot;
  prefix: string;
  operators: FakeRole;
  /** alice is an operator; bob, carol and dave are members without the role */
  alice: FakeMember;
  bob: FakeMember;
  carol: FakeMember;
  dave: FakeMember;
  /** stops the bot process and starts a fresh one (same Redis state, same Discord) */
  restartBot(): Promise<void>;
  close(): Promise<void>;
}

export interface WorldOptions {
  editIntervalMs?: number;
  adapterRefreshMs?: number;
}

/** Set BOT_TEST_LOG=debug to see the bot's log while a test runs. */
function testLog(): Logger {
  const level = process.env.BOT_TEST_LOG;
  return level ? createLogger({ level, format: 'json' }) : silentLogger();
}

export async function createWorld(name: string, apiUrl: string, options: WorldOptions = {}): Promise<World> {
  const fake = await new FakeDiscord({ defaultWaitMs: 20_000 }).start();
  const operators = fake.addRole(OPERATOR_ROLE);
  const alice = fake.addMember('alice', { roles: [operators] });
  const bob = fake.addMember('bob');
  const carol = fake.addMember('carol');
  const dave = fake.addMember('dave');
  await deployCommands({ token: fake.token, applicationId: fake.applicationId, guildId: fake.guild.id, discordApi: fake.apiUrl });
  const redis = testRedis();
  const prefix = testPrefix(`bot-${name}`);

  const start = async () => {
    const bot = new LoraforgeBot({
      token: fake.token,
      api: new LoraforgeClient({ baseUrl: apiUrl, timeoutMs: 30_000 }),
      redis,
      redisPrefix: prefix,
      log: testLog(),
      settings: { operatorRole: OPERATOR_ROLE, editIntervalMs: options.editIntervalMs ?? 1500 },
      adapterRefreshMs: options.adapterRefreshMs ?? 60_000,
      discordApi: fake.apiUrl,
    });
    bot.on('bug', (err, context) => fake.fail(new Error(`bot bug in ${context}: ${(err as Error).stack ?? String(err)}`)));
    await bot.start();
    return bot;
  };

  const world: World = {
    fake,
    bot: await start(),
    prefix,
    operators,
    alice,
    bob,
    carol,
    dave,
    async restartBot() {
      await world.bot.stop();
      world.bot = await start();
    },
    async close() {
      await world.bot.stop();
      await fake.stop();
      await deletePrefix(redis, prefix);
      await redis.quit();
    },
  };
  return world;
}
