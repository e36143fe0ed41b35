// /adapter and /merge end to end: a real discord.js bot in the fake Discord, the real API and a real merge worker
// (the composition `loraforge all` runs) on the real Redis. Every request the bot makes goes over HTTP.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create as createTar } from 'tar';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeTestAdapter } from '../helpers/adapters.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { createWorld, type World } from './world.js';

// big enough that a TIES merge of four lasts several edit intervals even on a quiet machine (about 6 s here, with
// the dense modules on every core): there is progress to show between the queued note and the result
const SHAPE = { hidden: 1024, kv: 256, layers: 32, rank: 8, baseModel: 'test/llama-tiny' };
const SKILLS = ['code', 'linux-commands', 'python-automation', 'troubleshooting'];
const EDIT_INTERVAL_MS = 1500;
/** edits are timed on arrival at the fake Discord, which adds each request's own latency */
const LATENCY_SLACK_MS = 150;

describe('bot: adapters and merges against the real API and worker', () => {
  let work: string;
  let svc: TestService;
  let world: World;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'lf-bot-merge-'));
    for (const [k, skill] of SKILLS.entries()) await writeTestAdapter(path.join(work, 'imports', skill), SHAPE, 100 + k);
    await writeTestAdapter(path.join(work, 'upload', 'extra'), { ...SHAPE, layers: 2 }, 7);
    svc = await startTestService({ name: 'bot-merge', server: { importDir: path.join(work, 'imports') } });
    world = await createWorld('merge', svc.url, { editIntervalMs: EDIT_INTERVAL_MS });
  });

  afterAll(async () => {
    await world?.close();
    await svc?.close();
    await rm(work, { recursive: true, force: true });
  });

  afterEach(() => {
    expect(world.fake.violations).toEqual([]);
  });

  it('registers adapters from server paths, in registration order', async () => {
    const { fake, alice } = world;
    for (const skill of SKILLS) {
      const reply = await fake.command(alice, 'adapter register', { name: skill, path: path.join(work, 'imports', skill), category: skill.split('-')[0]! }).reply((m) => m.embeds.length > 0, `${skill} registered`);
      expect(reply.embeds[0]!.title).toBe(`Registered: ${skill}`);
      expect(reply.embeds[0]!.fields?.find((f) => f.name === 'Added by')?.value).toContain(`<@${alice.user.id}>`);
    }
  });

  it('registers an uploaded .tar.gz of an adapter directory', async () => {
    const { fake, alice } = world;
    const archive = path.join(work, 'extra.tar.gz');
    await createTar({ gzip: true, file: archive, cwd: path.join(work, 'upload') }, ['extra']);
    const { readFile } = await import('node:fs/promises');
    const file = fake.upload('extra.tar.gz', await readFile(archive), 'application/gzip');
    const reply = await fake.command(alice, 'adapter register', { name: 'extra', file, description: 'uploaded from Discord' }).reply((m) => m.embeds.length > 0);
    expect(reply.embeds[0]!.title).toBe('Registered: extra');
    expect(reply.embeds[0]!.description).toBe('uploaded from Discord');
    // not wanted in the merges below: remove it again (an operator may)
    const removed = await fake.command(alice, 'adapter remove', { name: 'extra' }).reply();
    expect(removed.content).toMatch(/^🗑️ Removed `extra`/);
  });

  it('lists the registry as an embed: rank, targets, size, base model, who added it', async () => {
    const { fake, bob } = world;
    const reply = await fake.command(bob, 'adapter list').reply((m) => m.embeds.length > 0);
    const lines = reply.embeds[0]!.description!.split('\n');
    expect(reply.embeds[0]!.title).toBe('Adapters (4)');
    expect(lines.map((l) => /`([^`]+)`/.exec(l)?.[1])).toEqual(SKILLS);
    expect(lines[0]).toMatch(new RegExp(`^\\*\\*1\\.\\*\\* \`code\` · r8 · k,o,q,v · [\\d.]+ [KM]i?B · test/llama-tiny · <@${world.alice.user.id}>, <t:\\d+:d>$`));
  });

  it('autocompletes adapter names from its cache, without asking the API', async () => {
    const { fake, bob } = world;
    await world.bot.context.adapters.refresh();
    const before = fake.requests.length;
    const choices = await fake.autocomplete(bob, 'adapter show', { name: 'li' }, 'name');
    expect(choices.map((c) => c.value)).toEqual(['linux-commands']);
    const list = await fake.autocomplete(bob, 'merge ties', { weights: '1,1', adapters: 'code, py' }, 'adapters');
    expect(list.map((c) => c.value)).toEqual(['code, python-automation']);
    // the only requests were the two autocomplete answers
    expect(fake.requests.slice(before).map((r) => r.path.replace(/\d+\/[^/]+\/callback$/, ':id/:token/callback'))).toEqual(['/interactions/:id/:token/callback', '/interactions/:id/:token/callback']);
  });

  it('refuses a member without the operator role, privately, and says what to do', async () => {
    const { fake, bob } = world;
    const denied = fake.command(bob, 'merge ties', { weights: '1,1,1,1', density: 0.2 });
    expect((await denied.privately()).content).toBe('🔒 You need the **ml-ops** role to merge adapters. Ask a server admin to give it to you; asking, chatting and voting are open to everyone.');
    expect(fake.messagesIn(fake.channelId).filter((m) => m.content.startsWith('Merge started'))).toEqual([]);
  });

  it('refuses bad options with the fix: weight count, density, unknown adapter, a file that is no archive', async () => {
    const { fake, alice } = world;
    const weights = fake.command(alice, 'merge ties', { weights: '1,1,1', density: 0.2 });
    expect((await weights.privately()).content).toBe(
      '⚠️ 3 weights for 4 adapters (code, linux-commands, python-automation, troubleshooting): give one weight per adapter, e.g. `weights:1,1,1,1`.',
    );
    const density = fake.command(alice, 'merge ties', { weights: '1,1,1,1', density: 0 });
    expect((await density.privately()).content).toMatch(/^⚠️ density must be in \(0, 1\]/);
    const unknown = fake.command(alice, 'merge linear', { weights: '1,1', adapters: 'code,linux-comands' });
    expect((await unknown.privately()).content).toBe('⚠️ No adapter is registered as `linux-comands`. Did you mean `linux-commands`? `/adapter list` shows them all.');
    const notes = fake.command(alice, 'adapter register', { name: 'notes', file: fake.upload('notes.txt', Buffer.from('hello'), 'text/plain') });
    expect((await notes.privately()).content).toMatch(/^⚠️ `notes\.txt` is not an archive: upload the adapter directory .* as a \.zip or \.tar\.gz$/);
    const both = fake.command(alice, 'adapter register', { name: 'both' });
    expect((await both.privately()).content).toMatch(/^⚠️ Give either `path:` .* or `file:`/);
    const show = fake.command(alice, 'adapter show', { name: 'nope' });
    expect((await show.privately()).content).toMatch(/^⚠️ .*nope/);
    const layers = fake.command(alice, 'merge linear', { weights: '1,1', adapters: 'code,linux-commands', layer_weights: '1,x;1,1' });
    expect((await layers.privately()).content).toBe('⚠️ layer_weights: `x` is not a number; write them like `1,0.5,1;0.8,1,1`');
    const rows = fake.command(alice, 'merge linear', { weights: '1,1', adapters: 'code,linux-commands', layer_weights: '1,0.5' });
    expect((await rows.privately()).content).toMatch(/give one row of group weights per adapter \(2\), got 1/);
  });

  it('/merge linear with layer_weights keeps the per-layer-group weights in the recipe', async () => {
    const { fake, alice } = world;
    await fake.command(alice, 'merge linear', { weights: '0.5,0.5', adapters: 'code,linux-commands', layer_weights: '1,0;0,1', name: 'by-layer' }).reply((m) => m.content.startsWith('Queued'));
    await fake.waitFor(() => fake.messagesIn(fake.channelId).find((m) => m.embeds[0]?.title === '✅ linear merge → by-layer'), 'the merge to finish', { timeoutMs: 120_000 });
    expect((await svc.registry.get('by-layer')).recipe).toMatchObject({ method: 'linear', weights: [0.5, 0.5], layerWeights: { weights: [[1, 0], [0, 1]] } });
  });

  let mergedName = '';

  it('/merge ties weights:1,1,1,1 merges the registered adapters: queued, a progress bar edited at most every 1.5 s, the result', async () => {
    const { fake, alice } = world;
    const interaction = fake.command(alice, 'merge ties', { weights: '1,1,1,1' });
    const ack = await interaction.reply((m) => m.content.startsWith('Queued'), 'the queued note');
    expect(interaction.ephemeral).toBe(true);
    expect(ack.content).toMatch(/^Queued as `merge-[0-9a-f]+`; progress: https:\/\/discord\.com\/channels\//);
    const merged = await fake.waitFor(
      () => fake.messagesIn(fake.channelId).find((m) => m.content === `Merge started by <@${alice.user.id}>` && m.embeds[0]?.title?.startsWith('✅ ties merge')),
      'the merge to finish',
      { timeoutMs: 120_000 },
    );
    const states = merged.revisions.map((r) => r.embeds[0]?.description ?? '');
    // queued, or already starting when a worker was free
    expect(states[0]).toMatch(/^(⏳ Queued|⚙️ Starting)/);
    expect(states.some((d) => /^▰*▱* \d+%\n/.test(d))).toBe(true);
    const embed = merged.embeds[0]!;
    mergedName = /^✅ ties merge → (ties-[0-9a-f]{8})$/.exec(embed.title!)![1]!;
    expect(embed.fields?.find((f) => f.name === 'Inputs × weights')?.value).toBe(SKILLS.map((s) => `\`${s}\` × 1`).join('\n'));
    expect(embed.fields?.find((f) => f.name === 'What the merge kept')?.value).toMatch(/error vs exact weighted sum: \*\*[\d.]+%\*\*/);
    expect(embed.fields?.find((f) => f.name === 'Time')).toBeDefined();
    const buttons = merged.components.flatMap((row) => row.components).map((c) => ('custom_id' in c ? c.custom_id : ''));
    const job = /^merge:ask:(.+)$/.exec(buttons[0]!)![1]!;
    expect(buttons).toEqual([`merge:ask:${job}`, ...SKILLS.map((_, k) => `merge:cmp:${job}:${k}`)]);
    // edited with the bot token, at least the interval apart
    const edits = fake.requestsTo('PATCH', new RegExp(`^/channels/\\d+/messages/${merged.id}$`));
    expect(edits.length).toBeGreaterThanOrEqual(2);
    for (const [k, e] of edits.entries()) {
      expect(e.headers.authorization).toBe(`Bot ${fake.token}`);
      if (k > 0) expect(e.at - edits[k - 1]!.at).toBeGreaterThanOrEqual(EDIT_INTERVAL_MS - LATENCY_SLACK_MS);
    }
  });

  it('/merge status shows the job, and the merge is registered with its recipe', async () => {
    const { fake, bob } = world;
    const status = await fake.command(bob, 'merge status').reply();
    expect(status.content).toContain(`· ties → \`${mergedName}\` · **completed**`);
    const show = await fake.command(bob, 'adapter show', { name: mergedName }).reply((m) => m.embeds.length > 0);
    expect(show.embeds[0]!.fields?.find((f) => f.name === 'Recipe: ties')?.value).toContain('`code` × 1');
    expect(show.embeds[0]!.fields?.find((f) => f.name === 'Diagnostics')?.value).toMatch(/error vs exact weighted sum/);
    expect(show.embeds[0]!.fields?.find((f) => f.name === 'Recipe: ties')?.value).toMatch(/density=0\.2\b/);
    // the same recipe again (the default density said out loud) is the same job: the bot points at it
    const again = fake.command(world.alice, 'merge ties', { weights: '1,1,1,1', density: 0.2 });
    expect((await again.reply((m) => m.content.length > 0)).content).toMatch(/^The same merge was already queued or done as `merge-[0-9a-f]+`; progress: /);
  });

  it('a merge goes on showing progress through a bot restart and a 429 storm on its edits', async () => {
    const { fake, alice } = world;
    const interaction = fake.command(alice, 'merge dare_linear', { weights: '0.5,0.5,0.5,0.5', density: 0.5, seed: 7, name: 'dare-restart' });
    await interaction.reply((m) => m.content.startsWith('Queued'));
    const tracker = await fake.waitFor(() => fake.messagesIn(fake.channelId).find((m) => m.embeds[0]?.title === '⏳ dare_linear merge → dare-restart' || m.embeds[0]?.title === '⚙️ dare_linear merge → dare-restart'), 'the progress message');
    await world.restartBot();
    // every edit of the progress message meets a 429 (1 s) three times over
    fake.injectRateLimit({ method: 'PATCH', path: new RegExp(`^/channels/\\d+/messages/${tracker.id}$`), count: 3, retryAfter: 1 });
    const done = await fake.waitFor(() => (fake.messages.get(tracker.id)!.embeds[0]?.title === '✅ dare_linear merge → dare-restart' ? fake.messages.get(tracker.id) : undefined), 'the resumed merge to finish', { timeoutMs: 120_000 });
    expect(done.components.length).toBeGreaterThan(0);
    const edits = fake.requestsTo('PATCH', new RegExp(`^/channels/\\d+/messages/${tracker.id}$`));
    expect(edits.filter((e) => e.status === 429)).toHaveLength(3);
    fake.rateLimits.clear();
  });

  it('/merge cancel stops a merge, and the message says so', async () => {
    const { fake, alice } = world;
    await fake.command(alice, 'merge magnitude_prune', { weights: '1,2,3,4', density: 0.3, name: 'to-cancel' }).reply((m) => m.content.startsWith('Queued'));
    const tracker = await fake.waitFor(() => fake.messagesIn(fake.channelId).find((m) => m.embeds[0]?.title?.endsWith('magnitude_prune merge → to-cancel')), 'the progress message');
    const job = /^job (\S+)/.exec(tracker.embeds[0]!.footer!.text)![1]!;
    expect(await fake.autocomplete(alice, 'merge cancel', { job: job.slice(0, 10) }, 'job')).toContainEqual({ name: job, value: job });
    const cancel = await fake.command(alice, 'merge cancel', { job }).reply();
    expect(cancel.content).toMatch(/Cancel(led| requested)/);
    // the merge lasts seconds (SHAPE), the cancel reaches its worker in milliseconds
    const final = await fake.waitFor(() => (/^(🚫|✅)/.test(fake.messages.get(tracker.id)!.embeds[0]?.title ?? '') ? fake.messages.get(tracker.id) : undefined), 'the cancelled state', { timeoutMs: 60_000 });
    expect((await svc.client.merges.get(job)).state).toBe('cancelled');
    expect(final.embeds[0]!.title).toBe('🚫 magnitude_prune merge → to-cancel');
    expect((await svc.client.adapters.list()).map((a) => a.name)).not.toContain('to-cancel');
  });
});

describe('bot: the API down', () => {
  it('answers "the server is down" with the URL it tried, never silence', async () => {
    // a port nothing listens on
    const url = 'http://127.0.0.1:9';
    const world = await createWorld('down', url);
    try {
      const list = world.fake.command(world.bob, 'adapter list');
      expect((await list.privately()).content).toMatch(/^🔌 The loraforge server is down: cannot reach the loraforge API at http:\/\/127\.0\.0\.1:9 /);
      const merge = world.fake.command(world.alice, 'merge linear', { weights: '1,1' });
      expect((await merge.privately()).content).toMatch(/^🔌 The loraforge server is down/);
      expect(world.fake.violations).toEqual([]);
    } finally {
      await world.close();
    }
  });
});
