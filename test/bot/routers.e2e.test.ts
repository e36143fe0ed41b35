// Routers through the bot, end to end: a real discord.js bot in the fake Discord, the whole stack behind it (the
// demo model served by the real engine, experts registered per skill, the router service, the arena). /router
// create; the router in the autocomplete of /ask, /chat and /compare; /ask and a chat thread name the member that
// answered (🧭, or the two a blend joined), turn by turn; a /compare battle with the router as a contender.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadSuites } from '../../src/eval/suite.js';
import type { EvalStack } from '../eval/stack.js';
import { startStackWorld, type StackWorld } from './stack-world.js';
import type { World } from './world.js';

const MEMBERS = ['code-expert', 'linux-commands-expert', 'python-automation-expert', 'troubleshooting-expert'];

describe('bot: routers against the whole stack', () => {
  let env: StackWorld;
  let stack: EvalStack;
  let world: World;

  beforeAll(async () => {
    env = await startStackWorld('routers', { mergeWorker: false });
    ({ stack, world } = env);
  }, 240_000);

  afterAll(() => env?.close());

  afterEach(() => {
    expect(world.fake.violations).toEqual([]);
  });

  it('/router create (operators only), then the router is offered wherever a model is asked for and listed', async () => {
    const { fake, alice, bob } = world;
    const denied = fake.command(bob, 'router create', { name: 'skills', members: MEMBERS.join(', ') });
    expect((await denied.privately()).content).toMatch(/^🔒 You need the \*\*ml-ops\*\* role to create routers\./);
    expect((await fake.autocomplete(bob, 'router create', { name: 'x', members: 'code-expert, li' }, 'members')).map((c) => c.value)).toEqual([
      'code-expert, linux-commands-expert',
    ]);
    const created = await fake.command(alice, 'router create', { name: 'skills', members: MEMBERS.join(', ') }).reply((m) => m.content.startsWith('Created'));
    expect(created.content).toMatch(/^Created: 🧭 \*\*skills\*\* routes to `code-expert` \(code\), `linux-commands-expert` \(linux-commands\), .* when unsure \(lead < 0\.02\): the nearest member · calibrated on \d\/\d\/\d\/\d suite prompts\n/);
    for (const [command, options, option] of [
      ['ask', { prompt: 'x', adapter: 'sk' }, 'adapter'],
      ['chat start', { adapter: 'sk' }, 'adapter'],
      ['compare', { prompt: 'x', a: 'sk' }, 'a'],
    ] as const) {
      const choices = await fake.autocomplete(bob, command, options, option);
      expect(choices[0], command).toEqual({ name: expect.stringMatching(/^skills \(🧭 router of code-expert, /), value: 'skills' });
    }
    const few = fake.command(alice, 'router create', { name: 'solo', members: 'code-expert' });
    expect((await few.privately()).content).toMatch(/at least two members/);
    const listed = await fake.command(bob, 'router list').reply((m) => m.content.length > 0);
    expect(listed.content).toMatch(/^🧭 \*\*skills\*\* routes to `code-expert` \(code\), /);
    const mixed = await fake.command(alice, 'router create', { name: 'mixed', members: MEMBERS.join(', '), blend: 0.6 }).reply((m) => m.content.startsWith('Created'));
    expect(mixed.content).toMatch(/ · when unsure \(lead < 0\.075\): a blend of the two nearest at 0\.6 · /);
    const close = await fake.command(alice, 'router create', { name: 'close-calls', members: MEMBERS.join(', '), blend: 0.6, margin: 0.02 }).reply((m) => m.content.startsWith('Created'));
    expect(close.content).toMatch(/ · when unsure \(lead < 0\.02\): a blend of the two nearest at 0\.6 · /);
    expect((await stack.client.routers.remove('close-calls')).margin).toBe(0.02);
  });

  /** The first suite prompt the blending router answers with a blend. */
  async function unsurePrompt(): Promise<string> {
    const spec = (await stack.engine!.router('mixed'))!;
    for (const item of await loadSuites()) if ((await stack.engine!.route(spec, { kind: 'chat', messages: [{ role: 'user', content: item.prompt }] })).blend) return item.prompt;
    throw new Error('no suite prompt is routed to a blend');
  }

  it('/ask names the member that answered, and answers as that member does', async () => {
    const { fake, carol } = world;
    const prompt = 'How do I find the biggest files in a directory?';
    const reply = await fake.command(carol, 'ask', { prompt, adapter: 'skills', max_tokens: 24, temperature: 0 }).reply((m) => /\n-# \d+ tokens in/.test(m.content), 'the answer');
    const member = /\n-# 🧭 routed to ([\w-]+)\n/.exec(reply.content)?.[1];
    expect(MEMBERS).toContain(member);
    expect(reply.content.startsWith(`> ${prompt}\n-# 🧠 skills · temperature 0\n-# 🧭 routed to ${member}\n`)).toBe(true);
    const direct = await stack.client.inference.chat({ model: member!, messages: [{ role: 'user', content: prompt }], max_tokens: 24, temperature: 0 });
    expect(reply.content).toContain(direct.choices[0]!.message.content);
  });

  it('/ask names the two members of a blend when no member is clearly nearest', async () => {
    const { fake, carol } = world;
    const prompt = await unsurePrompt();
    const reply = await fake.command(carol, 'ask', { prompt, adapter: 'mixed', max_tokens: 8, temperature: 0 }).reply((m) => /\n-# \d+ tokens in/.test(m.content), 'the answer');
    const [, first, second] = /\n-# 🧭 blended ([\w-]+) \+ ([\w-]+)\n/.exec(reply.content) ?? [];
    expect(MEMBERS).toContain(first);
    expect(MEMBERS).toContain(second);
    const spec = (await stack.engine!.router('mixed'))!;
    expect((await stack.engine!.route(spec, { kind: 'chat', messages: [{ role: 'user', content: prompt }] })).nearest).toBe(first);
  });

  it('a chat thread with the router routes every turn', async () => {
    const { fake, bob } = world;
    await fake.command(bob, 'chat start', { adapter: 'skills' }).reply((m) => m.content.startsWith('Chat with'));
    const thread = fake.threads().at(-1)!;
    const answerTo = async (text: string) => {
      const asked = fake.say(bob, thread.id, text);
      return fake.waitFor(
        () => fake.messagesIn(thread.id).find((m) => m.createdAt >= asked.createdAt && m.author.bot && /\n-# \d+ tokens in/.test(m.content)),
        `the answer to "${text}"`,
        { timeoutMs: 60_000 },
      );
    };
    for (const text of ['Write a Python script that renames files.', 'Why does my service fail to start?']) {
      const answer = await answerTo(text);
      expect(answer.content).toMatch(/^-# 🧠 skills\n-# 🧭 routed to [\w-]+-expert\n/);
    }
  });

  it('/compare battles the router against an adapter', async () => {
    const { fake, dave } = world;
    const battle = await fake
      .command(dave, 'compare', { prompt: 'List running processes', a: 'skills', b: 'code-expert' })
      .reply((m) => m.components.length > 0, 'the battle', { timeoutMs: 60_000 });
    expect(battle.embeds.map((e) => e.title)).toEqual(['⚔️ Which answer is better?', 'Answer A', 'Answer B']);
    const ids = battle.components.flatMap((row) => row.components).map((c) => ('custom_id' in c ? c.custom_id : ''));
    const battleId = /^vote:cast:([^:]+):A$/.exec(ids[0]!)![1]!;
    const vote = fake.click(dave, battle, `vote:cast:${battleId}:A`);
    expect((await vote.reply()).content).toMatch(/^Your vote: \*\*A is better\*\*\.\nA was \*\*(skills|code-expert)\*\*/);
    const closed = await stack.client.arena.close(battleId);
    expect(new Set(Object.values(closed.models ?? {}))).toEqual(new Set(['skills', 'code-expert']));
  });

  it('/router show says how a router routes; /router remove (operators only) leaves its members registered', async () => {
    const { fake, alice, bob } = world;
    expect((await fake.autocomplete(bob, 'router show', { router: 'mi' }, 'router')).map((c) => c.value)).toEqual(['mixed']);
    const shown = await fake.command(bob, 'router show', { router: 'mixed' }).reply((m) => m.content.length > 0);
    expect(shown.content).toMatch(/^🧭 \*\*mixed\*\* routes to `code-expert` \(code\), .* when unsure \(lead < 0\.075\): a blend of the two nearest at 0\.6 · /);
    expect(shown.content).toMatch(/\n-# routes by the prompt’s character n-grams \(`text`\) to the nearest member's calibration centroid · base model `[^`]+` · created by <@\d+> on \d{4}-\d\d-\d\d\n/);
    const missing = fake.command(bob, 'router show', { router: 'nope' });
    expect((await missing.privately()).content).toMatch(/^⚠️ router 'nope' does not exist/);

    const denied = fake.command(bob, 'router remove', { router: 'mixed' });
    expect((await denied.privately()).content).toMatch(/^🔒 You need the \*\*ml-ops\*\* role to remove routers\./);
    const removed = await fake.command(alice, 'router remove', { router: 'mixed' }).reply((m) => m.content.length > 0);
    expect(removed.content).toBe('🗑️ Removed the router **mixed**; its members (`code-expert`, `linux-commands-expert`, `python-automation-expert`, `troubleshooting-expert`) stay registered.');
    expect((await stack.client.routers.list()).map((r) => r.name)).toEqual(['skills']);
    expect((await fake.autocomplete(bob, 'ask', { prompt: 'x', adapter: 'mi' }, 'adapter')).map((c) => c.value)).not.toContain('mixed');
    expect((await stack.client.adapters.list()).map((a) => a.name)).toEqual(expect.arrayContaining(MEMBERS));
  });

  it('/merge warns before a recipe likely to hurt, and says what to try', async () => {
    const { fake, alice } = world;
    const merge = fake.command(alice, 'merge linear', { weights: '1,1', adapters: 'code-expert, linux-commands-expert', name: 'too-strong' });
    await merge.reply((m) => m.content.startsWith('Queued'));
    const warning = await fake.waitFor(
      () => fake.messagesIn(fake.channelId).find((m) => m.content.startsWith('⚠️ linear with weights summing to 2')),
      'the warning',
    );
    expect(warning.content).toMatch(/Try weights summing to about 1 \(e\.g\. 0\.5 each\), a sweep .* or a router/);
  });
});
