// /compare (an anonymous A/B battle), its vote buttons, and /leaderboard.
import { MessageFlags, type ChatInputCommandInteraction, type ModalSubmitInteraction } from 'discord.js';
import type { LoraforgeClient } from '../../client/index.js';
import { InvalidInputError } from '../../errors.js';
import type { BattleReveals } from '../battle-reveals.js';
import type { BotContext } from '../context.js';
import { discordActor } from '../render/adapters.js';
import { battleMessage, isVoteChoice, leaderboardMessage, voteReceipt } from '../render/arena.js';
import type { Feature } from '../router.js';

type BattleRequest = Parameters<LoraforgeClient['arena']['createBattle']>[0];

/** Both answers are generated before the API answers; a big model may take a while (the token lives 15 min). */
const BATTLE_TIMEOUT_MS = 10 * 60_000;

/** Generates a battle and posts it as the interaction's reply (deferred here unless it already is); names are revealed at closing. */
export async function startBattle(
  ctx: BotContext,
  reveals: BattleReveals,
  interaction: ChatInputCommandInteraction | ModalSubmitInteraction,
  request: BattleRequest,
): Promise<void> {
  if (!interaction.deferred) await interaction.deferReply();
  const battle = await ctx.api.arena.createBattle(request, { timeoutMs: BATTLE_TIMEOUT_MS });
  const message = await interaction.editReply(battleMessage(battle));
  await reveals.schedule({ battleId: battle.id, channelId: message.channelId, messageId: message.id }, battle.closesAt);
}

export function arenaFeature(ctx: BotContext, reveals: BattleReveals): Feature {
  return {
    commands: {
      compare: (i) =>
        startBattle(ctx, reveals, i, {
          prompt: i.options.getString('prompt', true),
          a: i.options.getString('a') ?? undefined,
          b: i.options.getString('b') ?? undefined,
          category: i.options.getString('category') ?? undefined,
        }),

      leaderboard: async (i) => {
        await i.deferReply();
        const query = { category: i.options.getString('category') };
        const [board, png] = await Promise.all([ctx.api.arena.leaderboard(query), ctx.api.arena.leaderboardPng(query)]);
        await i.editReply(leaderboardMessage(board, png));
      },
    },

    buttons: {
      // vote:cast:<battle>:<choice>; a permanent handler, so votes work on battles posted before a restart
      'vote:cast': async (i, [battleId, choice]) => {
        if (!battleId || !isVoteChoice(choice)) throw new InvalidInputError('This vote button is malformed; vote on a battle posted by /compare.');
        await i.deferReply({ flags: MessageFlags.Ephemeral });
        const result = await ctx.api.arena.vote(battleId, discordActor(i.user), choice);
        await i.editReply(voteReceipt(result));
      },
    },

    autocomplete: {
      a: (typed) => ctx.adapters.contestants(typed),
      b: (typed) => ctx.adapters.contestants(typed),
    },
  };
}
