// /merge <method> (one subcommand per method), /merge status, /merge cancel.
import {
  ActionRowBuilder,
  MessageFlags,
  ModalBuilder,
  TextInputBuilder,
  TextInputStyle,
  type ChatInputCommandInteraction,
  type ModalSubmitInteraction,
} from 'discord.js';
import { InvalidInputError } from '../../errors.js';
import type { MergeMethod, MergeProgress, MergeRequest, MergeStatus } from '../api-types.js';
import type { BattleReveals } from '../battle-reveals.js';
import { MERGE_METHODS } from '../commands.js';
import { requireOperator, type BotContext } from '../context.js';
import { checkDensity, parseLayerWeights, parseNameList, parseWeights, resolveMergeInputs } from '../options.js';
import { truncate } from '../format.js';
import { discordActor } from '../render/adapters.js';
import { mergeView } from '../render/merge.js';
import { FINAL_STATES, type JobKind } from '../job-tracker.js';
import type { Feature, SlashHandler } from '../router.js';
import { answerPrompt } from './ask.js';
import { followJob } from './follow.js';
import { startBattle } from './arena.js';

async function startMerge(ctx: BotContext, interaction: ChatInputCommandInteraction<'cached'>, method: MergeMethod): Promise<void> {
  requireOperator(interaction, ctx.settings, 'merge adapters');
  // everything the bot can check by itself is checked before it defers, so mistakes get an instant answer
  const weights = parseWeights(interaction.options.getString('weights', true));
  const namedText = interaction.options.getString('adapters');
  const named = namedText === null ? null : parseNameList(namedText);
  const density = interaction.options.getNumber('density');
  if (density !== null) checkDensity(density);
  const layerWeightsText = interaction.options.getString('layer_weights');
  const layerWeights = layerWeightsText === null ? null : parseLayerWeights(layerWeightsText);
  const channel = interaction.channel;
  if (!channel?.isSendable()) throw new InvalidInputError('I cannot post in this channel: run /merge in a channel where the bot may send messages.');

  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const adapters = await ctx.api.adapters.list();
  const inputs = resolveMergeInputs(adapters, named, weights);
  const request: MergeRequest = {
    method,
    adapters: inputs,
    weights,
    ...(density !== null ? { density } : {}),
    ...optional('rank', interaction.options.getInteger('rank')),
    ...optional('seed', interaction.options.getInteger('seed')),
    ...optional('name', interaction.options.getString('name')),
    ...optional('space', interaction.options.getString('space') as MergeRequest['space'] | null),
    ...(layerWeights ? { layerWeights: { weights: layerWeights } } : {}),
    registeredBy: discordActor(interaction.user),
  };
  const status = await ctx.api.merges.create(request);
  await followJob(ctx, interaction, 'merge', status, channel, `/merge status job:${status.id}`);
  // likely to hurt: said right under the queued message, with why and what to try (the merge still runs)
  if (status.warnings?.length) await interaction.followUp({ content: truncate(status.warnings.map((w) => `⚠️ ${w}`).join('\n'), 2000) });
}

/** The prompt form a result button opens; its id carries the button's. */
function promptModal(customId: string, title: string): ModalBuilder {
  return new ModalBuilder()
    .setCustomId(customId)
    .setTitle(title)
    .addComponents(
      new ActionRowBuilder<TextInputBuilder>().addComponents(
        new TextInputBuilder().setCustomId('prompt').setLabel('Prompt').setStyle(TextInputStyle.Paragraph).setRequired(true).setMaxLength(2000),
      ),
    );
}

/** The finished merge behind a result button (deferring first: the API may be slow). */
async function finishedMerge(ctx: BotContext, interaction: ModalSubmitInteraction, jobId: string | undefined): Promise<MergeStatus & { result: NonNullable<MergeStatus['result']> }> {
  await interaction.deferReply();
  const status = await ctx.api.merges.get(jobId ?? '');
  if (status.state !== 'completed' || !status.result) throw new InvalidInputError(`Merge job \`${status.id}\` has not finished (${status.state}).`);
  return status as MergeStatus & { result: NonNullable<MergeStatus['result']> };
}

function optional<K extends string, V>(key: K, value: V | null): { [P in K]?: V } {
  return (value === null ? {} : { [key]: value }) as { [P in K]?: V };
}

const measuring = (status: MergeStatus) => status.autoEval !== undefined && !FINAL_STATES.has(status.autoEval.state);

/**
 * Merge jobs as the job tracker follows them: a completed merge's card waits for the retention of its auto-eval
 * (eval/auto-eval.ts); a finished merge refreshes the autocomplete cache.
 */
export function mergeJobs(ctx: BotContext): JobKind<MergeStatus, MergeProgress> {
  return {
    name: 'merge',
    get: (id) => ctx.api.merges.get(id),
    wait: async (id, onEvent, signal) => {
      const done = await ctx.api.merges.wait(id, onEvent, signal);
      if (!measuring(done)) return done;
      onEvent({ event: 'status', data: done });
      ctx.adapters.refresh();
      await ctx.api.evals.wait(done.autoEval!.id, undefined, signal);
      return ctx.api.merges.get(id);
    },
    withProgress: (status, progress) => ({ ...status, progress }),
    view: (status, startedBy) => mergeView(status, startedBy),
    onFinished: () => void ctx.adapters.refresh(),
    isFinal: (status) => FINAL_STATES.has(status.state) && !measuring(status),
  };
}

export function mergeFeature(ctx: BotContext, reveals: BattleReveals): Feature {
  const commands: Record<string, SlashHandler> = {};
  for (const method of MERGE_METHODS) commands[`merge ${method}`] = (i) => startMerge(ctx, i, method);

  commands['merge status'] = async (i) => {
    await i.deferReply({ flags: MessageFlags.Ephemeral });
    const job = i.options.getString('job');
    if (job !== null) {
      await i.editReply(mergeView(await ctx.api.merges.get(job)));
      return;
    }
    const ids = ctx.jobs.recent('merge').slice(0, 10);
    if (ids.length === 0) {
      await i.editReply('No merges were started from Discord yet. Start one with `/merge linear weights:1,1,1,1` (one weight per adapter).');
      return;
    }
    const statuses = await Promise.all(ids.map((id) => ctx.api.merges.get(id).catch(() => null)));
    const lines = statuses.map((s, k) => (s ? `\`${s.id}\` · ${s.method} → \`${s.name}\` · **${s.state}**${s.progress && s.state === 'running' ? ` (${s.progress.done}/${s.progress.total})` : ''}` : `\`${ids[k]}\` · no longer known to the server`));
    await i.editReply(`Recent merges started from Discord:\n${lines.join('\n')}\n\`/merge status job:<id>\` shows one in detail.`);
  };

  commands['merge cancel'] = async (i) => {
    requireOperator(i, ctx.settings, 'cancel merges');
    await i.deferReply({ flags: MessageFlags.Ephemeral });
    const status = await ctx.api.merges.cancel(i.options.getString('job', true));
    const text =
      status.state === 'cancelled'
        ? `Cancelled job \`${status.id}\`.`
        : status.state === 'completed' || status.state === 'failed'
          ? `Job \`${status.id}\` had already ended (${status.state}).`
          : `Cancel requested for job \`${status.id}\`; it stops at the next module.`;
    await i.editReply(text);
  };

  return {
    commands,
    buttons: {
      'merge:ask': (i, [jobId]) => i.showModal(promptModal(`merge:ask:${jobId}`, 'Ask the merged adapter')),
      'merge:cmp': (i, [jobId, index]) => i.showModal(promptModal(`merge:cmp:${jobId}:${index}`, 'Battle the merge against an input')),
    },
    modals: {
      'merge:ask': async (i, [jobId]) => {
        const status = await finishedMerge(ctx, i, jobId);
        await answerPrompt(ctx, i, i.fields.getTextInputValue('prompt'), { model: status.result.name });
      },
      'merge:cmp': async (i, [jobId, index]) => {
        const status = await finishedMerge(ctx, i, jobId);
        const input = status.adapters[Number(index)];
        if (!input) throw new InvalidInputError('This button names no input of the merge.');
        await startBattle(ctx, reveals, i, { prompt: i.fields.getTextInputValue('prompt'), a: status.result.name, b: input.name });
      },
    },
    autocomplete: {
      job: (typed) =>
        ctx.jobs
          .recent('merge')
          .filter((id) => id.includes(typed.trim()))
          .slice(0, 25)
          .map((id) => ({ name: id, value: id })),
    },
  };
}
