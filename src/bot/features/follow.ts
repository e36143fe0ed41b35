// Starting to follow a job from the interaction that queued it: the job's message goes in the channel, the member
// gets a private note with its link (or, when the bot may not post there, how else to follow the job).
import type { ChatInputCommandInteraction, Message, SendableChannels } from 'discord.js';
import type { BotContext } from '../context.js';
import { describeFailure } from '../failures.js';
import type { JobStatusLike } from '../job-tracker.js';
import { discordActor } from '../render/adapters.js';

function messageLink(guildId: string, channelId: string, messageId: string): string {
  return `https://discord.com/channels/${guildId}/${channelId}/${messageId}`;
}

/** `interaction` has been deferred (ephemerally); `statusCommand` is how to look the job up by hand. */
export async function followJob(
  ctx: BotContext,
  interaction: ChatInputCommandInteraction<'cached'>,
  kind: string,
  status: JobStatusLike & { deduplicated?: boolean },
  channel: SendableChannels,
  statusCommand: string,
): Promise<void> {
  const existing = await ctx.jobs.messageOf(kind, status.id);
  if (existing) {
    await interaction.editReply(`The same ${kind} is already running as \`${status.id}\`: ${messageLink(interaction.guildId, existing.channelId, existing.messageId)}`);
    return;
  }
  const note = status.deduplicated ? `The same ${kind} was already queued or done` : 'Queued';
  let message: Message;
  try {
    message = await ctx.jobs.follow(kind, status, channel, discordActor(interaction.user));
  } catch (err) {
    // the job is queued all the same: say so, and how to follow it
    const failure = describeFailure(err);
    await interaction.editReply(`${note} as \`${status.id}\`, but I cannot post its progress here. ${failure.text} \`${statusCommand}\` follows it.`);
    if (failure.bug) throw err;
    return;
  }
  await interaction.editReply(`${note} as \`${status.id}\`; progress: ${message.url}`);
}
