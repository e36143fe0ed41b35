// Deploys the command definitions to Discord with one bulk overwrite (PUT replaces the whole set, so a deploy is
// idempotent). To a guild for development, where changes show at once; globally otherwise, where Discord may
// take up to an hour to show them. Run it when the definitions change, not on every start.
import { DiscordAPIError, REST, Routes } from 'discord.js';
import { InvalidInputError, UnauthorizedError } from '../errors.js';
import { commandDefinitions } from './commands.js';

export interface DeployOptions {
  token: string;
  applicationId: string;
  /** deploy to this guild only (instant); global when absent */
  guildId?: string;
  /** Discord's REST base URL (tests point it at the fake) */
  discordApi?: string;
}

export interface DeployResult {
  scope: 'guild' | 'global';
  names: string[];
}

export async function deployCommands(options: DeployOptions): Promise<DeployResult> {
  const rest = new REST(options.discordApi ? { api: options.discordApi } : {}).setToken(options.token);
  const body = commandDefinitions();
  const route = options.guildId
    ? Routes.applicationGuildCommands(options.applicationId, options.guildId)
    : Routes.applicationCommands(options.applicationId);
  try {
    await rest.put(route, { body });
  } catch (err) {
    if (err instanceof DiscordAPIError && err.status === 401) {
      throw new UnauthorizedError('Discord refused the bot token: copy it again from the Developer Portal (Bot → Reset Token) into DISCORD_TOKEN');
    }
    if (err instanceof DiscordAPIError && (err.status === 403 || err.status === 404)) {
      throw new InvalidInputError(
        options.guildId
          ? `Discord refused commands for guild ${options.guildId} (${err.message}): check DISCORD_GUILD_ID, and invite the bot there with the applications.commands scope`
          : `Discord refused the commands (${err.message}): check DISCORD_APPLICATION_ID (the Application ID on the Developer Portal's General Information page)`,
      );
    }
    throw err;
  }
  return { scope: options.guildId ? 'guild' : 'global', names: body.map((c) => c.name) };
}
