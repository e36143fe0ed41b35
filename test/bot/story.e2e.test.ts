// The product story from Discord, on what `npm start` runs (registry, merge queue and worker, engine serving the
// trained demo model with its four skill adapters registered, arena): list the adapters, ask the base and a skill
// adapter, merge all four, ask the merge from its result card, battle it against one of its inputs, vote, and look at
// the leaderboard.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MODEL_NAME, DEMO_SKILLS } from '../../src/inference/demo.js';
import type { FakeMessage } from '../fake-discord/index.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { createWorld, type World } from './world.js';

const customIds = (m: FakeMessage) => m.components.flatMap((row) => row.components).map((c) => ('custom_id' in c ? c.custom_id : ''));

describe('bot: the product story on the npm start composition', () => {
  let svc: TestService;
  let world: World;
  let merged: FakeMessage;

  beforeAll(async () => {
    svc = await startTestService({ name: 'bot-story', inference: { enabled: true, threads: 1 } });
    world = await createWorld('story', svc.url, { editIntervalMs: 500 });
    await world.bot.context.adapters.refresh();
  }, 240_000);

  afterAll(async () => {
    await world?.close();
    await svc?.close();
  });

  afterEach(() => {
    expect(world.fake.violations).toEqual([]);
  });

  it('lists the four skill adapters and autocompletes the base model for /ask', async () => {
    const { fake, bob } = world;
    const list = await fake.command(bob, 'adapter list').reply((m) => m.embeds.length > 0);
    expect(list.embeds[0]!.title).toBe('Adapters (4)');
    for (const skill of DEMO_SKILLS) expect(list.embeds[0]!.description).toContain(`\`${skill}\``);
    const choices = await fake.autocomplete(bob, 'ask', { prompt: 'x', adapter: '' }, 'adapter');
    expect(choices[0]!.value).toBe(DEMO_MODEL_NAME);
    expect(choices.map((c) => c.value).slice(1).sort()).toEqual([...DEMO_SKILLS].sort());
  });

  it('/ask without an adapter answers with the base model', async () => {
    const { fake, bob } = world;
    const reply = await fake.command(bob, 'ask', { prompt: 'Show disk usage', max_tokens: 16, temperature: 0 }).reply((m) => /\n-# \d+ tokens in/.test(m.content));
    expect(reply.content.startsWith(`> Show disk usage\n-# 🧠 ${DEMO_MODEL_NAME} · temperature 0\n`)).toBe(true);
  });

  it('/ask with a skill adapter gets a recognisable answer from the trained demo model', async () => {
    const { fake, bob } = world;
    const reply = await fake.command(bob, 'ask', { prompt: 'The disk on web1 is full', adapter: 'troubleshooting', max_tokens: 64, temperature: 0 }).reply((m) => /\n-# \d+ tokens in/.test(m.content));
    expect(reply.content).toContain('du -sh');
  });

  it('merges all four skills and asks the merge from its result card', async () => {
    const { fake, alice, carol } = world;
    await fake.command(alice, 'merge ties', { weights: '1,1,1,1', density: 0.5, name: 'all-skills' }).reply((m) => m.content.startsWith('Queued'));
    merged = await fake.waitFor(() => fake.messagesIn(fake.channelId).find((m) => m.embeds[0]?.title === '✅ ties merge → all-skills'), 'the merge', { timeoutMs: 180_000 });
    const ask = fake.click(carol, merged, customIds(merged).find((id) => id.startsWith('merge:ask:'))!);
    await ask.acknowledged();
    const answer = await fake.submitModal(carol, ask, { prompt: 'Restart nginx' }).reply((m) => /\n-# \d+ tokens in/.test(m.content), 'the answer', { timeoutMs: 60_000 });
    expect(answer.content.startsWith('> Restart nginx\n-# 🧠 all-skills\n')).toBe(true);
  });

  it('battles the merge against an input from its card; three members vote; the leaderboard shows the chart', async () => {
    const { fake, alice, bob, carol } = world;
    const ids = customIds(merged);
    const troubleshooting = DEMO_SKILLS.indexOf('troubleshooting');
    const compare = fake.click(carol, merged, ids.find((id) => id.endsWith(`:${troubleshooting}`) && id.startsWith('merge:cmp:'))!);
    await compare.acknowledged();
    const battle = await fake.submitModal(carol, compare, { prompt: 'My service will not start' }).reply((m) => m.components.length > 0, 'the battle', { timeoutMs: 120_000 });
    expect(battle.embeds.map((e) => e.title)).toEqual(['⚔️ Which answer is better?', 'Answer A', 'Answer B']);
    const votes = customIds(battle);
    for (const [member, k] of [[alice, 0], [bob, 0], [carol, 2]] as const) {
      const receipt = await fake.click(member, battle, votes[k]!).reply();
      expect(receipt.content).toMatch(/A was \*\*(all-skills|troubleshooting)\*\*, B was \*\*(all-skills|troubleshooting)\*\*/);
    }
    const board = await fake.command(bob, 'leaderboard').reply((m) => m.embeds.length > 0);
    expect(board.attachments.map((a) => a.filename)).toEqual(['leaderboard.png']);
    // three votes are below the default minimum for the table: the board says so rather than ranking on noise
    expect(board.embeds[0]!.description).toMatch(/Not enough votes yet .*all-skills \(3\)/s);
  });
});
