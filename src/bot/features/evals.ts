// /eval (how much of each skill the adapters and merges keep) and /sweep (search merge settings for the best
// recipe), both followed in a channel message to the retention table and heat map; and the button that keeps a
// sweep's best merge under a name.
import {
  ActionRowBuilder,
  MessageFlags,
  ModalBuilder,
  TextInputBuilder,
  TextInputStyle,
  type ChatInputCommandInteraction,
} from 'discord.js';
import type { LoraforgeClient } from '../../client/index.js';
import { InvalidInputError } from '../../errors.js';
import type { MergeMethod } from '../api-types.js';
import { MERGE_METHODS } from '../commands.js';
import { requireOperator, type BotContext } from '../context.js';
import { formatNumber } from '../format.js';
import type { JobKind } from '../job-tracker.js';
import { parseNameList } from '../options.js';
import { evalView, sweepView, type EvalStatus, type JobProgress, type SweepStatus } from '../render/evals.js';
import type { Feature } from '../router.js';
import { followJob } from './follow.js';

type SweepRequest = Parameters<LoraforgeClient['sweeps']['create']>[0];
type Range = { min: number; max: number };

/** The heat map of a finished job; a job that has none (or an API that cannot draw it) shows the table alone. */
async function heatmapOf(fetch: () => Promise<Buffer>, done: boolean): Promise<Buffer | null> {
  return done ? fetch().catch(() => null) : null;
}

export function evalJobs(ctx: BotContext): JobKind<EvalStatus, JobProgress> {
  return {
    name: 'eval',
    get: (id) => ctx.api.evals.get(id),
    wait: (id, onEvent, signal) => ctx.api.evals.wait(id, onEvent, signal),
    withProgress: (status, progress) => ({ ...status, progress }),
    view: async (status, startedBy) => evalView(status, startedBy, await heatmapOf(() => ctx.api.evals.heatmap(status.id), status.state === 'completed')),
  };
}

export function sweepJobs(ctx: BotContext): JobKind<SweepStatus, JobProgress> {
  return {
    name: 'sweep',
    get: (id) => ctx.api.sweeps.get(id),
    wait: (id, onEvent, signal) => ctx.api.sweeps.wait(id, onEvent, signal),
    withProgress: (status, progress) => ({ ...status, progress }),
    view: async (status, startedBy) => sweepView(status, startedBy, await heatmapOf(() => ctx.api.sweeps.heatmap(status.id), status.state === 'completed')),
    // a sweep registers a merge per recipe: autocomplete should know them
    onFinished: () => void ctx.adapters.refresh(),
  };
}

const num = (option: string, text: string): number => {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new InvalidInputError(`${option}: \`${text}\` is not a number`);
  return n;
};

/** `0.1:0.9` is a range to sample (random search); otherwise a list. */
function range(option: string, text: string): Range | null {
  const m = /^\s*([^:]+):([^:]+)\s*$/.exec(text);
  return m ? { min: num(option, m[1]!), max: num(option, m[2]!) } : null;
}

/** `0.3,0.6` or `0.1:0.9`. */
export function parseDensities(text: string): number[] | Range {
  return range('densities', text) ?? text.split(/[\s,;]+/).filter(Boolean).map((v) => num('densities', v));
}

/** Each item one weight for every adapter (`0.25`) or one per adapter (`0.4/0.2/0.2/0.2`); or a range `lo:hi`. */
export function parseSweepWeights(text: string): Array<number | number[]> | Range {
  return (
    range('weights', text) ??
    text
      .split(/[\s,;]+/)
      .filter(Boolean)
      .map((v) => (v.includes('/') ? v.split('/').map((x) => num('weights', x)) : num('weights', v)))
  );
}

export function parseMethods(text: string): MergeMethod[] {
  return parseNameList(text).map((m) => {
    if (!(MERGE_METHODS as readonly string[]).includes(m)) throw new InvalidInputError(`methods: \`${m}\` is not a merge method; use ${MERGE_METHODS.join(', ')}`);
    return m as MergeMethod;
  });
}

function sendableChannel(interaction: ChatInputCommandInteraction<'cached'>, command: string) {
  const channel = interaction.channel;
  if (!channel?.isSendable()) throw new InvalidInputError(`I cannot post in this channel: run ${command} in a channel where the bot may send messages.`);
  return channel;
}

async function startEval(ctx: BotContext, interaction: ChatInputCommandInteraction<'cached'>): Promise<void> {
  const models = interaction.options.getString('models');
  const suites = interaction.options.getString('suites');
  const request = {
    ...(models !== null ? { models: parseNameList(models) } : {}),
    ...(suites !== null ? { suites: parseNameList(suites) } : {}),
    checks: interaction.options.getBoolean('checks') ?? false,
  };
  const channel = sendableChannel(interaction, '/eval');
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const status = await ctx.api.evals.create(request);
  await followJob(ctx, interaction, 'eval', status, channel, `loraforge evals show ${status.id}`);
}

async function startSweep(ctx: BotContext, interaction: ChatInputCommandInteraction<'cached'>): Promise<void> {
  requireOperator(interaction, ctx.settings, 'run sweeps (they merge and register adapters)');
  const text = (name: string) => interaction.options.getString(name);
  const space: NonNullable<SweepRequest['space']> = {};
  if (text('methods') !== null) space.method = parseMethods(text('methods')!);
  if (text('densities') !== null) space.density = parseDensities(text('densities')!);
  if (text('weights') !== null) space.weights = parseSweepWeights(text('weights')!);
  const search = (text('search') as 'grid' | 'random' | 'cmaes' | null) ?? 'grid';
  const budget = interaction.options.getInteger('budget');
  const perLayer = interaction.options.getBoolean('per_layer');
  if (search !== 'cmaes' && (budget !== null || perLayer !== null)) {
    throw new InvalidInputError('budget and per_layer are for tuning the weights: choose search “tune weights (CMA-ES)”');
  }
  const request: SweepRequest = {
    space,
    search,
    ...(text('adapters') !== null ? { adapters: parseNameList(text('adapters')!) } : {}),
    ...(text('suites') !== null ? { suites: parseNameList(text('suites')!) } : {}),
    ...(interaction.options.getInteger('samples') !== null ? { samples: interaction.options.getInteger('samples')! } : {}),
    ...(budget !== null ? { budget } : {}),
    ...(perLayer !== null ? { perLayer } : {}),
  };
  const channel = sendableChannel(interaction, '/sweep');
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const status = await ctx.api.sweeps.create(request);
  await followJob(ctx, interaction, 'sweep', status, channel, `loraforge sweeps show ${status.id}`);
}

export function evalFeature(ctx: BotContext): Feature {
  return {
    commands: {
      eval: (i) => startEval(ctx, i),
      sweep: (i) => startSweep(ctx, i),
    },
    buttons: {
      'sweep:keep': async (i, [sweepId]) => {
        requireOperator(i, ctx.settings, 'keep a sweep’s merge');
        await i.showModal(
          new ModalBuilder()
            .setCustomId(`sweep:keep:${sweepId}`)
            .setTitle('Keep the best merge of the sweep')
            .addComponents(
              new ActionRowBuilder<TextInputBuilder>().addComponents(
                new TextInputBuilder().setCustomId('name').setLabel('Register it as (a slug, e.g. all-skills)').setStyle(TextInputStyle.Short).setRequired(true).setMaxLength(64),
              ),
            ),
        );
      },
    },
    modals: {
      'sweep:keep': async (i, [sweepId]) => {
        requireOperator(i, ctx.settings, 'keep a sweep’s merge');
        await i.deferReply();
        const kept = await ctx.api.sweeps.register(sweepId ?? '', { name: i.fields.getTextInputValue('name').trim() });
        await ctx.adapters.refresh();
        const worst = kept.point.worstRetention;
        await i.editReply(
          `Kept **${kept.point.label}** as \`${kept.adapter.name}\`${worst !== null && worst !== undefined ? ` (worst retention ${formatNumber(worst, 2)})` : ''}. Try it with \`/ask adapter:${kept.adapter.name}\`.`,
        );
      },
    },
    autocomplete: {
      models: (typed) => ctx.adapters.nameList(typed),
      suites: (typed) => ctx.adapters.suites(typed),
    },
  };
}
