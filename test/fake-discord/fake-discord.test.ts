// The harness itself, driven by a real discord.js Client with probe handlers: what it records, and that it
// enforces Discord's rules the way Discord does (each rule is broken on purpose here).
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ActionRowBuilder,
  AttachmentBuilder,
  ButtonBuilder,
  ButtonStyle,
  ChannelType,
  Client,
  DiscordAPIError,
  EmbedBuilder,
  Events,
  GatewayIntentBits,
  MessageFlags,
  ModalBuilder,
  REST,
  Routes,
  SlashCommandBuilder,
  TextInputBuilder,
  TextInputStyle,
  type Interaction,
  type Message,
} from 'discord.js';
import { InteractionResponseType } from 'discord-api-types/v10';
import { FakeDiscord, type FakeMember } from './index.js';

const definitions = [
  new SlashCommandBuilder()
    .setName('probe')
    .setDescription('probe the fake')
    .addSubcommand((s) => s.setName('run').setDescription('run a probe').addStringOption((o) => o.setName('what').setDescription('which probe').setRequired(true)).addIntegerOption((o) => o.setName('n').setDescription('a number').setMinValue(1).setMaxValue(5)))
    .addSubcommand((s) => s.setName('pick').setDescription('autocomplete').addStringOption((o) => o.setName('name').setDescription('a name').setAutocomplete(true).setRequired(true)))
    .addSubcommand((s) => s.setName('upload').setDescription('read a file').addAttachmentOption((o) => o.setName('file').setDescription('the file').setRequired(true))),
].map((c) => c.toJSON());

type Handler = (interaction: Interaction) => Promise<void>;

let fake: FakeDiscord;
let client: Client;
let alice: FakeMember;
let handler: Handler = async () => {};
let onMessage: (message: Message) => void = () => {};
let lastError: unknown = null;

async function login(intents: GatewayIntentBits[]): Promise<Client> {
  const c = new Client({ intents, rest: { api: fake.apiUrl } });
  c.on(Events.InteractionCreate, (interaction) => {
    handler(interaction).catch((err: unknown) => {
      lastError = err;
    });
  });
  c.on(Events.MessageCreate, (m) => onMessage(m));
  const ready = once(c, Events.ClientReady);
  await c.login(fake.token);
  await ready;
  return c;
}

beforeAll(async () => {
  fake = await new FakeDiscord({ defaultWaitMs: 5_000 }).start();
  alice = fake.addMember('alice');
  await new REST({ api: fake.apiUrl }).setToken(fake.token).put(Routes.applicationGuildCommands(fake.applicationId, fake.guild.id), { body: definitions });
  client = await login([GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent]);
});

afterAll(async () => {
  await client?.destroy();
  await fake?.stop();
});

afterEach(() => {
  handler = async () => {};
  onMessage = () => {};
  lastError = null;
  fake.rateLimits.clear();
  fake.violations.length = 0;
});

const apiError = (err: unknown) => (err instanceof DiscordAPIError ? { status: err.status, code: err.code } : err);

describe('fake Discord: session and registration', () => {
  it('serves the gateway: IDENTIFY with the token and intents, READY and GUILD_CREATE cache the guild', () => {
    expect(fake.identifiedIntents).toEqual([GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages | GatewayIntentBits.MessageContent]);
    expect(client.user?.id).toBe(fake.applicationId);
    expect(client.guilds.cache.get(fake.guild.id)?.members.cache.has(alice.user.id)).toBe(true);
    expect(client.channels.cache.get(fake.channelId)?.type).toBe(ChannelType.GuildText);
  });

  it('stores a bulk overwrite of guild commands and keeps ids across redeploys', async () => {
    const before = fake.commands.get(fake.guild.id)!;
    await new REST({ api: fake.apiUrl }).setToken(fake.token).put(Routes.applicationGuildCommands(fake.applicationId, fake.guild.id), { body: definitions });
    const after = fake.commands.get(fake.guild.id)!;
    expect(after.map((c) => c.name)).toEqual(['probe']);
    expect(after[0]!.id).toBe(before[0]!.id);
  });

  it('refuses command definitions Discord refuses: required after optional, bad names', async () => {
    const bad = [{ name: 'Bad Name', description: 'x', options: [{ type: 3, name: 'a', description: 'a' }, { type: 3, name: 'b', description: 'b', required: true }] }];
    const err = await new REST({ api: fake.apiUrl }).setToken(fake.token).put(Routes.applicationCommands(fake.applicationId), { body: bad }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiscordAPIError);
    expect((err as DiscordAPIError).code).toBe(50035);
    expect((err as DiscordAPIError).message).toMatch(/Required options must be placed before non-required options/);
    expect((err as DiscordAPIError).message).toMatch(/Command name is invalid/);
  });

  it('refuses a bad token', async () => {
    const err = await new REST({ api: fake.apiUrl }).setToken('wrong').get(Routes.gatewayBot()).catch((e: unknown) => e);
    expect(apiError(err)).toEqual({ status: 401, code: 0 });
  });
});

describe('fake Discord: interactions', () => {
  it('records a defer, streamed edits and a follow-up with a file and buttons', async () => {
    handler = async (i) => {
      if (!i.isChatInputCommand()) return;
      await i.deferReply();
      await i.editReply('part one');
      await i.editReply(`part one, ${i.options.getString('what', true)}`);
      const row = new ActionRowBuilder<ButtonBuilder>().addComponents(new ButtonBuilder().setCustomId('probe:1:A').setLabel('A').setStyle(ButtonStyle.Primary));
      await i.followUp({ content: 'more', components: [row], files: [new AttachmentBuilder(Buffer.from('hello'), { name: 'full.md' })] });
    };
    const interaction = fake.command(alice, 'probe run', { what: 'two', n: 3 });
    expect(await interaction.acknowledged()).toBe(InteractionResponseType.DeferredChannelMessageWithSource);
    const reply = await interaction.reply((m) => m.content === 'part one, two');
    expect(reply.revisions.map((r) => r.content)).toEqual(['', 'part one', 'part one, two']);
    const followUp = await interaction.followUp((m) => m.content === 'more');
    expect(followUp.attachments.map((a) => a.filename)).toEqual(['full.md']);
    expect(fake.attachmentBytes(followUp.attachments[0]!).toString()).toBe('hello');
    const callback = interaction.requests().find((r) => r.path.endsWith('/callback'))!;
    expect(callback.headers.authorization).toBeUndefined();
    expect(fake.violations).toEqual([]);
  });

  it('the first follow-up after a defer replaces the thinking message, as Discord does', async () => {
    handler = async (i) => {
      if (!i.isChatInputCommand()) return;
      await i.deferReply();
      await i.followUp('only message');
    };
    const interaction = fake.command(alice, 'probe run', { what: 'x' });
    const reply = await interaction.reply((m) => m.content === 'only message');
    expect(interaction.followUps).toEqual([]);
    expect(reply.id).toBe(interaction.original!.id);
  });

  it('refuses an acknowledgement after 3 seconds with 10062', async () => {
    handler = async (i) => {
      if (!i.isChatInputCommand()) return;
      fake.advance(3_100);
      await i.deferReply();
    };
    fake.command(alice, 'probe run', { what: 'late' });
    await fake.waitFor(() => lastError, 'the late defer to fail');
    expect(apiError(lastError)).toEqual({ status: 404, code: 10062 });
    expect(fake.violations.map((v) => v.kind)).toEqual(['late-ack']);
  });

  it('refuses a second acknowledgement with 40060', async () => {
    handler = async (i) => {
      if (!i.isChatInputCommand()) return;
      await i.deferReply();
      await i.client.rest.post(Routes.interactionCallback(i.id, i.token), { body: { type: 5 }, auth: false });
    };
    fake.command(alice, 'probe run', { what: 'twice' });
    await fake.waitFor(() => lastError, 'the second ack to fail');
    expect(apiError(lastError)).toEqual({ status: 400, code: 40060 });
    expect(fake.violations.map((v) => v.kind)).toEqual(['double-ack']);
  });

  it('refuses content over 2000 characters and oversized embeds with 50035', async () => {
    const errors: unknown[] = [];
    handler = async (i) => {
      if (!i.isChatInputCommand()) return;
      await i.deferReply();
      await i.editReply('x'.repeat(2001)).catch((e: unknown) => errors.push(e));
      await i.editReply({ embeds: [new EmbedBuilder().setDescription('y'.repeat(4096)).setTitle('t'.repeat(256)).addFields({ name: 'n', value: 'z'.repeat(1024) }, { name: 'm', value: 'z'.repeat(1024) })] }).catch((e: unknown) => errors.push(e));
      await i.editReply('ok');
    };
    const interaction = fake.command(alice, 'probe run', { what: 'long' });
    await interaction.reply((m) => m.content === 'ok');
    expect(errors.map(apiError)).toEqual([{ status: 400, code: 50035 }, { status: 400, code: 50035 }]);
    expect((errors[0] as Error).message).toMatch(/content.*2000 or fewer/s);
    expect((errors[1] as Error).message).toMatch(/Embed size exceeds maximum size of 6000/);
  });

  it('refuses an empty message with 50006', async () => {
    handler = async (i) => {
      if (!i.isChatInputCommand()) return;
      await i.client.rest.post(Routes.interactionCallback(i.id, i.token), { body: { type: 4, data: { content: '' } }, auth: false });
    };
    fake.command(alice, 'probe run', { what: 'empty' });
    await fake.waitFor(() => lastError, 'the empty reply to fail');
    expect(apiError(lastError)).toEqual({ status: 400, code: 50006 });
  });

  it('expires interaction tokens after 15 minutes (50027)', async () => {
    let resume!: () => void;
    const later = new Promise<void>((r) => (resume = r));
    handler = async (i) => {
      if (!i.isChatInputCommand()) return;
      await i.deferReply();
      await later;
      await i.editReply('too late');
    };
    const interaction = fake.command(alice, 'probe run', { what: 'slow' });
    await interaction.acknowledged();
    fake.advance(15 * 60_000 + 1);
    resume();
    await fake.waitFor(() => lastError, 'the expired edit to fail');
    expect(apiError(lastError)).toEqual({ status: 401, code: 50027 });
    expect(fake.violations.map((v) => v.kind)).toEqual(['expired-token']);
  });

  it('answers autocomplete with the choices and refuses more than 25', async () => {
    handler = async (i) => {
      if (!i.isAutocomplete()) return;
      const typed = i.options.getFocused();
      const all = Array.from({ length: typed === 'many' ? 30 : 3 }, (_, k) => `${typed}-${k}`);
      await i.respond(all.map((n) => ({ name: n, value: n })));
    };
    expect(await fake.autocomplete(alice, 'probe pick', { name: 'ad' }, 'name')).toEqual([0, 1, 2].map((k) => ({ name: `ad-${k}`, value: `ad-${k}` })));
    const err = await fake.autocomplete(alice, 'probe pick', { name: 'many' }, 'name', { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(String(err)).toMatch(/timed out/);
    expect(apiError(lastError)).toEqual({ status: 400, code: 50035 });
  });

  it('delivers a button click on the message that carries it, and the update edits that message', async () => {
    handler = async (i) => {
      if (i.isChatInputCommand()) {
        const row = new ActionRowBuilder<ButtonBuilder>().addComponents(new ButtonBuilder().setCustomId('probe:7:B').setLabel('B').setStyle(ButtonStyle.Primary));
        await i.reply({ content: 'pick', components: [row] });
      } else if (i.isButton()) {
        await i.update({ content: `${i.user.username} clicked ${i.customId}`, components: [] });
      }
    };
    const interaction = fake.command(alice, 'probe run', { what: 'buttons' });
    const message = await interaction.reply((m) => m.components.length === 1);
    const click = fake.click(alice, message, 'probe:7:B');
    expect(await click.acknowledged()).toBe(InteractionResponseType.UpdateMessage);
    expect(fake.messages.get(message.id)!.content).toBe('alice clicked probe:7:B');
    expect(() => fake.click(alice, fake.messages.get(message.id)!, 'probe:7:B')).toThrow(/no button/);
  });

  it('opens a form from a button and delivers its submission', async () => {
    handler = async (i) => {
      if (i.isChatInputCommand()) {
        const row = new ActionRowBuilder<ButtonBuilder>().addComponents(new ButtonBuilder().setCustomId('probe:form').setLabel('Ask').setStyle(ButtonStyle.Primary));
        await i.reply({ content: 'open the form', components: [row] });
      } else if (i.isButton()) {
        await i.showModal(
          new ModalBuilder()
            .setCustomId('probe:form:1')
            .setTitle('Ask')
            .addComponents(new ActionRowBuilder<TextInputBuilder>().addComponents(new TextInputBuilder().setCustomId('prompt').setLabel('Prompt').setStyle(TextInputStyle.Paragraph))),
        );
      } else if (i.isModalSubmit()) {
        await i.reply(`${i.customId}: ${i.fields.getTextInputValue('prompt')}`);
      }
    };
    const message = await fake.command(alice, 'probe run', { what: 'form' }).reply();
    const click = fake.click(alice, message, 'probe:form');
    expect(await click.acknowledged()).toBe(InteractionResponseType.Modal);
    const submitted = fake.submitModal(alice, click, { prompt: 'hello there' });
    expect((await submitted.reply()).content).toBe('probe:form:1: hello there');
    expect(() => fake.submitModal(alice, submitted, {})).toThrow(/opened no form/);
  });

  it('resolves an uploaded attachment and serves its bytes', async () => {
    handler = async (i) => {
      if (!i.isChatInputCommand()) return;
      await i.deferReply({ flags: MessageFlags.Ephemeral });
      const file = i.options.getAttachment('file', true);
      const bytes = Buffer.from(await (await fetch(file.url)).arrayBuffer());
      await i.editReply(`${file.name}: ${bytes.length} bytes`);
    };
    const file = fake.upload('adapter.zip', Buffer.alloc(1234, 7), 'application/zip');
    const interaction = fake.command(alice, 'probe upload', { file });
    const reply = await interaction.reply();
    expect(reply.content).toBe('adapter.zip: 1234 bytes');
    expect(interaction.ephemeral).toBe(true);
  });

  it('refuses what Discord’s client would not send', () => {
    expect(() => fake.command(alice, 'probe run', {})).toThrow(/required option what is missing/);
    expect(() => fake.command(alice, 'probe run', { what: 'x', n: 9 })).toThrow(/above 5/);
    expect(() => fake.command(alice, 'nope')).toThrow(/no command named nope/);
  });
});

describe('fake Discord: threads and messages', () => {
  it('creates a thread, delivers member messages in it, and lets the bot post and edit there', async () => {
    let threadId = '';
    handler = async (i) => {
      if (!i.isChatInputCommand() || !i.channel || i.channel.type !== ChannelType.GuildText) return;
      await i.deferReply();
      const thread = await i.channel.threads.create({ name: 'chat with alice', type: ChannelType.PrivateThread });
      await thread.members.add(i.user.id);
      threadId = thread.id;
      await i.editReply(`<#${thread.id}>`);
    };
    const seen: Message[] = [];
    onMessage = (m) => {
      if (m.author.bot) return;
      seen.push(m);
      if (!m.channel.isSendable()) return;
      const channel = m.channel;
      void (async () => {
        const sent = await channel.send(`echo: ${m.content}`);
        await sent.edit(`echo (edited): ${m.content}`);
      })();
    };
    await fake.command(alice, 'probe run', { what: 'thread' }).reply((m) => m.content.startsWith('<#'));
    expect(fake.channel(threadId).members.has(alice.user.id)).toBe(true);
    expect(client.channels.cache.get(threadId)?.isThread()).toBe(true);
    fake.say(alice, threadId, 'hello in thread');
    const echo = await fake.waitFor(() => fake.messagesIn(threadId).find((m) => m.content === 'echo (edited): hello in thread'), 'the echo');
    expect(echo.revisions.map((r) => r.content)).toEqual(['echo: hello in thread', 'echo (edited): hello in thread']);
    expect(seen.map((m) => m.content)).toEqual(['hello in thread']);
  });

  it('strips message content for a client without the MessageContent intent, unless the bot is mentioned', async () => {
    await client.destroy();
    const contents: string[] = [];
    const plain = await login([GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages]);
    try {
      onMessage = (m) => {
        if (!m.author.bot) contents.push(m.content);
      };
      fake.say(alice, fake.channelId, 'secret');
      fake.say(alice, fake.channelId, 'hey bot', { mentionBot: true });
      await fake.waitFor(() => contents.length === 2, 'two messages');
      expect(contents).toEqual(['', 'hey bot']);
    } finally {
      await plain.destroy();
      client = await login([GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent]);
    }
  });

  it('refuses posts to an archived thread (50083)', async () => {
    const channel = client.channels.cache.get(fake.channelId);
    if (!channel || channel.type !== ChannelType.GuildText) throw new Error('no text channel');
    const thread = await channel.threads.create({ name: 'old' });
    await thread.setArchived(true);
    const err = await thread.send('hello?').catch((e: unknown) => e);
    expect(apiError(err)).toEqual({ status: 400, code: 50083 });
  });
});

describe('fake Discord: rate limits', () => {
  it('a per-route 429 storm: discord.js waits retry_after each time and gets through, with no violation', async () => {
    fake.injectRateLimit({ method: 'PATCH', path: /^\/webhooks\/.*\/messages\//, count: 3, retryAfter: 0.2 });
    const limited: number[] = [];
    client.rest.on('rateLimited', (info) => limited.push(info.retryAfter));
    handler = async (i) => {
      if (!i.isChatInputCommand()) return;
      await i.deferReply();
      await i.editReply('through the storm');
    };
    const interaction = fake.command(alice, 'probe run', { what: 'storm' });
    await interaction.reply((m) => m.content === 'through the storm');
    const patches = interaction.requests().filter((r) => r.method === 'PATCH');
    expect(patches.map((r) => r.status)).toEqual([429, 429, 429, 200]);
    for (let k = 1; k < patches.length; k++) expect(patches[k]!.at - patches[k - 1]!.at).toBeGreaterThanOrEqual(200);
    expect(limited).toHaveLength(3);
    expect(fake.violations).toEqual([]);
    client.rest.removeAllListeners('rateLimited');
  });

  it('records a client that comes back before retry_after ended, and holds a global 429 across routes', async () => {
    fake.injectRateLimit({ method: 'GET', path: /^\/users\/@me$/, count: 1, retryAfter: 2, global: true });
    const raw = (path: string) => fetch(`${fake.apiUrl}/v10${path}`, { headers: { authorization: `Bot ${fake.token}` } });
    const first = await raw('/users/@me');
    expect(first.status).toBe(429);
    expect(first.headers.get('x-ratelimit-global')).toBe('true');
    expect(await first.json()).toMatchObject({ retry_after: 2, global: true });
    expect((await raw(`/channels/${fake.channelId}`)).status).toBe(429);
    expect(fake.violations.map((v) => v.kind)).toEqual(['ignored-retry-after']);
  });

  it('a bucket limit lets through only `limit` requests per window', async () => {
    fake.injectRateLimit({ method: 'GET', path: /^\/channels\/\d+$/, limit: 2, windowMs: 60_000, retryAfter: 60 });
    const statuses = [];
    for (let k = 0; k < 3; k++) statuses.push((await fetch(`${fake.apiUrl}/v10/channels/${fake.channelId}`, { headers: { authorization: `Bot ${fake.token}` } })).status);
    expect(statuses).toEqual([200, 200, 429]);
  });
});

describe('fake Discord: waiting', () => {
  it('a reported bot error fails a pending wait at once, with the error', async () => {
    const waiting = fake.waitFor(() => false, 'something that never happens', { timeoutMs: 30_000 });
    fake.fail(new Error('handler exploded'));
    try {
      await expect(waiting).rejects.toThrow(/something that never happens.*handler exploded/s);
      await expect(fake.waitFor(() => true, 'anything')).rejects.toThrow(/handler exploded/);
    } finally {
      fake.failures.length = 0;
    }
  });

  it('a timeout names what it waited for and shows the last requests', async () => {
    await expect(fake.waitFor(() => false, 'a reply that never comes', { timeoutMs: 50 })).rejects.toThrow(/timed out after 50 ms waiting for a reply that never comes\nlast requests:/);
  });
});
