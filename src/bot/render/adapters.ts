// Adapters as Discord messages: the registry as a paged list, one adapter in detail.
import { ActionRowBuilder, ButtonBuilder, ButtonStyle, EmbedBuilder, type APIEmbed } from 'discord.js';
import type { AdapterDetail, AdapterRecord, RegisterResult } from '../api-types.js';
import { formatBytes, formatCount, formatNumber, truncate } from '../format.js';

export const ADAPTER_COLOR = 0x5865f2;
export const PAGE_SIZE = 10;

/**
 * How the bot names a member to the API: as `registeredBy` (shown as a mention) and as the arena's `voter`, the
 * same string, so the arena can keep owners from voting on their own adapters. Ids, because names change.
 */
export function discordActor(user: { id: string }): string {
  return `discord:${user.id}`;
}

/** A `registeredBy` value for display: a mention for Discord members, the text for CLI and HTTP users. */
export function showActor(actor: string): string {
  const m = /^discord:(\d+)/.exec(actor);
  return m ? `<@${m[1]}>` : `\`${truncate(actor, 60)}\``;
}

function targets(a: AdapterRecord): string {
  const short = a.targetModules.map((t) => t.replace(/_proj$/, ''));
  return truncate(short.join(','), 40);
}

function day(iso: string): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? `<t:${Math.floor(t / 1000)}:d>` : iso;
}

function origin(a: AdapterRecord): string {
  if (!a.inputs?.length) return '';
  const method = typeof a.recipe?.method === 'string' ? a.recipe.method : 'merge';
  return ` · ${method} of ${truncate(a.inputs.map((i) => i.name).join(' + '), 60)}`;
}

/** One line of the list: rank, targets, size, base model, who added it. */
function line(a: AdapterRecord, index: number): string {
  const base = a.baseModel ? truncate(a.baseModel, 40) : 'base unknown';
  return `**${index}.** \`${a.name}\` · r${a.rank} · ${targets(a)} · ${formatBytes(a.bytes)} · ${base}${origin(a)} · ${showActor(a.registeredBy)}, ${day(a.createdAt)}`;
}

export function adapterListMessage(adapters: readonly AdapterRecord[], page: number): { embeds: APIEmbed[]; components: ActionRowBuilder<ButtonBuilder>[] } {
  const pages = Math.max(1, Math.ceil(adapters.length / PAGE_SIZE));
  const current = Math.min(Math.max(1, page), pages);
  const sorted = [...adapters].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
  const slice = sorted.slice((current - 1) * PAGE_SIZE, current * PAGE_SIZE);
  const embed = new EmbedBuilder()
    .setColor(ADAPTER_COLOR)
    .setTitle(`Adapters (${adapters.length})`)
    .setDescription(
      slice.length > 0
        ? slice.map((a, i) => line(a, (current - 1) * PAGE_SIZE + i + 1)).join('\n')
        : 'No adapters are registered yet. Add one with `/adapter register`.',
    )
    .setFooter({ text: `Page ${current} of ${pages} · oldest first · /adapter show <name> for details` });
  const components =
    pages > 1
      ? [
          new ActionRowBuilder<ButtonBuilder>().addComponents(
            new ButtonBuilder().setCustomId(`adapters:page:${current - 1}`).setLabel('◀ Previous').setStyle(ButtonStyle.Secondary).setDisabled(current <= 1),
            new ButtonBuilder().setCustomId(`adapters:page:${current + 1}`).setLabel('Next ▶').setStyle(ButtonStyle.Secondary).setDisabled(current >= pages),
          ),
        ]
      : [];
  return { embeds: [embed.toJSON()], components };
}

/** The overall diagnostics of a merge, one line each, for embeds. */
export function summaryLines(summary: Record<string, unknown> | undefined): string[] {
  if (!summary) return [];
  const num = (key: string) => (typeof summary[key] === 'number' ? (summary[key] as number) : null);
  const lines: string[] = [];
  const relError = num('relError');
  if (relError !== null) lines.push(`error vs exact weighted sum: **${formatNumber(relError * 100, 2)}%**`);
  const energy = num('retainedEnergy');
  if (energy !== null) lines.push(`energy kept by the rank cut: **${formatNumber(energy * 100, 2)}%**`);
  const kept = num('keptFraction');
  if (kept !== null) lines.push(`entries kept: **${formatNumber(kept * 100, 1)}%**`);
  const conflict = num('signConflict');
  if (conflict !== null) lines.push(`sign conflicts: **${formatNumber(conflict * 100, 1)}%**`);
  const worst = summary.worstModules;
  if (Array.isArray(worst) && worst.length > 0) {
    const w = worst[0] as { module?: string; relError?: number };
    if (w.module && typeof w.relError === 'number') lines.push(`worst module: \`${truncate(w.module, 60)}\` (${formatNumber(w.relError * 100, 2)}%)`);
  }
  return lines;
}

/** Pairwise cosines of the inputs' updates: how much the adapters overlap (0 = independent). */
export function interferenceLines(summary: Record<string, unknown> | undefined, names: string[]): string[] {
  const matrix = summary?.interference;
  if (!Array.isArray(matrix) || names.length < 2) return [];
  const pairs: string[] = [];
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const v = (matrix[i] as (number | null)[] | undefined)?.[j];
      if (typeof v === 'number') pairs.push(`${names[i]}↔${names[j]} ${formatNumber(v, 2)}`);
    }
  }
  return pairs.length > 0 ? [`overlap (cosine): ${truncate(pairs.join(', '), 300)}`] : [];
}

export function adapterDetailEmbed(a: AdapterDetail): APIEmbed {
  const embed = new EmbedBuilder()
    .setColor(ADAPTER_COLOR)
    .setTitle(a.name)
    .setDescription(a.description ? truncate(a.description, 1000) : null)
    .addFields(
      { name: 'Base model', value: a.baseModel ?? 'unknown', inline: true },
      { name: 'Rank / alpha', value: `${a.rank} / ${formatNumber(a.alpha)}`, inline: true },
      { name: 'Size', value: `${formatBytes(a.bytes)} · ${formatCount(a.parameters)} params · ${a.dtype}`, inline: true },
      { name: 'Targets', value: truncate(`${a.targetModules.join(', ')} (${a.modules} modules)`, 1024), inline: false },
      { name: 'Added by', value: `${showActor(a.registeredBy)}, ${day(a.createdAt)}`, inline: true },
      { name: 'Content hash', value: `\`${a.sha256.slice(0, 16)}\``, inline: true },
    );
  if (a.category) embed.addFields({ name: 'Category', value: a.category, inline: true });
  if (a.inputs?.length) {
    const method = typeof a.recipe?.method === 'string' ? a.recipe.method : 'merge';
    const inputs = a.inputs.map((i) => `\`${i.name}\` × ${formatNumber(i.weight)}`).join(', ');
    const options = Object.entries(a.recipe ?? {})
      .filter(([k, v]) => k !== 'method' && k !== 'weights' && v !== undefined && v !== null && typeof v !== 'object')
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' · ');
    embed.addFields({ name: `Recipe: ${method}`, value: truncate(`${inputs}${options ? `\n${options}` : ''}`, 1024) });
    const diag = [...summaryLines(a.summary), ...interferenceLines(a.summary, a.inputs.map((i) => i.name))];
    if (diag.length > 0) embed.addFields({ name: 'Diagnostics', value: truncate(diag.join('\n'), 1024) });
  }
  return embed.toJSON();
}

export function registeredEmbed(result: RegisterResult): APIEmbed {
  const verb = { created: 'Registered', replaced: 'Replaced', unchanged: 'Already registered (same content)' }[result.status];
  const embed = adapterDetailEmbed({ ...result.adapter, moduleShapes: {} } as AdapterDetail);
  return { ...embed, title: `${verb}: ${result.adapter.name}` };
}
