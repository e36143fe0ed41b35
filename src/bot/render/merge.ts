// A merge job as one Discord message, from queued through the progress bar to the result card.
import { ActionRowBuilder, ButtonBuilder, ButtonStyle, EmbedBuilder, type APIActionRowComponent, type APIButtonComponent } from 'discord.js';
import type { MergeStatus } from '../api-types.js';
import { formatDuration, formatNumber, progressBar, truncate } from '../format.js';
import { interferenceLines, showActor, summaryLines } from './adapters.js';
import { ret } from './evals.js';
import type { MessageView } from './view.js';

const COLORS = { queued: 0x99aab5, running: 0xfee75c, completed: 0x57f287, failed: 0xed4245, cancelled: 0x4f545c } as const;
const ICONS = { queued: '⏳', running: '⚙️', completed: '✅', failed: '❌', cancelled: '🚫' } as const;


/**
 * Buttons under a finished merge: ask it, or battle it against one of its inputs. Their ids carry the job id and
 * the input's position, never an adapter name (custom ids are visible to clients).
 */
function resultButtons(status: MergeStatus): APIActionRowComponent<APIButtonComponent>[] {
  const buttons = [
    new ButtonBuilder().setCustomId(`merge:ask:${status.id}`).setLabel('Ask this merge').setStyle(ButtonStyle.Primary),
    ...status.adapters.slice(0, 9).map((a, k) =>
      new ButtonBuilder().setCustomId(`merge:cmp:${status.id}:${k}`).setLabel(truncate(`Compare with ${a.name}`, 80)).setStyle(ButtonStyle.Secondary),
    ),
  ];
  const rows: APIActionRowComponent<APIButtonComponent>[] = [];
  for (let k = 0; k < buttons.length; k += 5) rows.push(new ActionRowBuilder<ButtonBuilder>().addComponents(buttons.slice(k, k + 5)).toJSON());
  return rows;
}

function inputsField(status: MergeStatus): string {
  return truncate(status.adapters.map((a) => `\`${a.name}\` × ${formatNumber(a.weight)}`).join('\n'), 1024);
}

function optionsField(status: MergeStatus): string | null {
  const shown = Object.entries(status.options)
    .filter(([k, v]) => k !== 'method' && k !== 'weights' && v !== undefined && v !== null && typeof v !== 'object')
    .map(([k, v]) => `${k}=${String(v)}`);
  return shown.length > 0 ? truncate(shown.join(' · '), 1024) : null;
}

/** The auto-eval's retention (worst, mean, per category), or where it stands. */
function retentionField(autoEval: NonNullable<MergeStatus['autoEval']>): string {
  switch (autoEval.state) {
    case 'queued':
    case 'running':
      return `Measuring on the test part of ${autoEval.categories.join(', ')}… (eval \`${autoEval.id}\`)`;
    case 'completed': {
      const per = autoEval.categories.map((c) => `${c} ${ret(autoEval.retention?.[c])}`).join(' · ');
      return `worst **${ret(autoEval.worstRetention)}** · mean ${ret(autoEval.meanRetention)}\n${per}`;
    }
    default:
      return `The eval ${autoEval.state === 'cancelled' ? 'was cancelled' : `failed: ${autoEval.error ?? 'no reason given'}`} (eval \`${autoEval.id}\`)`;
  }
}

function elapsedSeconds(status: MergeStatus): number | null {
  const start = status.startedAt ? Date.parse(status.startedAt) : NaN;
  const end = status.finishedAt ? Date.parse(status.finishedAt) : NaN;
  return Number.isFinite(start) && Number.isFinite(end) ? (end - start) / 1000 : null;
}

function progressText(status: MergeStatus): string {
  const p = status.progress;
  if (!p || p.total <= 0) return `${ICONS.running} Starting…`;
  const eta = p.etaSeconds !== null && p.done < p.total ? ` · about ${formatDuration(p.etaSeconds)} left` : '';
  return `${progressBar(p.done / p.total)}\n${p.phase}: ${p.done} / ${p.total}${eta}`;
}

/** The job's message; `startedBy` is the registry-style actor ("discord:<id>"). */
export function mergeView(status: MergeStatus, startedBy?: string): MessageView {
  const state = status.state;
  const embed = new EmbedBuilder()
    .setColor(COLORS[state])
    .setTitle(truncate(`${ICONS[state]} ${status.method} merge → ${status.name}`, 256))
    .addFields({ name: 'Inputs × weights', value: inputsField(status), inline: true });
  const options = optionsField(status);
  if (options) embed.addFields({ name: 'Options', value: options, inline: true });
  switch (state) {
    case 'queued':
      embed.setDescription(`${ICONS.queued} Queued${status.deduplicated ? ' (the same recipe was already asked for)' : ''}…`);
      break;
    case 'running':
      embed.setDescription(progressText(status));
      break;
    case 'completed': {
      const result = status.result;
      const lines = [...summaryLines(result?.summary), ...interferenceLines(result?.summary, status.adapters.map((a) => a.name))];
      const seconds = elapsedSeconds(status);
      const unchanged = result?.status === 'unchanged' ? ' (this exact merge already existed)' : '';
      embed.setDescription(`Registered as \`${result?.name ?? status.name}\`${unchanged}. Try it with \`/ask adapter:${result?.name ?? status.name}\`.`);
      if (lines.length > 0) embed.addFields({ name: 'What the merge kept', value: truncate(lines.join('\n'), 1024) });
      if (status.autoEval) embed.addFields({ name: 'Skill retention (test part)', value: truncate(retentionField(status.autoEval), 1024) });
      if (seconds !== null) embed.addFields({ name: 'Time', value: formatDuration(seconds), inline: true });
      break;
    }
    case 'failed':
      embed.setDescription(`The merge failed: ${truncate(status.error?.message ?? 'no reason given', 3500)}`);
      break;
    case 'cancelled':
      embed.setDescription('Cancelled.');
      break;
  }
  embed.setFooter({ text: `job ${status.id}${status.attempts > 1 ? ` · attempt ${status.attempts}` : ''}` });
  return {
    content: startedBy ? `Merge started by ${showActor(startedBy)}` : '',
    embeds: [embed.toJSON()],
    components: state === 'completed' ? resultButtons(status) : [],
  };
}
