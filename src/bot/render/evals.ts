// Evals and sweeps as Discord messages: a progress bar while they run, then the retention table and the heat map.
import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, EmbedBuilder } from 'discord.js';
import { describeTune } from '../../client/describe-tune.js';
import type { LoraforgeClient } from '../../client/index.js';
import { formatDuration, progressBar, truncate } from '../format.js';
import { showActor } from './adapters.js';
import type { MessageView } from './view.js';

export type EvalStatus = Awaited<ReturnType<LoraforgeClient['evals']['get']>>;
export type SweepStatus = Awaited<ReturnType<LoraforgeClient['sweeps']['get']>>;
export type JobProgress = NonNullable<EvalStatus['progress']>;

const COLORS = { queued: 0x99aab5, running: 0xfee75c, completed: 0x57f287, failed: 0xed4245, cancelled: 0x4f545c } as const;
const ICONS = { queued: '⏳', running: '⚙️', completed: '✅', failed: '❌', cancelled: '🚫' } as const;
const HEATMAP = 'heatmap.png';

/** A retention as a short number: 0.87, −0.12, n/a. */
export const ret = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : v.toFixed(2));

/** A monospace table, the first column left-aligned, the others right-aligned. */
export function textTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

/** Keeps whole table rows while they fit a code block of `max` characters. */
function codeBlock(lines: string[], max: number): string {
  const kept: string[] = [];
  let size = 8;
  for (const line of lines) {
    if (size + line.length + 1 > max) break;
    kept.push(line);
    size += line.length + 1;
  }
  const cut = lines.length - kept.length;
  return `\`\`\`\n${kept.join('\n')}\n\`\`\`${cut > 0 ? `\n…and ${cut} more rows (the heat map shows all)` : ''}`;
}

function progressText(p: JobProgress | null): string {
  if (!p || p.total <= 0) return `${ICONS.running} Starting…`;
  const points = p.points ? `point ${Math.min(p.points.done + 1, p.points.total)} of ${p.points.total} · ` : '';
  return `${progressBar(p.points ? (p.points.done + p.done / p.total) / p.points.total : p.done / p.total)}\n${points}${p.phase}: ${p.done} / ${p.total}`;
}

function elapsed(status: { startedAt?: string; finishedAt?: string }): string | null {
  const seconds = (Date.parse(status.finishedAt ?? '') - Date.parse(status.startedAt ?? '')) / 1000;
  return Number.isFinite(seconds) ? formatDuration(seconds) : null;
}

function stateText(status: EvalStatus | SweepStatus): string | null {
  if (status.state === 'queued') return `${ICONS.queued} Queued…`;
  if (status.state === 'running') return progressText(status.progress);
  if (status.state === 'failed') return `The job failed: ${truncate(status.error?.message ?? 'no reason given', 3000)}`;
  if (status.state === 'cancelled') return 'Cancelled.';
  return null;
}

/** The eval's message; once completed, retention per model and category, and the heat map (`heatmap`). */
export function evalView(status: EvalStatus, startedBy: string, heatmap: Buffer | null): MessageView {
  const embed = new EmbedBuilder().setColor(COLORS[status.state]).setTitle(`${ICONS[status.state]} Skill retention: ${status.items} items of ${truncate(status.suites.join(', ') || 'inline items', 150)}`);
  const running = stateText(status);
  const report = status.state === 'completed' ? status.report : undefined;
  if (running !== null) {
    embed.setDescription(running).addFields({ name: 'Models', value: truncate(status.models.join(', ') || 'every registered adapter', 1024) });
  } else if (report) {
    const rows = [['model', ...report.categories, 'worst', 'mean'], ...report.models.map((m) => [truncate(m.model, 24), ...report.categories.map((c) => ret(m.categories[c]?.retention)), ret(m.overall.worstRetention), ret(m.overall.meanRetention)])];
    const table = textTable(rows).split('\n');
    const notes = Object.entries(report.experts)
      .filter(([, e]) => e.note)
      .map(([c, e]) => `${c}: ${e.note}`);
    embed.setDescription(
      truncate(
        `${codeBlock(table, 3400)}\nRetention = (ppl_base − ppl_model) / (ppl_base − ppl_expert), from the item-weighted perplexity: 1 keeps the skill, 0 lost it. ${notes.length > 0 ? `\n${notes.join('\n')}` : ''}`,
        4096,
      ),
    );
    const experts = Object.entries(report.experts).map(([c, e]) => `${c}: ${e.model ?? 'none'}`);
    if (experts.length > 0) embed.addFields({ name: 'Experts', value: truncate(experts.join(' · '), 1024) });
    if (heatmap) embed.setImage(`attachment://${HEATMAP}`);
  }
  const time = elapsed(status);
  if (time && status.state === 'completed') embed.addFields({ name: 'Time', value: time, inline: true });
  embed.setFooter({ text: `eval ${status.id}` });
  return {
    content: `Eval started by ${showActor(startedBy)}`,
    embeds: [embed.toJSON()],
    components: [],
    ...(report && heatmap ? { files: [new AttachmentBuilder(heatmap, { name: HEATMAP })] } : {}),
  };
}

/** A tuned sweep: what its ranking was scored on, and its best point on the test part, which it never saw. */
function tuneText(tune: NonNullable<SweepStatus['tune']>): string {
  const { search, test } = describeTune(tune, ret, (s) => `**${s}**`);
  return `${search}; ${test ?? `the best is scored on the test part (${tune.testItems} items) once the search ends`}.`;
}

/** The sweep's message; once completed, the recipes ranked by their worst category, and a button to keep the best. */
/** ", all the space has (24 asked)" when a random search asked for more points than there are. */
const fewer = (s: SweepStatus) => (s.requestedPoints > s.totalPoints ? `, all the space has (${s.requestedPoints} asked)` : '');

export function sweepView(status: SweepStatus, startedBy: string, heatmap: Buffer | null): MessageView {
  const embed = new EmbedBuilder()
    .setColor(COLORS[status.state])
    .setTitle(truncate(`${ICONS[status.state]} Sweep (${status.search}, ${status.totalPoints} recipes${fewer(status)}) over ${status.adapters.join(', ')}`, 256));
  const running = stateText(status);
  const done = status.ranking.filter((p) => p.state === 'completed');
  if (running !== null) embed.setDescription(running);
  if (done.length > 0) {
    const categories = status.baseline?.categories ?? [];
    const rows = [['recipe', ...categories, 'worst', 'mean'], ...done.map((p) => [truncate(p.label, 28), ...categories.map((c) => ret(p.categories?.[c]?.retention)), ret(p.worstRetention), ret(p.meanRetention)])];
    const heading = status.state === 'completed' ? 'Recipes, best first (by the worst category’s retention, then the mean):' : 'Best so far:';
    embed.setDescription(truncate(`${running ? `${running}\n\n` : ''}${heading}\n${codeBlock(textTable(rows).split('\n'), 3000)}`, 4096));
  }
  if (status.tune) embed.addFields({ name: 'Tuned by CMA-ES', value: truncate(tuneText(status.tune), 1024) });
  const failed = status.ranking.filter((p) => p.state === 'failed');
  if (failed.length > 0) embed.addFields({ name: `${failed.length} recipes failed`, value: truncate(failed.map((p) => `${p.label}: ${p.error?.message ?? 'failed'}`).join('\n'), 1024) });
  if (status.state === 'completed' && status.best) {
    embed.addFields({ name: 'Best', value: truncate(`${status.best.label} → \`${status.best.adapter ?? '?'}\` (worst retention ${ret(status.best.worstRetention)})`, 1024) });
  }
  if (status.state === 'completed' && heatmap) embed.setImage(`attachment://${HEATMAP}`);
  const time = elapsed(status);
  if (time && status.state === 'completed') embed.addFields({ name: 'Time', value: time, inline: true });
  embed.setFooter({ text: `sweep ${status.id}` });
  const keep =
    status.state === 'completed' && status.best
      ? [new ActionRowBuilder<ButtonBuilder>().addComponents(new ButtonBuilder().setCustomId(`sweep:keep:${status.id}`).setLabel('Keep the best as…').setStyle(ButtonStyle.Success)).toJSON()]
      : [];
  return {
    content: `Sweep started by ${showActor(startedBy)}`,
    embeds: [embed.toJSON()],
    components: keep,
    ...(status.state === 'completed' && heatmap ? { files: [new AttachmentBuilder(heatmap, { name: HEATMAP })] } : {}),
  };
}
