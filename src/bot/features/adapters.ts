// /adapter register | list | show | remove, and the list's page buttons.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Attachment, ChatInputCommandInteraction } from 'discord.js';
import { InvalidInputError, TooLargeError } from '../../errors.js';
import type { RegisterResult } from '../api-types.js';
import { requireOperator, type BotContext } from '../context.js';
import { formatBytes } from '../format.js';
import { adapterDetailEmbed, adapterListMessage, discordActor, registeredEmbed } from '../render/adapters.js';
import type { Feature } from '../router.js';

const ARCHIVE_RE = /\.(zip|tar\.gz|tgz|tar)$/i;

/** Refuses, before anything is fetched, an upload that cannot be an adapter archive the API would take. */
function checkUpload(file: Attachment, maxBytes: number): void {
  if (!ARCHIVE_RE.test(file.name)) {
    throw new InvalidInputError(
      `\`${file.name}\` is not an archive: upload the adapter directory (adapter_config.json + adapter_model.safetensors) as a .zip or .tar.gz`,
    );
  }
  if (file.size > maxBytes) throw new TooLargeError(`\`${file.name}\` is ${formatBytes(file.size)}; the bot accepts uploads up to ${formatBytes(maxBytes)}`);
}

/** Fetches a member's upload from Discord's CDN into a temp dir, for the client to stream to the API. */
async function downloadAttachment(file: Attachment): Promise<{ file: string; cleanup: () => Promise<void> }> {
  let response: Response;
  try {
    response = await fetch(file.url, { signal: AbortSignal.timeout(120_000) });
  } catch (err) {
    throw new InvalidInputError(`could not download \`${file.name}\` from Discord (${(err as Error).message}): attach it again`);
  }
  if (!response.ok) throw new InvalidInputError(`Discord answered ${response.status} for \`${file.name}\`: attach it again`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'loraforge-upload-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  const target = path.join(dir, path.basename(file.name));
  try {
    await writeFile(target, Buffer.from(await response.arrayBuffer()));
  } catch (err) {
    // a body cut off mid-download (or a full disk) must not leave the temp dir behind
    await cleanup();
    throw err;
  }
  return { file: target, cleanup };
}

async function register(ctx: BotContext, interaction: ChatInputCommandInteraction<'cached'>, maxUploadBytes: number): Promise<void> {
  requireOperator(interaction, ctx.settings, 'register adapters');
  const name = interaction.options.getString('name', true);
  const serverPath = interaction.options.getString('path');
  const file = interaction.options.getAttachment('file');
  if ((serverPath === null) === (file === null)) {
    throw new InvalidInputError('Give either `path:` (an adapter directory on the server, under its import directory) or `file:` (the directory as a .zip or .tar.gz), not both.');
  }
  if (file) checkUpload(file, maxUploadBytes);
  await interaction.deferReply();
  const options = {
    name,
    registeredBy: discordActor(interaction.user),
    description: interaction.options.getString('description') ?? undefined,
    category: interaction.options.getString('category') ?? undefined,
    replace: interaction.options.getBoolean('replace') ?? undefined,
  };
  let result: RegisterResult;
  if (file) {
    const upload = await downloadAttachment(file);
    try {
      result = await ctx.api.adapters.upload(upload.file, options);
    } finally {
      await upload.cleanup();
    }
  } else {
    result = await ctx.api.adapters.registerPath(serverPath!, options);
  }
  await ctx.adapters.refresh();
  await interaction.editReply({ embeds: [registeredEmbed(result)] });
}

export function adapterFeature(ctx: BotContext, { maxUploadBytes }: { maxUploadBytes: number }): Feature {
  return {
    commands: {
      'adapter register': (i) => register(ctx, i, maxUploadBytes),

      'adapter list': async (i) => {
        await i.deferReply();
        const adapters = await ctx.api.adapters.list();
        await i.editReply(adapterListMessage(adapters, i.options.getInteger('page') ?? 1));
      },

      'adapter show': async (i) => {
        await i.deferReply();
        const detail = await ctx.api.adapters.get(i.options.getString('name', true));
        await i.editReply({ embeds: [adapterDetailEmbed(detail)] });
      },

      'adapter remove': async (i) => {
        requireOperator(i, ctx.settings, 'remove adapters');
        await i.deferReply();
        const removed = await ctx.api.adapters.remove(i.options.getString('name', true), { force: i.options.getBoolean('force') ?? false });
        await ctx.adapters.refresh();
        await i.editReply(`🗑️ Removed \`${removed.name}\` (${formatBytes(removed.bytes)}). Its files are deleted once no other name refers to them.`);
      },
    },

    buttons: {
      // the list's pages are re-read on every click, so a page is never stale
      'adapters:page': async (i, [page]) => {
        await i.deferUpdate();
        const adapters = await ctx.api.adapters.list();
        await i.editReply(adapterListMessage(adapters, Number(page) || 1));
      },
    },

    autocomplete: {
      name: (typed) => ctx.adapters.names(typed),
      adapters: (typed) => ctx.adapters.nameList(typed),
      category: (typed) => ctx.adapters.categories(typed),
    },
  };
}

