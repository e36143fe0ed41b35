// Dispatches every interaction and message to its handler and makes sure each one gets an answer. Commands are
// keyed by "command subcommand" (the names of commands.ts), buttons and modals by the first two parts of their
// custom id ("vote:cast:<battle>:<choice>" → "vote:cast"), which are permanent: a click on a message posted
// before a restart still lands here. A handler that throws gets its failure shown to the member (ephemeral), so
// nobody ever sees Discord's "The application did not respond"; bugs are also logged and raised as `bug`.
import {
  MessageFlags,
  type AutocompleteInteraction,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type Interaction,
  type Message,
  type ModalSubmitInteraction,
  type RepliableInteraction,
} from 'discord.js';
import type { Logger } from '../util/log.js';
import { describeFailure } from './failures.js';
import { truncate } from './format.js';

export type Choice = { name: string; value: string };
export type SlashHandler = (interaction: ChatInputCommandInteraction<'cached'>) => Promise<void>;
export type ButtonHandler = (interaction: ButtonInteraction<'cached'>, args: string[]) => Promise<void>;
export type ModalHandler = (interaction: ModalSubmitInteraction<'cached'>, args: string[]) => Promise<void>;
/** Must answer from memory: Discord gives autocomplete 3 s and no way to defer. */
export type AutocompleteProvider = (typed: string, interaction: AutocompleteInteraction<'cached'>) => Choice[];
export type MessageHandler = (message: Message<true>) => Promise<void>;

export interface Feature {
  commands?: Record<string, SlashHandler>;
  buttons?: Record<string, ButtonHandler>;
  modals?: Record<string, ModalHandler>;
  /** by option name, for every command that has an autocomplete option of that name */
  autocomplete?: Record<string, AutocompleteProvider>;
  messages?: MessageHandler;
}

export interface RouterEvents {
  /** a failure that is not the user's doing */
  bug(err: unknown, context: string): void;
}

export class Router {
  readonly #commands = new Map<string, SlashHandler>();
  readonly #buttons = new Map<string, ButtonHandler>();
  readonly #modals = new Map<string, ModalHandler>();
  readonly #autocomplete = new Map<string, AutocompleteProvider>();
  readonly #messages: MessageHandler[] = [];
  readonly #log: Logger;
  readonly #onBug: RouterEvents['bug'];

  constructor(features: Feature[], log: Logger, onBug: RouterEvents['bug']) {
    this.#log = log;
    this.#onBug = onBug;
    for (const f of features) {
      const add = <T>(into: Map<string, T>, from: Record<string, T> | undefined, kind: string) => {
        for (const [key, value] of Object.entries(from ?? {})) {
          if (into.has(key)) throw new Error(`two handlers for ${kind} ${key}`);
          into.set(key, value);
        }
      };
      add(this.#commands, f.commands, 'command');
      add(this.#buttons, f.buttons, 'button');
      add(this.#modals, f.modals, 'modal');
      add(this.#autocomplete, f.autocomplete, 'autocomplete option');
      if (f.messages) this.#messages.push(f.messages);
    }
  }

  /** Every command path that has a handler ("adapter register", "ask", ...). */
  get commandPaths(): string[] {
    return [...this.#commands.keys()];
  }

  async interaction(interaction: Interaction): Promise<void> {
    if (interaction.isAutocomplete()) return this.#runAutocomplete(interaction);
    if (!interaction.isRepliable()) return;
    const context = describeInteraction(interaction);
    try {
      if (!interaction.inCachedGuild()) {
        await interaction.reply({ content: 'Use loraforge’s commands in a server channel where the bot is a member.', flags: MessageFlags.Ephemeral });
        return;
      }
      if (interaction.isChatInputCommand()) {
        const sub = interaction.options.getSubcommand(false);
        const handler = this.#commands.get(sub ? `${interaction.commandName} ${sub}` : interaction.commandName);
        if (!handler) throw new Error(`no handler for /${context}: redeploy the commands with \`loraforge register-commands\``);
        await handler(interaction);
      } else if (interaction.isButton()) {
        const [feature = '', action = '', ...args] = interaction.customId.split(':');
        const handler = this.#buttons.get(`${feature}:${action}`);
        if (!handler) throw new Error(`no handler for button ${interaction.customId}`);
        await handler(interaction, args);
      } else if (interaction.isModalSubmit()) {
        const [feature = '', action = '', ...args] = interaction.customId.split(':');
        const handler = this.#modals.get(`${feature}:${action}`);
        if (!handler) throw new Error(`no handler for form ${interaction.customId}`);
        await handler(interaction, args);
      }
    } catch (err) {
      await this.#fail(interaction, err, context);
    }
  }

  async message(message: Message): Promise<void> {
    if (message.author.bot || !message.inGuild()) return;
    for (const handler of this.#messages) {
      try {
        await handler(message);
      } catch (err) {
        const failure = describeFailure(err);
        this.#report(err, failure.bug, `message in ${message.channelId}`, failure.errorId);
        await message.reply({ content: failure.text, allowedMentions: { repliedUser: false } }).catch((e: unknown) => this.#log.warn({ err: e }, 'could not report a failure'));
      }
    }
  }

  #runAutocomplete(interaction: AutocompleteInteraction): Promise<void> {
    const focused = interaction.options.getFocused(true);
    const provider = interaction.inCachedGuild() ? this.#autocomplete.get(focused.name) : undefined;
    let choices: Choice[] = [];
    try {
      choices = provider ? provider(String(focused.value), interaction as AutocompleteInteraction<'cached'>) : [];
    } catch (err) {
      this.#report(err, true, `autocomplete ${focused.name}`);
    }
    const safe = choices.slice(0, 25).map((c) => ({ name: truncate(c.name, 100), value: c.value.slice(0, 100) }));
    // an autocomplete answered late is simply dropped by Discord; nothing else to tell anyone
    return interaction.respond(safe).catch((err: unknown) => this.#log.debug({ err }, 'autocomplete answer not delivered'));
  }

  async #fail(interaction: RepliableInteraction, err: unknown, context: string): Promise<void> {
    const failure = describeFailure(err);
    this.#report(err, failure.bug, context, failure.errorId);
    try {
      await replyPrivately(interaction, failure.text);
    } catch (replyErr) {
      this.#log.warn({ err: replyErr, context }, 'could not tell the member about a failure');
    }
  }

  #report(err: unknown, bug: boolean, context: string, errorId?: string): void {
    if (bug) {
      this.#log.error({ err, context, errorId }, 'bot handler failed');
      this.#onBug(err, context);
    } else {
      this.#log.info({ reason: err instanceof Error ? err.message : String(err), context }, 'request refused');
    }
  }
}

/**
 * Answers privately whatever state the interaction is in: a fresh one gets an ephemeral reply; one deferred
 * ephemerally gets its reply edited; one deferred or answered in public keeps its public message as it is
 * (deleted when it is only "thinking…") and gets an ephemeral follow-up.
 */
export async function replyPrivately(interaction: RepliableInteraction, content: string): Promise<void> {
  if (!interaction.deferred && !interaction.replied) {
    await interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
    return;
  }
  if (interaction.ephemeral) {
    await interaction.editReply({ content, embeds: [], components: [], files: [], allowedMentions: { parse: [] } });
    return;
  }
  if (interaction.deferred && !interaction.replied) await interaction.deleteReply();
  await interaction.followUp({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
}

function describeInteraction(interaction: RepliableInteraction): string {
  if (interaction.isChatInputCommand()) {
    const sub = interaction.options.getSubcommand(false);
    return sub ? `${interaction.commandName} ${sub}` : interaction.commandName;
  }
  if (interaction.isButton() || interaction.isModalSubmit()) return interaction.customId;
  return `interaction type ${interaction.type}`;
}
