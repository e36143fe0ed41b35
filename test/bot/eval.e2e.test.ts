// The whole stack behind the bot: the demo model served by the real engine with experts registered per skill, the
// merge queue and worker, the eval service and worker, and the API. Through a real discord.js bot in the fake
// Discord: /eval posts the retention table and heat map; /sweep ranks recipes and keeps the best on a button;
// a finished merge's card shows the retention of its auto-eval, and its "Ask" button streams the merge's answer.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EvalStack } from '../eval/stack.js';
import type { FakeMessage } from '../fake-discord/index.js';
import { startStackWorld, type StackWorld } from './stack-world.js';
import type { World } from './world.js';

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
const customIds = (m: FakeMessage) => m.components.flatMap((row) => row.components).map((c) => ('custom_id' in c ? c.custom_id : ''));

describe('bot: /eval, /sweep and the merge buttons against the whole stack', () => {
  let env: StackWorld;
  let stack: EvalStack;
  let world: World;

  beforeAll(async () => {
    env = await startStackWorld('eval');
    ({ stack, world } = env);
  });

  afterAll(() => env?.close());

  afterEach(() => {
    expect(world.fake.violations).toEqual([]);
  });

  const finished = (prefix: string, what: string) =>
    world.fake.waitFor(() => world.fake.messagesIn(world.fake.channelId).find((m) => m.embeds[0]?.title?.startsWith(prefix)), what, { timeoutMs: 240_000 });

  it('/eval posts retention per model and category, and the heat map', async () => {
    const { fake, bob } = world;
    // names that start with what was typed come first
    expect((await fake.autocomplete(bob, 'eval', { suites: 'co' }, 'suites')).map((c) => c.value)).toEqual(['code', 'linux-commands']);
    const queued = await fake.command(bob, 'eval', { models: 'code-expert', suites: 'code, linux-commands' }).reply((m) => m.content.startsWith('Queued'));
    expect(queued.content).toMatch(/^Queued as `eval-[0-9a-f]{24}`; progress: /);
    const done = await finished('✅ Skill retention', 'the eval to finish');
    const table = done.embeds[0]!.description!;
    expect(table).toMatch(/^```\nmodel\s+code\s+linux-commands\s+worst\s+mean\n/);
    expect(table).toMatch(/\ncode-expert\s+1\.00\s/);
    expect(done.embeds[0]!.image?.url).toBe('attachment://heatmap.png');
    expect(done.attachments.map((a) => a.filename)).toEqual(['heatmap.png']);
    expect(fake.attachmentBytes(done.attachments[0]!).subarray(0, 4)).toEqual(PNG);
  });

  it('/sweep ranks the recipes and keeps the best under a name from its button (operators only)', async () => {
    const { fake, alice, bob } = world;
    const denied = fake.command(bob, 'sweep', { adapters: 'code-expert, linux-commands-expert' });
    expect((await denied.privately()).content).toMatch(/^🔒 You need the \*\*ml-ops\*\* role to run sweeps/);
    await fake
      .command(alice, 'sweep', { adapters: 'code-expert, linux-commands-expert', methods: 'linear', weights: '0.5,1', suites: 'code, linux-commands' })
      .reply((m) => m.content.startsWith('Queued'));
    const done = await finished('✅ Sweep', 'the sweep to finish');
    expect(done.embeds[0]!.description).toMatch(/Recipes, best first .*\n```\nrecipe\s+code\s+linux-commands\s+worst\s+mean\n(linear[^\n]+\n){2}```/s);
    expect(done.attachments.map((a) => a.filename)).toEqual(['heatmap.png']);
    expect(customIds(done)).toEqual([expect.stringMatching(/^sweep:keep:sweep-[0-9a-f]{24}$/)]);
    const click = fake.click(alice, done, customIds(done)[0]!);
    await click.acknowledged();
    const kept = await fake.submitModal(alice, click, { name: 'best-of-two' }).reply();
    expect(kept.content).toMatch(/^Kept \*\*linear [^*]+\*\* as `best-of-two` \(worst retention -?[\d.]+\)\. Try it with `\/ask adapter:best-of-two`\.$/);
    expect((await stack.client.adapters.get('best-of-two')).inputs?.map((i) => i.name)).toEqual(['code-expert', 'linux-commands-expert']);
  });

  it('/sweep search:cmaes tunes the weights and shows the best on the test part, which the search never saw', async () => {
    const { fake, alice } = world;
    const misplaced = fake.command(alice, 'sweep', { adapters: 'code-expert, linux-commands-expert', budget: 3 });
    expect((await misplaced.privately()).content).toMatch(/budget and per_layer are for tuning the weights: choose search “tune weights \(CMA-ES\)”/);
    await fake
      .command(alice, 'sweep', { adapters: 'code-expert, linux-commands-expert', search: 'cmaes', budget: 3, per_layer: true, suites: 'code, linux-commands' })
      .reply((m) => m.content.startsWith('Queued'));
    const done = await fake.waitFor(
      () => fake.messagesIn(fake.channelId).find((m) => m.embeds[0]?.title?.startsWith('✅ Sweep (cmaes, 3 recipes)')),
      'the tuned sweep to finish',
      { timeoutMs: 240_000 },
    );
    const tuned = done.embeds[0]!.fields?.find((f) => f.name === 'Tuned by CMA-ES')?.value;
    expect(tuned).toMatch(
      /^a weight per adapter per layer group \(3 groups\), 3 merges, ranked on the tune part \(calibration and dev, \d+ items\); best point on the test part \(\d+ items, never seen by the search\): worst \*\*-?[\d.]+\*\*, mean -?[\d.]+ \(code (-?[\d.]+|n\/a), linux-commands (-?[\d.]+|n\/a)\)\.$/,
    );
    expect(done.embeds[0]!.description).toMatch(/\nlinear w=1 g=/);
  });

  it('a finished merge: "Ask this merge" opens a form and streams the merge’s answer', async () => {
    const { fake, alice, carol } = world;
    await fake.command(alice, 'merge linear', { weights: '1,1', adapters: 'code-expert,troubleshooting-expert', name: 'code-and-fixes' }).reply((m) => m.content.startsWith('Queued'));
    const merged = await finished('✅ linear merge → code-and-fixes', 'the merge to finish');
    // its card then shows the retention of the eval queued as it finished
    const scored = await fake.waitFor(
      () => merged.embeds[0]!.fields?.find((f) => f.name === 'Skill retention (test part)' && f.value.startsWith('worst **')),
      'the retention on the result card',
      { timeoutMs: 120_000 },
    );
    expect(scored.value).toMatch(/^worst \*\*-?\d\.\d\d\*\* · mean -?\d\.\d\d\ncode -?\d\.\d\d · troubleshooting -?\d\.\d\d$/);
    const ask = fake.click(carol, merged, customIds(merged).find((id) => id.startsWith('merge:ask:'))!);
    await ask.acknowledged();
    const answer = await fake.submitModal(carol, ask, { prompt: 'Write a bash loop' }).reply((m) => /\n-# \d+ tokens in/.test(m.content), 'the streamed answer', { timeoutMs: 60_000 });
    expect(answer.content.startsWith('> Write a bash loop\n-# 🧠 code-and-fixes\n')).toBe(true);
  });
});
