// /ask and /chat end to end: a real discord.js bot in the fake Discord, the real API over a real inference engine
// (worker thread, ONNX Runtime) serving a tiny built model and two adapters. Answers are checked against the same
// request made to the API directly (greedy decoding is deterministic).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LoraforgeClient } from '../../src/client/index.js';
import { loadConfig } from '../../src/config/index.js';
import type { InferenceEngine } from '../../src/inference/engine/index.js';
import { createApp } from '../../src/server/app.js';
import { createMetrics } from '../../src/server/metrics.js';
import { silentLogger } from '../../src/util/log.js';
import { makeTestModel, removeTestModel, writePeftAdapter, type TestModel } from '../inference/engine/model.js';
import { createWorld, type World } from './world.js';
import { startTestEngine } from '../helpers/engine.js';

const EDIT_INTERVAL_MS = 400;
/** edits are timed on arrival at the fake Discord, which adds each request's own latency */
const LATENCY_SLACK_MS = 150;

describe('bot: /ask and /chat against the real API and engine', () => {
  let engine: InferenceEngine;
  let server: Server;
  let url: string;
  let world: World;
  let model: TestModel;

  beforeAll(async () => {
    model = await makeTestModel({ maxPositions: 1024 });
    const adapters = await Promise.all(
      ['alpha', 'beta'].map(async (name, k) => ({ name, dir: await writePeftAdapter(path.join(model.root, 'adapters', name), model.adapters[k]!) })),
    );
    engine = await startTestEngine(model.modelDir, adapters, { modelId: 'tiny-llama' });
    const config = loadConfig({ env: {}, configDir: model.root });
    const app = createApp({ config: { ...config.server, rateLimitPerMinute: 100_000 }, log: silentLogger(), metrics: createMetrics({ defaultMetrics: false }), readiness: {}, engine });
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    world = await createWorld('chat', url, { editIntervalMs: EDIT_INTERVAL_MS });
  });

  afterAll(async () => {
    await world?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await engine?.close();
    removeTestModel(model);
  });

  afterEach(() => {
    expect(world.fake.violations).toEqual([]);
  });

  it('/ask streams the answer by editing the reply, as the API would answer it', async () => {
    const { fake, bob } = world;
    const ask = fake.command(bob, 'ask', { prompt: 'How do I list files?', adapter: 'alpha', max_tokens: 120, temperature: 0 });
    const reply = await ask.reply((m) => /\n-# \d+ tokens in [\d.]+ s/.test(m.content), 'the final answer');
    const direct = await new LoraforgeClient({ baseUrl: url }).inference.chat({ model: 'alpha', messages: [{ role: 'user', content: 'How do I list files?' }], max_tokens: 120, temperature: 0 });
    const expected = direct.choices[0]!.message.content;
    expect(reply.content.startsWith(`> How do I list files?\n-# 🧠 alpha · temperature 0\n${expected}\n-# ${direct.usage.completion_tokens} tokens in `)).toBe(true);
    // streamed: the reply was edited more than once, growing, with a cursor until the end, never faster than the interval
    const shown = reply.revisions.map((r) => r.content).filter((c) => c.length > 0);
    expect(shown.length).toBeGreaterThan(1);
    expect(shown.slice(0, -1).every((c) => c.endsWith(' ▌'))).toBe(true);
    const edits = ask.requests().filter((r) => r.method === 'PATCH');
    for (let k = 1; k < edits.length; k++) expect(edits[k]!.at - edits[k - 1]!.at).toBeGreaterThanOrEqual(EDIT_INTERVAL_MS - LATENCY_SLACK_MS);
  });

  it('/ask through a 429 storm (per-route and global): the full answer arrives, every retry_after honoured', async () => {
    const { fake, bob } = world;
    fake.injectRateLimit({ method: 'PATCH', path: /^\/webhooks\//, count: 4, retryAfter: 0.5 });
    fake.injectRateLimit({ method: 'PATCH', path: /^\/webhooks\//, count: 1, retryAfter: 1, global: true });
    try {
      const ask = fake.command(bob, 'ask', { prompt: 'Restart a service', adapter: 'beta', max_tokens: 120, temperature: 0 });
      const reply = await ask.reply((m) => /\n-# \d+ tokens in/.test(m.content), 'the final answer', { timeoutMs: 60_000 });
      const direct = await new LoraforgeClient({ baseUrl: url }).inference.chat({ model: 'beta', messages: [{ role: 'user', content: 'Restart a service' }], max_tokens: 120, temperature: 0 });
      expect(reply.content).toContain(direct.choices[0]!.message.content);
      expect(ask.requests().filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(2);
    } finally {
      fake.rateLimits.clear();
    }
  });

  it('/ask with an unknown adapter answers privately with the closest names', async () => {
    const { fake, bob } = world;
    const ask = fake.command(bob, 'ask', { prompt: 'hi', adapter: 'alhpa' });
    expect((await ask.privately()).content).toBe('⚠️ No adapter is registered as `alhpa`. Did you mean `alpha`? `/adapter list` shows them all.');
  });

  it('/chat: a thread where every message is a turn, the adapter switched mid-way, a bot restart in the middle', async () => {
    const { fake, bob, carol } = world;
    const start = await fake.command(bob, 'chat start', { adapter: 'alpha' }).reply((m) => m.content.startsWith('Chat with'));
    const thread = fake.threads().at(-1)!;
    expect(start.content).toContain(thread.id);
    expect(thread.members.has(bob.user.id)).toBe(true);
    expect(fake.messagesIn(thread.id)[0]!.content).toMatch(/^Chatting with \*\*alpha\*\*/);

    const answerTo = async (member: typeof bob, text: string) => {
      const asked = fake.say(member, thread.id, text);
      return fake.waitFor(
        () => fake.messagesIn(thread.id).find((m) => m.createdAt >= asked.createdAt && m.author.bot && /\n-# \d+ tokens in/.test(m.content)),
        `the answer to "${text}"`,
      );
    };
    const first = await answerTo(bob, 'first question');
    expect(first.content).toMatch(/^-# 🧠 alpha\n/);

    const use = await fake.command(bob, 'chat use', { adapter: 'beta' }, { channelId: thread.id }).reply();
    expect(use.content).toBe('🔀 Switched from **alpha** to **beta**; the conversation goes on with it.');

    await world.restartBot();
    const second = await answerTo(carol, 'second question');
    expect(second.content).toMatch(/^-# 🧠 beta\n/);

    // the history survived the restart: both turns, each answer with the adapter that wrote it (saved just after it shows)
    await expect.poll(async () => (await world.bot.context.chats.get(thread.id))?.turns.length, { timeout: 10_000 }).toBe(4);
    const session = await world.bot.context.chats.get(thread.id);
    expect(session?.turns.map((t) => [t.role, t.role === 'user' ? t.content : t.model])).toEqual([
      ['user', 'first question'],
      ['assistant', 'alpha'],
      ['user', 'second question'],
      ['assistant', 'beta'],
    ]);

    // only the one who started it (or an operator) ends it
    const denied = fake.command(carol, 'chat end', {}, { channelId: thread.id });
    expect((await denied.privately()).content).toMatch(/^🔒 Only <@\d+> \(who started it\) or an operator can end this chat\./);
    const end = await fake.command(bob, 'chat end', {}, { channelId: thread.id }).reply();
    expect(end.content).toBe('Chat ended after 2 turns. The thread stays readable.');
    await fake.waitFor(() => thread.archived, 'the thread to be archived');
  });

  it('/chat use outside a chat thread says where to use it', async () => {
    const { fake, bob } = world;
    const use = fake.command(bob, 'chat use', { adapter: 'beta' });
    expect((await use.privately()).content).toBe('⚠️ This is not an open chat thread: start one with `/chat start` in a channel.');
  });
});
