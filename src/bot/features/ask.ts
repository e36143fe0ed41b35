// /ask: one answer, streamed by editing the reply.
import { AttachmentBuilder, type ChatInputCommandInteraction, type ModalSubmitInteraction } from 'discord.js';
import { UnavailableError } from '../../errors.js';
import type { BotContext } from '../context.js';
import { describeFailure } from '../failures.js';
import { truncate } from '../format.js';
import { streamAnswer } from '../generate.js';
import type { Feature } from '../router.js';
import { StreamedText, type MessageSink } from '../streamed-text.js';

/** Parts of one interaction's answer: the reply itself, then follow-ups (edited through the webhook). */
function interactionSink(interaction: ChatInputCommandInteraction | ModalSubmitInteraction): MessageSink {
  const ids = ['@original'];
  return {
    edit: async (index, content) => {
      await interaction.editReply({ message: ids[index]!, content });
    },
    create: async (content) => {
      ids.push((await interaction.followUp({ content })).id);
    },
    attach: async (note, file) => {
      await interaction.followUp({ content: note, files: [new AttachmentBuilder(file.data, { name: file.name })] });
    },
  };
}

/** The question as a quote above the answer, so the reply reads on its own. */
export function quote(prompt: string): string {
  return truncate(prompt, 300)
    .split('\n')
    .slice(0, 4)
    .map((line) => `> ${line}`)
    .join('\n');
}

/** An interaction token lives 15 minutes; an answer must be finished well before. */
const ANSWER_DEADLINE_MS = 12 * 60_000;

/** Streams `model`'s answer to `prompt` into the interaction's reply (deferred here unless it already is). */
export async function answerPrompt(
  ctx: BotContext,
  interaction: ChatInputCommandInteraction | ModalSubmitInteraction,
  prompt: string,
  options: { model: string | null; maxTokens?: number; temperature?: number | null },
): Promise<void> {
  if (!interaction.deferred) await interaction.deferReply();
  let model = options.model;
  if (model === null) {
    if (ctx.adapters.baseModel === null) await ctx.adapters.refresh();
    model = ctx.adapters.baseModel ?? (await ctx.api.inference.models()).find((m) => m.parent === null)?.id ?? null;
    if (model === null) throw new UnavailableError('the API serves no model: an operator must start it with a model (see the README)');
  }
  const temperature = options.temperature ?? null;
  const header = `${quote(prompt)}\n-# 🧠 ${model}${temperature !== null ? ` · temperature ${temperature}` : ''}\n`;
  const out = new StreamedText(interactionSink(interaction), { minIntervalMs: ctx.settings.editIntervalMs });
  const result = await streamAnswer(
    ctx.api,
    { model, messages: [{ role: 'user', content: prompt }], max_tokens: options.maxTokens ?? 256, ...(temperature !== null ? { temperature } : {}) },
    out,
    header,
    { signal: AbortSignal.timeout(ANSWER_DEADLINE_MS) },
  );
  if (result.interrupted !== null && describeFailure(result.interrupted).bug) throw result.interrupted;
}

export function askFeature(ctx: BotContext): Feature {
  return {
    commands: {
      ask: (i) =>
        answerPrompt(ctx, i, i.options.getString('prompt', true), {
          model: i.options.getString('adapter'),
          maxTokens: i.options.getInteger('max_tokens') ?? undefined,
          temperature: i.options.getNumber('temperature'),
        }),
    },
    autocomplete: { adapter: (typed) => ctx.adapters.models(typed) },
  };
}
