// Battles and the leaderboard as Discord messages.
import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, EmbedBuilder, type APIEmbed } from 'discord.js';
import type { LoraforgeClient } from '../../client/index.js';
import { formatNumber, truncate } from '../format.js';

export type BattleView = Awaited<ReturnType<LoraforgeClient['arena']['battle']>>;
export type VoteResult = Awaited<ReturnType<LoraforgeClient['arena']['vote']>>;
export type Leaderboard = Awaited<ReturnType<LoraforgeClient['arena']['leaderboard']>>;
export type VoteChoice = Parameters<LoraforgeClient['arena']['vote']>[2];

export const VOTE_LABELS: Record<VoteChoice, string> = { A: 'A is better', B: 'B is better', tie: 'Tie', bad: 'Both bad' };
const SIDE_COLORS = { A: 0x3ba55d, B: 0x5865f2 } as const;
/** the two answer embeds share Discord's 6000-character budget per message with the prompt */
const ANSWER_BUDGET = 2600;

export function isVoteChoice(value: string | undefined): value is VoteChoice {
  return value === 'A' || value === 'B' || value === 'tie' || value === 'bad';
}

function answerEmbed(battle: BattleView, side: 'A' | 'B'): APIEmbed {
  const answer = battle.answers[side];
  const name = battle.models?.[side];
  const text = answer.text.trim().length > 0 ? answer.text : '*(no text)*';
  return new EmbedBuilder()
    .setColor(SIDE_COLORS[side])
    .setTitle(name ? `Answer ${side}: ${truncate(name, 200)}` : `Answer ${side}`)
    .setDescription(truncate(text, ANSWER_BUDGET))
    .toJSON();
}

function unix(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

/** The battle while voting is open: both answers, anonymous, and the four vote buttons. */
export function battleMessage(battle: BattleView) {
  const long = battle.answers.A.text.length > ANSWER_BUDGET || battle.answers.B.text.length > ANSWER_BUDGET;
  const header = new EmbedBuilder()
    .setTitle('⚔️ Which answer is better?')
    .setDescription(truncate(battle.prompt, 600))
    .setFooter({ text: `battle ${battle.id}${battle.category ? ` · ${battle.category}` : ''} · same settings and seed for both` })
    .toJSON();
  const row = new ActionRowBuilder<ButtonBuilder>().addComponents(
    (['A', 'B', 'tie', 'bad'] as const).map((choice) =>
      new ButtonBuilder()
        .setCustomId(`vote:cast:${battle.id}:${choice}`)
        .setLabel(VOTE_LABELS[choice])
        .setStyle(choice === 'A' ? ButtonStyle.Success : choice === 'B' ? ButtonStyle.Primary : choice === 'tie' ? ButtonStyle.Secondary : ButtonStyle.Danger),
    ),
  );
  const files = long ? [new AttachmentBuilder(Buffer.from(`# Prompt\n\n${battle.prompt}\n\n# Answer A\n\n${battle.answers.A.text}\n\n# Answer B\n\n${battle.answers.B.text}\n`), { name: `battle-${battle.id}.md` })] : [];
  return {
    content: `Vote below; the names are revealed when voting closes <t:${unix(battle.closesAt)}:R>.${long ? ' The full answers are in the attached file.' : ''}`,
    embeds: [header, answerEmbed(battle, 'A'), answerEmbed(battle, 'B')],
    components: [row],
    files,
  };
}

/** The battle once closed: the names on the answers, the tally, no buttons. */
export function revealedBattleMessage(battle: BattleView) {
  const tally = battle.tally;
  const votes = tally ? `A ${tally.A} · B ${tally.B} · tie ${tally.tie} · both bad ${tally.bad}` : `${battle.votes} votes`;
  const note = battle.counted ? '' : ' (not counted: an answer could reveal its adapter)';
  const header = new EmbedBuilder()
    .setTitle('⚔️ Battle closed')
    .setDescription(truncate(battle.prompt, 600))
    .addFields({ name: 'Votes', value: `${votes}${note}` })
    .setFooter({ text: `battle ${battle.id}${battle.category ? ` · ${battle.category}` : ''}` })
    .toJSON();
  return { content: 'Voting is closed. `/leaderboard` shows the ratings.', embeds: [header, answerEmbed(battle, 'A'), answerEmbed(battle, 'B')], components: [] };
}

/** What a voter is told, privately, after a vote. */
export function voteReceipt(result: VoteResult): string {
  const models = result.battle.models;
  const changed = result.previous && result.previous !== result.choice ? ` (changed from *${VOTE_LABELS[result.previous]}*)` : '';
  const lines = [`Your vote: **${VOTE_LABELS[result.choice]}**${changed}.`];
  if (models) lines.push(`A was **${models.A}**, B was **${models.B}**. Keep it to yourself until voting closes <t:${unix(result.battle.closesAt)}:R>; you can change your vote until then.`);
  if (!result.counted) lines.push('This battle does not count towards the leaderboard: an answer could reveal which adapter wrote it.');
  return lines.join('\n');
}

/** The leaderboard as a monospace table in an embed, with the chart attached. */
export function leaderboardMessage(board: Leaderboard, png: Buffer) {
  const rows = board.entries.map((e) => [
    String(e.rank),
    truncate(e.name, 22),
    formatNumber(e.rating, 0),
    `${formatNumber(e.lower, 0)}–${formatNumber(e.upper, 0)}`,
    String(e.votes),
    `${formatNumber(e.winRate * 100, 0)}%`,
    formatNumber(e.elo, 0),
  ]);
  const head = ['#', 'adapter', 'rating', '95% interval', 'votes', 'win', 'elo'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const fmt = (r: string[]) => r.map((cell, c) => (c === 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  const table = rows.length > 0 ? `\`\`\`\n${[fmt(head), ...rows.map(fmt)].join('\n')}\n\`\`\`` : '*No adapter has enough votes yet: vote on `/compare` battles.*';
  const hidden = board.hidden.length > 0 ? `\nNot enough votes yet (fewer than ${board.method.minVotes}): ${truncate(board.hidden.map((h) => `${h.name} (${h.votes})`).join(', '), 500)}` : '';
  const embed = new EmbedBuilder()
    .setTitle(`🏆 Leaderboard${board.category ? `: ${board.category}` : ''}`)
    .setDescription(truncate(`${table}${hidden}`, 4000))
    .setImage('attachment://leaderboard.png')
    .setFooter({
      text: truncate(
        `${board.votes} counted votes · Bradley–Terry, ${board.method.bootstrapRounds} bootstrap rounds · rank = 1 + adapters whose interval lies wholly above${board.categories.length > 0 ? ` · categories: ${board.categories.join(', ')}` : ''}`,
        2048,
      ),
    })
    .toJSON();
  return { embeds: [embed], files: [new AttachmentBuilder(png, { name: 'leaderboard.png' })] };
}
