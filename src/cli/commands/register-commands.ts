// `loraforge register-commands`: deploys the bot's slash commands to Discord (one bulk overwrite) and prints the
// invite link.
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';

export function registerCommandsCommand(program: Command): void {
  program
    .command('register-commands')
    .description('deploy the Discord slash commands: to one guild (instant, for development) or globally (up to an hour)')
    .option('--guild <id>', 'deploy to this guild only (default: DISCORD_GUILD_ID)')
    .option('--global', 'deploy globally, even when DISCORD_GUILD_ID is set')
    .action(async (opts: { guild?: string; global?: boolean }) => {
      const { loadConfig } = await import('../../config/index.js');
      const config = loadConfig();
      const token = config.bot.token;
      if (!token) throw new InvalidInputError('set DISCORD_TOKEN to the bot token (Developer Portal → your application → Bot → Reset Token)');
      if (opts.global && opts.guild) throw new InvalidInputError('give --guild or --global, not both');
      const guildId = opts.global ? undefined : (opts.guild ?? config.bot.guildId);
      const [{ REST, Routes }, { deployCommands }, { inviteUrl }] = await Promise.all([import('discord.js'), import('../../bot/deploy.js'), import('../../bot/invite.js')]);
      // the application id is optional: Discord tells it to the token's owner
      const applicationId =
        config.bot.applicationId ?? ((await new REST().setToken(token).get(Routes.currentApplication()).catch(() => null)) as { id?: string } | null)?.id;
      if (!applicationId) throw new InvalidInputError('set DISCORD_APPLICATION_ID (the Application ID on the Developer Portal’s General Information page)');
      const result = await deployCommands({ token, applicationId, guildId });
      const where =
        result.scope === 'guild' ? `to guild ${guildId}; they show up at once` : 'globally; Discord may take up to an hour to show them everywhere';
      process.stdout.write(`deployed ${result.names.length} commands (/${result.names.join(', /')}) ${where}\n`);
      process.stdout.write(`invite the bot (scopes bot + applications.commands, the permissions it uses): ${inviteUrl(applicationId)}\n`);
    });
}
