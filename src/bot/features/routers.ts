// /router create | list | show | remove: routers are models that answer each request with the member nearest to the
// prompt (docs/ROUTERS.md). Once created, a router is in the autocomplete of /ask, /chat and /compare like any model.
import { whenUnsure, type RouterSummary } from '../../client/index.js';
import { InvalidInputError } from '../../errors.js';
import { discordActor, showActor } from '../render/adapters.js';
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
          margin: i.options.getNumber('margin') ?? undefined,
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

      'router show': async (i) => {
        await i.deferReply();
        const r = await ctx.api.routers.get(i.options.getString('router', true));
        const rule = r.rule === 'text' ? 'the prompt’s character n-grams (`text`)' : `the base model’s \`${r.rule}\` feature`;
        await i.editReply(
          truncate(
            `${describeRouter(r)}\n` +
              `-# routes by ${rule} to the nearest member's calibration centroid · base model \`${r.baseModel}\` · created by ${showActor(r.createdBy)} on ${r.createdAt.slice(0, 10)}\n` +
              `Ask it: \`/ask adapter:${r.name}\` · measure it: \`/eval models:${r.name}\``,
            2000,
          ),
        );
      },

      'router remove': async (i) => {
        requireOperator(i, ctx.settings, 'remove routers');
        await i.deferReply();
        const removed = await ctx.api.routers.remove(i.options.getString('router', true));
        await ctx.adapters.refresh();
        await i.editReply(`🗑️ Removed the router **${removed.name}**; its members (${removed.members.map((m) => `\`${m.model}\``).join(', ')}) stay registered.`);
      },
    },

    autocomplete: {
      members: (typed) => ctx.adapters.nameList(typed),
      router: (typed) => ctx.adapters.routers(typed),
      fallback: (typed) => ctx.adapters.models(typed).filter((c) => !ctx.adapters.routers(c.value).some((r) => r.value === c.value)),
    },
  };
}
