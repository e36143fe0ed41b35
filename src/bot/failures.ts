// What a member is told when something fails. Failures a user can act on (a bad option, an unknown adapter, a
// server that is down or busy, a missing Discord permission) get a sentence that says what to do; anything else
// is a bug in the bot, reported with an id that the operators find in the bot's log.
import { randomBytes } from 'node:crypto';
import { DiscordAPIError, RESTJSONErrorCodes } from 'discord.js';
import { ForbiddenError, isLoraforgeError, RateLimitedError, UnauthorizedError, UnavailableError } from '../errors.js';

export interface Failure {
  text: string;
  /** not the user's doing: logged as an error and raised to whoever watches the bot */
  bug: boolean;
  errorId?: string;
}

const DISCORD_PERMISSION_CODES = new Set<number>([RESTJSONErrorCodes.MissingAccess, RESTJSONErrorCodes.MissingPermissions]);

export function describeFailure(err: unknown): Failure {
  if (err instanceof UnavailableError) {
    return { text: `🔌 The loraforge server is down: ${err.message}. Try again once it is back.`, bug: false };
  }
  if (err instanceof RateLimitedError) {
    return { text: `⏳ The server is busy: ${err.message}. Try again in ${Math.ceil(err.retryAfterSeconds)} s.`, bug: false };
  }
  if (err instanceof UnauthorizedError) {
    return {
      text: `🔒 The API refused the bot's token (${err.message}). An operator must give the bot the API's token (LORAFORGE_API_TOKEN).`,
      bug: false,
    };
  }
  if (err instanceof ForbiddenError) return { text: `🔒 ${err.message}`, bug: false };
  if (isLoraforgeError(err)) return { text: `⚠️ ${err.message}`, bug: false };
  if (err instanceof DiscordAPIError && DISCORD_PERMISSION_CODES.has(Number(err.code))) {
    return {
      text: '🔒 Discord did not let me do that here. Give the bot View Channel, Send Messages, Create Public Threads, Send Messages in Threads and Attach Files in this channel.',
      bug: false,
    };
  }
  if (err instanceof Error && err.name === 'ApiError') {
    // the API answered 500: its log has the details
    return { text: `💥 The server failed: ${err.message}. Operators: see the API's log.`, bug: false };
  }
  const errorId = randomBytes(4).toString('hex');
  return { text: `💥 Something went wrong inside the bot (error id \`${errorId}\`). Operators can find it in the bot's log.`, bug: true, errorId };
}
