// /router create | list: routers are models that answer each request with the member nearest to the prompt
// (docs/ROUTERS.md). Once created, a router is in the autocomplete of /ask, /chat and /compare like any model.
import { whenUnsure, type RouterSummary } from '../../client/index.js';
import { InvalidInputError } from '../../errors.js';
import { discordActor } from '../render/adapters.js';
import { requireOperator, type BotContext } from '../context.js';
import { truncate } from '../format.js';
import type { Feature } from '../router.js';

/** One router in a line: its members (with their categories), what answers when it is unsure, and calibration. */
function describeRouter(r: RouterSummary): string {
  const members = r.members.map((m) => `\`${m.model}\`${m.category ? ` (${m.category})` : ''}`).join(', ');
  const calibration = r.calibration.source === 'suites' ? `${r.calibration.counts.join('/')} suite prompts` : `${r.calibration.counts.join('/')} given prompts`;
  return `🧭 **${r.name}** routes to ${members} · when unsure (lead < ${r.margin}): ${whenUnsure(r, (m) => `\`${m}\``)} · calibrated on ${calibration}`;
}

export function routerFeature(ctx: BotContext): Feature {
  return {
    commands: {
      'router create': async (i) => {
        requireOperator(i, ctx.settings, 'create routers');
        const members = i.options
          .getString('members', true)
          .split(',')
          .map((m) => m.trim())
          .filter(Boolean);
        if (members.length < 2) throw new InvalidInputError('A router needs at least two members: list adapters or merges separated by commas.');
        await i.deferReply();
        const { status, router } = await ctx.api.routers.create({
          name: i.options.getString('name', true),
          members,
          fallback: i.options.getString('fallback') ?? undefined,
          blend: i.options.getNumber('blend'),
          createdBy: discordActor(i.user),
        });
        await ctx.adapters.refresh();
        await i.editReply(
          truncate(
            `${status === 'created' ? 'Created' : 'Replaced'}: ${describeRouter(router)}\n` +
              `Ask it like any model: \`/ask adapter:${router.name}\`, \`/chat start adapter:${router.name}\`, \`/compare a:${router.name}\`.`,
            2000,
          ),
        );
      },

      'router list': async (i) => {
        await i.deferReply();
        const routers = await ctx.api.routers.list();
        await i.editReply(truncate(routers.length === 0 ? 'No routers yet: `/router create`.' : routers.map(describeRouter).join('\n'), 2000));
      },
    },

    autocomplete: {
      members: (typed) => ctx.adapters.nameList(typed),
      fallback: (typed) => ctx.adapters.models(typed).filter((c) => !ctx.adapters.routers(c.value).some((r) => r.value === c.value)),
    },
  };
}
