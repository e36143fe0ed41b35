// The bot's messages as pure functions of the API's answers: what a member sees in each state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterRecord, MergeStatus } from '../../src/bot/api-types.js';
import { commandDefinitions, MERGE_METHODS } from '../../src/bot/commands.js';
import { deployCommands } from '../../src/bot/deploy.js';
import { describeFailure } from '../../src/bot/failures.js';
import { adapterListMessage, discordActor, PAGE_SIZE, showActor } from '../../src/bot/render/adapters.js';
import { sweepView, type SweepStatus } from '../../src/bot/render/evals.js';
import { mergeView } from '../../src/bot/render/merge.js';
import { MERGE_METHODS as ENGINE_METHODS, takes, traitsOf } from '../../src/merge/options.js';
import { ForbiddenError, InvalidInputError, RateLimitedError, UnauthorizedError, UnavailableError } from '../../src/errors.js';
import { FakeDiscord } from '../fake-discord/index.js';

const adapter = (k: number): AdapterRecord => ({
  name: `skill-${String(k).padStart(2, '0')}`,
  sha256: 'ab'.repeat(32),
  baseModel: 'org/base',
  rank: 16,
  alpha: 32,
  targetModules: ['q_proj', 'v_proj'],
  dtype: 'F32',
  modules: 64,
  parameters: 1_000_000,
  bytes: 4_000_000,
  registeredBy: k % 2 ? 'discord:123456789012345678' : 'carol',
  createdAt: new Date(Date.UTC(2024, 0, 1 + k)).toISOString(),
});

const status = (over: Partial<MergeStatus>): MergeStatus => ({
  id: 'merge-abc',
  state: 'queued',
  name: 'ties-1a2b3c4d',
  method: 'ties',
  adapters: [
    { name: 'code', sha256: 'a', weight: 1 },
    { name: 'linux-commands', sha256: 'b', weight: 0.5 },
  ],
  options: { method: 'ties', weights: [1, 0.5], density: 0.2, space: 'delta', seed: 0 },
  recipeHash: 'h',
  progress: null,
  attempts: 1,
  cancelRequested: false,
  ...over,
});

describe('adapter list', () => {
  it('pages the registry oldest first, with working page buttons', () => {
    const all = Array.from({ length: 23 }, (_, k) => adapter(22 - k));
    const first = adapterListMessage(all, 1);
    expect(first.embeds[0]!.title).toBe('Adapters (23)');
    expect(first.embeds[0]!.description!.split('\n')).toHaveLength(PAGE_SIZE);
    expect(first.embeds[0]!.description!.split('\n')[0]).toBe('**1.** `skill-00` · r16 · q,v · 3.81 MiB · org/base · `carol`, <t:1704067200:d>');
    expect(first.embeds[0]!.description!.split('\n')[1]).toContain('<@123456789012345678>');
    const buttons = first.components[0]!.toJSON().components as { custom_id: string; disabled?: boolean }[];
    expect(buttons.map((b) => [b.custom_id, b.disabled])).toEqual([['adapters:page:0', true], ['adapters:page:2', false]]);
    const last = adapterListMessage(all, 99);
    expect(last.embeds[0]!.footer!.text).toMatch(/^Page 3 of 3/);
    expect(last.embeds[0]!.description!.split('\n')).toHaveLength(3);
    expect(adapterListMessage([], 1).embeds[0]!.description).toMatch(/No adapters are registered yet/);
  });

  it('names members by id, shown as mentions', () => {
    expect(discordActor({ id: '42' })).toBe('discord:42');
    expect(showActor('discord:42')).toBe('<@42>');
    expect(showActor('alice')).toBe('`alice`');
  });
});

describe('merge message', () => {
  it('shows queued, a progress bar with the ETA, then the result with its diagnostics and buttons', () => {
    const queued = mergeView(status({}), 'discord:7');
    expect(queued.content).toBe('Merge started by <@7>');
    expect(queued.embeds[0]!.description).toBe('⏳ Queued…');
    expect(queued.embeds[0]!.fields?.[0]).toEqual({ name: 'Inputs × weights', value: '`code` × 1\n`linux-commands` × 0.5', inline: true });
    expect(queued.embeds[0]!.fields?.[1]?.value).toBe('density=0.2 · space=delta · seed=0');
    expect(queued.components).toEqual([]);

    const running = mergeView(status({ state: 'running', progress: { phase: 'merge', done: 12, total: 48, etaSeconds: 75 } }));
    expect(running.embeds[0]!.description).toBe('▰▰▰▰▰▱▱▱▱▱▱▱▱▱▱▱▱▱▱▱ 25%\nmerge: 12 / 48 · about 1 min 15 s left');

    const done = mergeView(
      status({
        state: 'completed',
        startedAt: '2024-01-01T00:00:00.000Z',
        finishedAt: '2024-01-01T00:00:42.000Z',
        result: { name: 'ties-1a2b3c4d', sha256: 'c', status: 'created', summary: { relError: 0.0123, retainedEnergy: 0.99, keptFraction: 0.2, signConflict: 0.05, interference: [[1, 0.1], [0.1, 1]], worstModules: [{ module: 'model.layers.3.self_attn.q_proj', relError: 0.04 }] } },
      }),
    );
    const embed = done.embeds[0]!;
    expect(embed.title).toBe('✅ ties merge → ties-1a2b3c4d');
    expect(embed.fields?.find((f) => f.name === 'What the merge kept')?.value).toBe(
      [
        'error vs exact weighted sum: **1.23%**',
        'energy kept by the rank cut: **99%**',
        'entries kept: **20%**',
        'sign conflicts: **5%**',
        'worst module: `model.layers.3.self_attn.q_proj` (4%)',
        'overlap (cosine): code↔linux-commands 0.1',
      ].join('\n'),
    );
    expect(embed.fields?.find((f) => f.name === 'Time')?.value).toBe('42 s');
    const ids = done.components.flatMap((row) => row.components.map((c) => ('custom_id' in c ? c.custom_id : '')));
    expect(ids).toEqual(['merge:ask:merge-abc', 'merge:cmp:merge-abc:0', 'merge:cmp:merge-abc:1']);
    // no adapter names in custom ids
    for (const id of ids) expect(id).not.toMatch(/code|linux/);

    expect(mergeView(status({ state: 'failed', error: { code: 'invalid_input', message: 'shapes differ' } })).embeds[0]!.description).toBe('The merge failed: shapes differ');
    expect(mergeView(status({ state: 'cancelled' })).embeds[0]!.title).toBe('🚫 ties merge → ties-1a2b3c4d');
  });
});

describe('failures', () => {
  it('tells the member what to do, and treats only unknown errors as bugs', () => {
    expect(describeFailure(new UnavailableError('cannot reach the loraforge API at http://x:1 (ECONNREFUSED); is `loraforge serve` running?'))).toEqual({
      text: '🔌 The loraforge server is down: cannot reach the loraforge API at http://x:1 (ECONNREFUSED); is `loraforge serve` running?. Try again once it is back.',
      bug: false,
    });
    expect(describeFailure(new RateLimitedError('the inference queue is full', 2.5)).text).toBe('⏳ The server is busy: the inference queue is full. Try again in 3 s.');
    expect(describeFailure(new UnauthorizedError()).text).toMatch(/^🔒 The API refused the bot's token/);
    expect(describeFailure(new ForbiddenError('no')).text).toBe('🔒 no');
    expect(describeFailure(new InvalidInputError('bad weights')).text).toBe('⚠️ bad weights');
    const bug = describeFailure(new TypeError('x is undefined'));
    expect(bug.bug).toBe(true);
    expect(bug.text).toBe(`💥 Something went wrong inside the bot (error id \`${bug.errorId}\`). Operators can find it in the bot's log.`);
  });
});

describe('sweep view', () => {
  const status = (totalPoints: number, requestedPoints: number): SweepStatus => ({
    id: 'sweep-1',
    kind: 'sweep',
    state: 'queued',
    progress: null,
    attempts: 0,
    cancelRequested: false,
    search: 'random',
    adapters: ['a', 'b'],
    suites: [],
    items: 8,
    totalPoints,
    requestedPoints,
    baseline: null,
    ranking: [],
    best: null,
  });

  it('says when a random search runs all the space has, fewer points than asked', () => {
    expect(sweepView(status(10, 24), 'u1', null).embeds[0]!.title).toMatch(/Sweep \(random, 10 recipes, all the space has \(24 asked\)\) over a, b/);
    expect(sweepView(status(10, 10), 'u1', null).embeds[0]!.title).toMatch(/Sweep \(random, 10 recipes\) over a, b/);
  });
});

describe('command definitions', () => {
  let fake: FakeDiscord;
  beforeAll(async () => {
    fake = await new FakeDiscord().start();
  });
  afterAll(async () => {
    await fake.stop();
  });

  it('has one /merge subcommand per method, each with only its own options', () => {
    const merge = commandDefinitions().find((c) => c.name === 'merge')!;
    const subs = new Map((merge.options ?? []).map((o) => [o.name, ('options' in o ? (o.options ?? []) : []).map((x) => x.name)]));
    expect([...subs.keys()]).toEqual([...MERGE_METHODS, 'status', 'cancel']);
    expect(subs.get('linear')).toEqual(['weights', 'adapters', 'name', 'space', 'layer_weights']);
    expect(subs.get('ties')).toEqual(['weights', 'density', 'adapters', 'rank', 'name', 'space', 'layer_weights']);
    expect(subs.get('dare_ties')).toEqual(['weights', 'density', 'adapters', 'rank', 'seed', 'name', 'space', 'layer_weights']);
    // density is optional: the API fills in 0.2
    const ties = merge.options?.find((o) => o.name === 'ties');
    expect(ties && 'options' in ties ? ties.options?.find((o) => o.name === 'density')?.required : 'no ties').toBeFalsy();
  });

  it('offers every method of the merge engine, each knob only where the method takes it', () => {
    const merge = commandDefinitions().find((c) => c.name === 'merge')!;
    const subs = new Map((merge.options ?? []).map((o) => [o.name, ('options' in o ? (o.options ?? []) : []).map((x) => x.name)]));
    expect([...MERGE_METHODS].sort()).toEqual([...ENGINE_METHODS].sort());
    for (const method of ENGINE_METHODS) {
      const options = subs.get(method)!;
      // density where the method drops entries (and there always: it is the method's point)
      expect(options.includes('density'), method).toBe(takes(method, 'density'));
      if (options.includes('rank')) expect(takes(method, 'rank'), method).toBe(true);
      // the seed shown is the random drop's
      expect(options.includes('seed'), method).toBe(traitsOf(method).sparsify === 'random');
    }
  });

  it('deploys to a guild or globally with one bulk overwrite, as Discord accepts them', async () => {
    const base = { token: fake.token, applicationId: fake.applicationId, discordApi: fake.apiUrl };
    expect(await deployCommands({ ...base, guildId: fake.guild.id })).toEqual({ scope: 'guild', names: ['adapter', 'merge', 'ask', 'chat', 'compare', 'leaderboard', 'eval', 'sweep', 'router'] });
    expect(await deployCommands(base)).toMatchObject({ scope: 'global' });
    expect(fake.commands.get('global')?.map((c) => c.name)).toEqual(['adapter', 'merge', 'ask', 'chat', 'compare', 'leaderboard', 'eval', 'sweep', 'router']);
    expect(fake.requestsTo('PUT', /commands$/)).toHaveLength(2);
    expect(fake.violations).toEqual([]);
    await expect(deployCommands({ ...base, token: 'wrong' })).rejects.toThrow(/Discord refused the bot token/);
  });
});

describe('sweep options', () => {
  it('reads densities, weights and methods as lists or ranges', async () => {
    const { parseDensities, parseMethods, parseSweepWeights } = await import('../../src/bot/features/evals.js');
    expect(parseDensities('0.3, 0.6')).toEqual([0.3, 0.6]);
    expect(parseDensities('0.1:0.9')).toEqual({ min: 0.1, max: 0.9 });
    expect(parseSweepWeights('0.25,0.4/0.2/0.2/0.2')).toEqual([0.25, [0.4, 0.2, 0.2, 0.2]]);
    expect(parseSweepWeights('0.5:1')).toEqual({ min: 0.5, max: 1 });
    expect(parseMethods('linear,ties')).toEqual(['linear', 'ties']);
    expect(() => parseMethods('linear,average')).toThrow('methods: `average` is not a merge method; use linear, cat, svd, ties, dare_ties, dare_linear, magnitude_prune');
    expect(() => parseDensities('0.2,x')).toThrow('densities: `x` is not a number');
  });
});
