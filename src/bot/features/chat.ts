// /chat start | use | end, and the thread messages that are the turns of a chat. The session (model and history)
// lives in Redis, so a restarted bot continues every conversation; /chat use swaps the adapter mid-conversation
// (the server serves every adapter from one loaded model, so the switch costs nothing).
import { AttachmentBuilder, ChannelType, ThreadAutoArchiveDuration, type ChatInputCommandInteraction, type Message, type SendableChannels } from 'discord.js';
import { ForbiddenError, InvalidInputError, NotFoundError, UnavailableError } from '../../errors.js';
import { contextTurns, type ChatSession, type ChatTurn } from '../chat-store.js';
import { canOperate } from '../permissions.js';
import type { BotContext } from '../context.js';
import { describeFailure } from '../failures.js';
import { truncate } from '../format.js';
import { streamAnswer, type GenerationResult } from '../generate.js';
import { unknownAdapterMessage } from '../options.js';
import type { Feature } from '../router.js';
import { StreamedText, type MessageSink } from '../streamed-text.js';

/** How much history goes to the model with each turn. */
const CONTEXT_CHARS = 8000;
const CONTEXT_TURNS = 24;
const ANSWER_TOKENS = 512;

/** Checks that the server can answer with `name` (the base model or a registered adapter); returns it. */
async function checkModel(ctx: BotContext, name: string): Promise<string> {
  const models = await ctx.api.inference.models();
  if (models.some((m) => m.id === name)) return name;
  throw new NotFoundError(unknownAdapterMessage(name, models.map((m) => m.id)));
}

async function defaultModel(ctx: BotContext): Promise<string> {
  const base = (await ctx.api.inference.models()).find((m) => m.parent === null)?.id;
  if (!base) throw new UnavailableError('the API serves no model: an operator must start it with a model (see the README)');
  return base;
}

/** A thread's answer: a first message posted at once, edited as tokens arrive, continued in new messages. */
function threadSink(channel: SendableChannels, first: Message): MessageSink {
  const messages = [first];
  return {
    edit: async (index, content) => {
      messages[index] = await messages[index]!.edit({ content });
    },
    create: async (content) => {
      messages.push(await channel.send({ content }));
    },
    attach: async (note, file) => {
      await channel.send({ content: note, files: [new AttachmentBuilder(file.data, { name: file.name })] });
    },
  };
}

async function sessionHere(ctx: BotContext, interaction: ChatInputCommandInteraction<'cached'>): Promise<ChatSession> {
  const session = interaction.channel?.isThread() ? await ctx.chats.get(interaction.channelId) : null;
  if (!session || session.ended) throw new InvalidInputError('This is not an open chat thread: start one with `/chat start` in a channel.');
  return session;
}

export class ChatFeature {
  readonly #ctx: BotContext;
  /** one turn at a time per thread, in the order the messages came */
  readonly #queues = new Map<string, Promise<void>>();

  constructor(ctx: BotContext) {
    this.#ctx = ctx;
  }

  feature(): Feature {
    return {
      commands: {
        'chat start': (i) => this.#start(i),
        'chat use': (i) => this.#use(i),
        'chat end': (i) => this.#end(i),
      },
      messages: (message) => this.#onMessage(message),
    };
  }

  async #start(interaction: ChatInputCommandInteraction<'cached'>): Promise<void> {
    const channel = interaction.channel;
    if (!channel || channel.type !== ChannelType.GuildText) {
      throw new InvalidInputError('Start a chat in a text channel (not in a thread): the bot opens a thread there. Inside a chat thread, `/chat use` switches the adapter.');
    }
    await interaction.deferReply();
    const requested = interaction.options.getString('adapter');
    const model = requested === null ? await defaultModel(this.#ctx) : await checkModel(this.#ctx, requested);
    const thread = await channel.threads.create({
      name: truncate(`💬 ${interaction.member.displayName} · ${model}`, 100),
      autoArchiveDuration: ThreadAutoArchiveDuration.OneDay,
      type: ChannelType.PublicThread,
      reason: `/chat start by ${interaction.user.username}`,
    });
    await thread.members.add(interaction.user.id);
    await this.#ctx.chats.save({ threadId: thread.id, ownerId: interaction.user.id, model, turns: [], createdAt: new Date().toISOString(), ended: false });
    await thread.send(
      `Chatting with **${model}**. Every message here is a turn. \`/chat use adapter:<name>\` switches the adapter (the conversation stays), \`/chat end\` closes the chat.`,
    );
    await interaction.editReply(`Chat with **${model}** started in ${thread.url}`);
  }

  async #use(interaction: ChatInputCommandInteraction<'cached'>): Promise<void> {
    const session = await sessionHere(this.#ctx, interaction);
    await interaction.deferReply();
    const model = await checkModel(this.#ctx, interaction.options.getString('adapter', true));
    // in the thread's queue: an answer streaming now finishes with the adapter it started with
    await this.#enqueue(session.threadId, async () => {
      const current = (await this.#ctx.chats.get(session.threadId)) ?? session;
      await this.#ctx.chats.save({ ...current, model });
      await interaction.editReply(
        model === current.model ? `Already chatting with **${model}**.` : `🔀 Switched from **${current.model}** to **${model}**; the conversation goes on with it.`,
      );
    });
  }

  async #end(interaction: ChatInputCommandInteraction<'cached'>): Promise<void> {
    const session = await sessionHere(this.#ctx, interaction);
    const access = { roles: interaction.member.roles.cache.map((r) => ({ id: r.id, name: r.name })), permissions: (interaction.memberPermissions ?? interaction.member.permissions).bitfield };
    if (interaction.user.id !== session.ownerId && !canOperate(access, this.#ctx.settings.operatorRole)) {
      throw new ForbiddenError(`Only <@${session.ownerId}> (who started it) or an operator can end this chat.`);
    }
    await interaction.deferReply();
    await this.#ctx.chats.save({ ...session, ended: true });
    const turns = session.turns.filter((t) => t.role === 'user').length;
    await interaction.editReply(`Chat ended after ${turns} turn${turns === 1 ? '' : 's'}. The thread stays readable.`);
    if (interaction.channel?.isThread()) await interaction.channel.setArchived(true, 'chat ended').catch((err: unknown) => this.#ctx.log.warn({ err }, 'could not archive a chat thread'));
  }

  #onMessage(message: Message<true>): Promise<void> {
    if (!message.channel.isThread()) return Promise.resolve();
    return this.#enqueue(message.channelId, () => this.#turn(message));
  }

  /** Runs `task` after everything queued before it in this thread; a failure does not block what follows. */
  #enqueue(threadId: string, task: () => Promise<void>): Promise<void> {
    const run = (this.#queues.get(threadId) ?? Promise.resolve()).then(task);
    const settled = run.catch(() => undefined);
    this.#queues.set(threadId, settled);
    void settled.then(() => {
      if (this.#queues.get(threadId) === settled) this.#queues.delete(threadId);
    });
    return run;
  }

  /**
   * Streams the model's answer to the conversation. The history is cut to a character budget first; when the
   * model's context still cannot take it (the API refuses the request as too long), the budget is halved until
   * it fits or only the newest message is left.
   */
  async #answer(model: string, turns: ChatTurn[], out: StreamedText, header: string): Promise<GenerationResult> {
    let budget = CONTEXT_CHARS;
    while (true) {
      const messages = contextTurns(turns, budget, CONTEXT_TURNS);
      try {
        return await streamAnswer(this.#ctx.api, { model, messages, max_tokens: ANSWER_TOKENS }, out, header);
      } catch (err) {
        if (!(err instanceof InvalidInputError) || messages.length <= 1) throw err;
        budget = Math.floor(messages.reduce((n, m) => n + m.content.length, 0) / 2);
      }
    }
  }

  async #turn(message: Message<true>): Promise<void> {
    const ctx = this.#ctx;
    const session = await ctx.chats.get(message.channelId);
    if (!session || session.ended) return;
    const channel = message.channel;
    if (!channel.isSendable()) return;
    if (message.content.trim().length === 0) {
      // an empty message with nothing attached: the bot is missing the privileged Message Content intent
      if (message.attachments.size === 0 && message.embeds.length === 0 && !session.warnedNoContent) {
        await ctx.chats.save({ ...session, warnedNoContent: true });
        await channel.send('I received your message without its text: the bot needs the **Message Content** intent (Developer Portal → Bot → Privileged Gateway Intents).');
      }
      return;
    }
    const turns: ChatTurn[] = [...session.turns, { role: 'user', content: message.content }];
    await ctx.chats.save({ ...session, turns });
    const header = `-# 🧠 ${session.model}\n`;
    const first = await channel.send({ content: `${header}…` });
    const out = new StreamedText(threadSink(channel, first), { minIntervalMs: ctx.settings.editIntervalMs });
    let answer: GenerationResult;
    try {
      answer = await this.#answer(session.model, turns, out, header);
    } catch (err) {
      // no answer: drop the question from the history (the member can ask again) and say why in place
      const latest = (await ctx.chats.get(session.threadId)) ?? session;
      await ctx.chats.save({ ...latest, turns: latest.turns.slice(0, -1) });
      const failure = describeFailure(err);
      await out.finish(`${header}${failure.text}`).catch(() => undefined);
      if (failure.bug) throw err;
      return;
    }
    // the model may have been switched while this answer streamed: keep the newest session state
    const latest = (await ctx.chats.get(session.threadId)) ?? session;
    await ctx.chats.save({ ...latest, turns: [...latest.turns, { role: 'assistant', content: answer.text, model: session.model }] });
    if (answer.interrupted !== null && describeFailure(answer.interrupted).bug) throw answer.interrupted;
  }
}

