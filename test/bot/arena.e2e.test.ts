// /compare and /leaderboard end to end: a real discord.js bot in the fake Discord, the real arena API (express app,
// Arena on the real Redis) over HTTP. The answers come from the arena tests' scripted generator, a stand-in for the
// inference engine's compare(), which is not part of these tests: they are about battles, votes and the board.
import os from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Arena } from '../../src/arena/arena.js';
import { ArenaStore } from '../../src/arena/store.js';
import type { ArenaAdapter } from '../../src/arena/types.js';
import { LoraforgeClient } from '../../src/client/index.js';
import { loadConfig } from '../../src/config/index.js';
import { createApp } from '../../src/server/app.js';
import { createMetrics } from '../../src/server/metrics.js';
import { silentLogger } from '../../src/util/log.js';
import { ScriptedAnswers } from '../arena/scripted-answers.js';
import type { FakeMessage } from '../fake-discord/index.js';
import { listen, type Listening } from '../helpers/http.js';
import { deletePrefix, testPrefix, testRedis } from '../helpers/redis.js';
import { createWorld, type World } from './world.js';

const ADAPTERS: ArenaAdapter[] = [
  { name: 'code', baseModel: 'org/base', registeredBy: 'discord:1 (erin)' },
  { name: 'linux-commands', baseModel: 'org/base', registeredBy: 'discord:2 (frank)' },
  { name: 'troubleshooting', baseModel: 'org/base', registeredBy: 'discord:3 (grace)' },
];
/** long enough for three votes on a busy machine, short enough to wait for the reveal */
const BATTLE_SECONDS = 6;

describe('bot: /compare and /leaderboard against the arena API', () => {
  const redis = testRedis();
  const prefix = testPrefix('bot-arena-api');
  let api: Listening;
  let world: World;

  beforeAll(async () => {
    const config = loadConfig({ env: {}, configDir: os.tmpdir(), overrides: { arena: { minVotes: 1, bootstrapRounds: 50, battleTtlSeconds: BATTLE_SECONDS } } });
    const arena = new Arena({ store: new ArenaStore(redis, prefix), adapters: { list: async () => ADAPTERS }, answers: new ScriptedAnswers(), options: config.arena });
    api = await listen(createApp({ config: { ...config.server, port: 0 }, log: silentLogger(), metrics: createMetrics({ defaultMetrics: false }), readiness: {}, arena }));
    world = await createWorld('arena', api.url);
  });

  afterAll(async () => {
    await world?.close();
    await api?.close();
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  afterEach(() => {
    expect(world.fake.violations).toEqual([]);
  });

  const names = ADAPTERS.map((a) => a.name);
  const mentionsAName = (m: FakeMessage) => names.some((n) => JSON.stringify({ e: m.embeds, c: m.components, t: m.content }).includes(n));

  it('runs a battle: anonymous answers, three members vote and are told privately, names revealed at closing', async () => {
    const { fake, bob, alice, carol, dave } = world;
    const compare = fake.command(bob, 'compare', { prompt: 'How do I find large files?', a: 'linux-commands', b: 'troubleshooting', category: 'linux' });
    const battle = await compare.reply((m) => m.components.length > 0, 'the battle');
    expect(battle.embeds.map((e) => e.title)).toEqual(['⚔️ Which answer is better?', 'Answer A', 'Answer B']);
    expect(mentionsAName(battle)).toBe(false);
    const ids = battle.components.flatMap((row) => row.components).map((c) => ('custom_id' in c ? c.custom_id : ''));
    const battleId = /^vote:cast:([^:]+):A$/.exec(ids[0]!)![1]!;
    expect(ids).toEqual(['A', 'B', 'tie', 'bad'].map((c) => `vote:cast:${battleId}:${c}`));

    const receipts: string[] = [];
    for (const [member, choice] of [[alice, 'A'], [carol, 'A'], [dave, 'tie'], [dave, 'B']] as const) {
      const click = fake.click(member, fake.messages.get(battle.id)!, `vote:cast:${battleId}:${choice}`);
      const receipt = await click.reply(() => true, `${member.user.username}'s receipt`);
      expect(click.ephemeral).toBe(true);
      receipts.push(receipt.content);
    }
    expect(receipts[0]).toMatch(/^Your vote: \*\*A is better\*\*\.\nA was \*\*(linux-commands|troubleshooting)\*\*, B was \*\*(linux-commands|troubleshooting)\*\*/);
    expect(receipts[3]).toMatch(/^Your vote: \*\*B is better\*\* \(changed from \*Tie\*\)\./);
    // the public message still hides the names while voting is open
    expect(mentionsAName(fake.messages.get(battle.id)!)).toBe(false);

    // voting closes (here by the API's close endpoint, before its time): a late click is refused privately
    await new LoraforgeClient({ baseUrl: api.url }).arena.close(battleId);
    const late = fake.click(carol, fake.messages.get(battle.id)!, `vote:cast:${battleId}:B`);
    expect((await late.reply()).content).toMatch(/closed: it takes no more votes/);
    expect(late.ephemeral).toBe(true);

    // at its closing time the bot edits the battle: names on the answers, the tally, no buttons
    const revealed = await fake.waitFor(() => {
      const m = fake.messages.get(battle.id)!;
      return m.components.length === 0 ? m : undefined;
    }, 'the names to be revealed at closing', { timeoutMs: (BATTLE_SECONDS + 20) * 1000 });
    const [, a, b] = revealed.embeds;
    const sideA = a!.title!.replace(/^Answer A: /, '');
    expect(new Set([sideA, b!.title!.replace(/^Answer B: /, '')])).toEqual(new Set(['linux-commands', 'troubleshooting']));
    expect(revealed.embeds[0]!.fields?.[0]?.value).toBe('A 2 · B 1 · tie 0 · both bad 0');
    expect(receipts[0]).toContain(`A was **${sideA}**`);
  });

  it('/leaderboard posts the table and the chart as a PNG', async () => {
    const { fake, bob } = world;
    const reply = await fake.command(bob, 'leaderboard', {}).reply((m) => m.embeds.length > 0, 'the leaderboard');
    const embed = reply.embeds[0]!;
    expect(embed.title).toBe('🏆 Leaderboard');
    expect(embed.image?.url).toBe('attachment://leaderboard.png');
    expect(embed.description).toMatch(/```\n#\s+adapter\s+rating\s+95% interval\s+votes\s+win\s+elo\n/);
    expect(embed.description).toContain('linux-commands');
    expect(embed.description).toContain('troubleshooting');
    expect(reply.attachments.map((a) => a.filename)).toEqual(['leaderboard.png']);
    expect(fake.attachmentBytes(reply.attachments[0]!).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  });

  it('autocompletes contenders from the registry cache', async () => {
    // this API has no registry routes: the cache stays empty and autocomplete still answers at once
    expect(await world.fake.autocomplete(world.bob, 'compare', { prompt: 'x', a: 'li' }, 'a')).toEqual([]);
  });
});
