// The Discord bot (`loraforge bot`): a discord.js gateway client whose interactions and thread messages go through
// the router to the features, each of which talks to the loraforge API through the typed client only.
import { EventEmitter, once } from 'node:events';
import { Client, Events, GatewayCloseCodes, GatewayIntentBits, Status } from 'discord.js';
import type { Redis } from 'ioredis';
import type { LoraforgeClient } from '../client/index.js';
import { InvalidInputError, UnauthorizedError, UnavailableError } from '../errors.js';
import { startHeartbeat } from '../util/heartbeat.js';
import type { Logger } from '../util/log.js';
import { AdapterCache } from './adapter-cache.js';
import { BattleReveals } from './battle-reveals.js';
import type { BotContext, BotSettings } from './context.js';
import { ChatStore } from './chat-store.js';
import { adapterFeature } from './features/adapters.js';
import { arenaFeature } from './features/arena.js';
import { askFeature } from './features/ask.js';
import { evalFeature, evalJobs, sweepJobs } from './features/evals.js';
import { routerFeature } from './features/routers.js';
import { ChatFeature } from './features/chat.js';
import { mergeFeature, mergeJobs } from './features/merges.js';
import { JobTracker } from './job-tracker.js';
import { inviteUrl } from './invite.js';
import { Router } from './router.js';

export interface BotOptions {
  token: string;
  api: LoraforgeClient;
  /** chat sessions and followed merges live here, so a restart loses neither */
  redis: Redis;
  redisPrefix: string;
  log: Logger;
  settings: BotSettings;
  /** how often the autocomplete cache re-reads the registry */
  adapterRefreshMs?: number;
  /** largest adapter archive accepted from Discord */
  maxUploadBytes?: number;
  /** Discord's REST base URL; tests point it at the fake Discord */
  discordApi?: string;
  /** how long login may take before it is reported as failed */
  readyTimeoutMs?: number;
  /** liveness file rewritten while connected to Discord (for container health checks) */
  heartbeatFile?: string;
}

export interface BotEvents {
  /** a failure that is not the user's doing (a bug): logged, and raised here for whoever watches */
  bug: [err: unknown, context: string];
}

// Guilds: commands, channels, threads and roles; GuildMessages + MessageContent (privileged): thread chat turns.
const INTENTS = [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent];

export class LoraforgeBot extends EventEmitter<BotEvents> {
  readonly client: Client;
  readonly context: BotContext;
  readonly #options: BotOptions;
  readonly #router: Router;
  readonly #reveals: BattleReveals;
  #stopHeartbeat: () => void = () => undefined;

  constructor(options: BotOptions) {
    super();
    this.#options = options;
    const log = options.log.child({ part: 'bot' });
    this.client = new Client({
      intents: INTENTS,
      // model output must never ping @everyone or a role
      allowedMentions: { parse: [], repliedUser: false },
      ...(options.discordApi ? { rest: { api: options.discordApi } } : {}),
    });
    const adapters = new AdapterCache(options.api, log, options.adapterRefreshMs ?? 30_000);
    const jobs = new JobTracker({ redis: options.redis, prefix: options.redisPrefix, log, editIntervalMs: options.settings.editIntervalMs });
    const chats = new ChatStore(options.redis, options.redisPrefix);
    this.#reveals = new BattleReveals(options.api, options.redis, options.redisPrefix, log);
    this.context = { api: options.api, log, adapters, jobs, chats, settings: options.settings };
    jobs.register(mergeJobs(this.context));
    jobs.register(evalJobs(this.context));
    jobs.register(sweepJobs(this.context));
    this.#router = new Router(
      [
        adapterFeature(this.context, { maxUploadBytes: options.maxUploadBytes ?? 25 * 1024 * 1024 }),
        mergeFeature(this.context, this.#reveals),
        askFeature(this.context),
        new ChatFeature(this.context).feature(),
        arenaFeature(this.context, this.#reveals),
        evalFeature(this.context),
        routerFeature(this.context),
      ],
      log,
      (err, context) => this.emit('bug', err, context),
    );
    this.client.on(Events.InteractionCreate, (interaction) => void this.#router.interaction(interaction));
    this.client.on(Events.MessageCreate, (message) => void this.#router.message(message));
    this.client.on(Events.Error, (err) => log.error({ err }, 'discord client error'));
    this.client.rest.on('rateLimited', (info) => log.info({ route: info.route, retryAfter: info.retryAfter, global: info.global }, 'Discord rate limit: waiting'));
    this.client.on(Events.ShardDisconnect, (event) => log.warn({ code: event.code }, 'disconnected from the Discord gateway'));
  }

  /** Logs in and resolves once the bot receives interactions. */
  async start(): Promise<void> {
    const log = this.context.log;
    const timeoutMs = this.#options.readyTimeoutMs ?? 60_000;
    const ready = once(this.client, Events.ClientReady, { signal: AbortSignal.timeout(timeoutMs) });
    const refused = new Promise<never>((_, reject) => {
      this.client.once(Events.ShardDisconnect, (event) => reject(loginError(event.code)));
    });
    refused.catch(() => undefined);
    try {
      await Promise.race([this.client.login(this.#options.token), refused]);
      await Promise.race([ready, refused]);
    } catch (err) {
      await this.client.destroy();
      if ((err as { code?: string }).code === 'TokenInvalid') throw loginError(GatewayCloseCodes.AuthenticationFailed);
      if ((err as Error).name === 'AbortError') throw new UnavailableError(`the bot could not connect to Discord within ${timeoutMs / 1000} s; check the network`);
      throw err;
    }
    this.context.adapters.start();
    await this.context.jobs.resume(this.client);
    this.#reveals.start(this.client);
    if (this.#options.heartbeatFile) this.#stopHeartbeat = startHeartbeat(this.#options.heartbeatFile, () => this.client.ws.status === Status.Ready);
    log.info({ user: this.client.user?.tag, guilds: this.client.guilds.cache.size, commands: this.#router.commandPaths.length }, 'bot ready');
    if (this.client.guilds.cache.size === 0) log.warn({ invite: inviteUrl(this.client.application!.id) }, 'the bot is in no server yet: open the invite link');
  }

  async stop(): Promise<void> {
    this.#stopHeartbeat();
    this.context.adapters.stop();
    await this.#reveals.stop();
    await this.context.jobs.stop();
    await this.client.destroy();
  }
}

function loginError(code: number): Error {
  if (code === GatewayCloseCodes.AuthenticationFailed) {
    return new UnauthorizedError('Discord refused DISCORD_TOKEN: copy the token again from the Developer Portal (your application → Bot → Reset Token)');
  }
  if (code === GatewayCloseCodes.DisallowedIntents) {
    return new InvalidInputError(
      'Discord refused the Message Content intent: enable it in the Developer Portal (your application → Bot → Privileged Gateway Intents → Message Content Intent); thread chat needs it',
    );
  }
  return new UnavailableError(`the Discord gateway closed the connection (code ${code})`);
}
