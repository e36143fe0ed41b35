// A fake Discord for end-to-end tests: REST and gateway on one 127.0.0.1 server that a real discord.js Client logs
// into (`rest: { api: fake.apiUrl }`; the gateway URL comes from GET /gateway/bot). It keeps a small guild (roles,
// members, channels, threads, messages), lets a test act as members (slash commands, autocomplete, button
// clicks, messages in threads, uploads), records every REST call, and enforces the rules that break real bots:
// the 3-second acknowledgement (10062), a second acknowledgement (40060), interaction tokens dying after 15
// minutes (50027), message and embed limits (50035), empty messages (50006), archived threads (50083), and
// injected 429s whose retry_after must be honoured. Breaking a rule is recorded in `violations`.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  ApplicationCommandType,
  ChannelType,
  ComponentType,
  GatewayDispatchEvents,
  GatewayIntentBits,
  GatewayOpcodes,
  InteractionResponseType,
  InteractionType,
  PermissionFlagsBits,
  RESTJSONErrorCodes,
  type APIActionRowComponent,
  type APIAttachment,
  type APIComponentInMessageActionRow,
  type APIEmbed,
  type APIInteraction,
} from 'discord-api-types/v10';
import {
  EPHEMERAL,
  LOADING,
  apiAttachment,
  apiChannel,
  apiInteractionMember,
  apiMember,
  apiMessage,
  apiUser,
  guildCreatePayload,
  isThread,
  snowflake,
  type FakeChannel,
  type FakeMember,
  type FakeMessage,
  type FakeRole,
  type FakeUser,
  type GuildState,
  type StoredAttachment,
} from './model.js';
import { formErrors, isEmptyMessage, validateChoices, validateCommands, validateMessage, type FieldError } from './limits.js';
import { RateLimiter, type RateLimitRuleSpec } from './rate-limits.js';
import { buildCommandData, type CommandDefinition, type OptionValue } from './options.js';

export const ACK_WINDOW_MS = 3_000;
export const TOKEN_LIFETIME_MS = 15 * 60_000;

export interface UploadedFile {
  field: string;
  name: string;
  type: string;
  bytes: Buffer;
}

export interface RecordedRequest {
  method: string;
  /** decoded path after `/api/v10` (`@original` stays readable) */
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  files: UploadedFile[];
  at: number;
  status: number;
  response: unknown;
}

export type ViolationKind =
  | 'late-ack'
  | 'double-ack'
  | 'expired-token'
  | 'invalid-body'
  | 'empty-message'
  | 'ignored-retry-after'
  | 'archived-thread'
  | 'unauthorized'
  | 'unknown-route'
  | 'wrong-callback';

export interface Violation {
  kind: ViolationKind;
  message: string;
  request: RecordedRequest;
}

export interface InteractionRecord {
  id: string;
  token: string;
  type: InteractionType;
  payload: APIInteraction;
  createdAt: number;
  acked: boolean;
  callbackType: InteractionResponseType | null;
  /** the response message (for an update of a button's message: that message) */
  originalId: string | null;
  /** a button click's (or its form's) message: the one callback types 6 and 7 update */
  sourceMessageId: string | null;
  followUpIds: string[];
  /** autocomplete answers */
  choices: { name: string; value: string | number }[] | null;
  /** the form the bot opened in answer (callback type 9) */
  modal: { custom_id: string; title: string; components: { components: { custom_id: string }[] }[] } | null;
}

interface GatewaySession {
  ws: WebSocket;
  intents: number;
  seq: number;
  identified: boolean;
}

interface Waiter {
  what: string;
  check: () => boolean;
  reject: (err: Error) => void;
}

export interface FakeDiscordOptions {
  token?: string;
  applicationId?: string;
  botName?: string;
  guildName?: string;
  /** the first text channel's name */
  channelName?: string;
  /** a test that expects a bot to fail sets this shorter */
  defaultWaitMs?: number;
}

export interface WaitOptions {
  timeoutMs?: number;
}

class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

const json = (status: number, body?: unknown, headers?: Record<string, string>) => new Reply(status, body, headers);
const discordError = (status: number, code: number, message: string, extra: Record<string, unknown> = {}) =>
  json(status, { code, message, ...extra });

function formErrorReply(errors: FieldError[]): Reply {
  return discordError(400, RESTJSONErrorCodes.InvalidFormBodyOrContentType, 'Invalid Form Body', { errors: formErrors(errors) });
}

export class FakeDiscord {
  readonly token: string;
  readonly applicationId: string;
  readonly botUser: FakeUser;
  readonly guild: GuildState;
  /** id of the text channel created with the guild */
  readonly channelId: string;
  readonly requests: RecordedRequest[] = [];
  readonly violations: Violation[] = [];
  readonly interactions = new Map<string, InteractionRecord>();
  readonly messages = new Map<string, FakeMessage>();
  /** 'global' or a guild id → the registered command set */
  readonly commands = new Map<string, CommandDefinition[]>();
  /** every frame a client sent on the gateway */
  readonly gatewayFrames: { op: number; d: unknown }[] = [];
  readonly rateLimits = new RateLimiter();
  /** errors reported by the code under test (see `fail`) */
  readonly failures: Error[] = [];

  #server: http.Server | null = null;
  #wss: WebSocketServer | null = null;
  #sessions = new Set<GatewaySession>();
  #waiters = new Set<Waiter>();
  #clockOffset = 0;
  #base = '';
  #attachments = new Map<string, StoredAttachment>();
  readonly #defaultWaitMs: number;
  readonly #joinedAt = new Date().toISOString();

  constructor(options: FakeDiscordOptions = {}) {
    this.token = options.token ?? 'fake-bot-token';
    this.applicationId = options.applicationId ?? '111111111111111111';
    this.#defaultWaitMs = options.defaultWaitMs ?? 10_000;
    this.botUser = { id: this.applicationId, username: options.botName ?? 'loraforge', globalName: null, bot: true };
    const guildId = snowflake(this.now());
    const owner: FakeUser = { id: snowflake(this.now()), username: 'owner', globalName: 'Owner', bot: false };
    this.guild = {
      id: guildId,
      name: options.guildName ?? 'Test Guild',
      ownerId: owner.id,
      roles: new Map([[guildId, { id: guildId, name: '@everyone', permissions: PermissionFlagsBits.SendMessages | PermissionFlagsBits.ViewChannel | PermissionFlagsBits.UseApplicationCommands, position: 0 }]]),
      members: new Map(),
      channels: new Map(),
    };
    this.#putMember(this.botUser, []);
    this.channelId = this.addChannel(options.channelName ?? 'general');
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<this> {
    this.#server = http.createServer((req, res) => void this.#onHttp(req, res));
    this.#wss = new WebSocketServer({ noServer: true });
    this.#server.on('upgrade', (req, socket, head) => {
      this.#wss!.handleUpgrade(req, socket, head, (ws) => this.#onGateway(ws));
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.#base = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const w of this.#waiters) w.reject(new Error('fake Discord stopped while a test was waiting'));
    this.#waiters.clear();
    for (const s of this.#sessions) s.ws.terminate();
    this.#wss?.close();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  /** What a discord.js Client or REST takes as `rest.api`. */
  get apiUrl(): string {
    return `${this.#base}/api`;
  }

  /** The fake's clock: real time plus whatever `advance` added (for the 3-second and 15-minute rules). */
  now(): number {
    return Date.now() + this.#clockOffset;
  }

  /** Moves the fake's clock forward, e.g. past an interaction token's 15 minutes. */
  advance(ms: number): void {
    this.#clockOffset += ms;
  }

  // ---------------------------------------------------------------- guild set-up

  addRole(name: string, permissions = 0n): FakeRole {
    const role: FakeRole = { id: snowflake(this.now()), name, permissions, position: this.guild.roles.size };
    this.guild.roles.set(role.id, role);
    this.#dispatchAll(GatewayDispatchEvents.GuildRoleCreate, { guild_id: this.guild.id, role: { id: role.id, name } }, GatewayIntentBits.Guilds);
    return role;
  }

  /** A member of the guild; `permissions` is their guild-wide bitfield (default: send messages, use commands). */
  addMember(username: string, { roles = [], permissions }: { roles?: FakeRole[]; permissions?: bigint } = {}): FakeMember {
    const user: FakeUser = { id: snowflake(this.now()), username, globalName: username[0]!.toUpperCase() + username.slice(1), bot: false };
    return this.#putMember(user, roles.map((r) => r.id), permissions);
  }

  addChannel(name: string): string {
    const channel: FakeChannel = {
      id: snowflake(this.now()),
      type: ChannelType.GuildText,
      name,
      parentId: null,
      ownerId: null,
      archived: false,
      locked: false,
      autoArchiveDuration: 60,
      invitable: false,
      members: new Set(),
      createdAt: this.now(),
      messageCount: 0,
    };
    this.guild.channels.set(channel.id, channel);
    return channel.id;
  }

  #putMember(user: FakeUser, roles: string[], permissions?: bigint): FakeMember {
    const everyone = this.guild.roles.get(this.guild.id)!.permissions;
    const member: FakeMember = { user, roles, permissions: permissions ?? everyone, joinedAt: new Date(this.now()).toISOString() };
    this.guild.members.set(user.id, member);
    return member;
  }

  channel(id: string): FakeChannel {
    const channel = this.guild.channels.get(id);
    if (!channel) throw new Error(`fake Discord: no channel ${id}`);
    return channel;
  }

  threads(): FakeChannel[] {
    return [...this.guild.channels.values()].filter(isThread);
  }

  // ---------------------------------------------------------------- acting as members

  /** Stores a file as a user upload; pass the result as an attachment option. */
  upload(filename: string, bytes: Buffer | Uint8Array, contentType = 'application/octet-stream'): APIAttachment {
    return apiAttachment(this.#storeAttachment(this.channelId, filename, Buffer.from(bytes), contentType));
  }

  /** Invokes a slash command: `fake.command(alice, 'merge ties', { weights: '1,1,1,1' })`. */
  command(member: FakeMember, path: string, values: Record<string, OptionValue> = {}, { channelId = this.channelId } = {}): InteractionHandle {
    const { data } = buildCommandData(this.#registered(), path, values);
    return this.#dispatchInteraction(InteractionType.ApplicationCommand, member, channelId, { data });
  }

  /** Types into an autocomplete option and resolves with the choices the bot offered. */
  async autocomplete(
    member: FakeMember,
    path: string,
    values: Record<string, OptionValue>,
    focused: string,
    options: WaitOptions & { channelId?: string } = {},
  ): Promise<{ name: string; value: string | number }[]> {
    const { data } = buildCommandData(this.#registered(), path, values, focused);
    const handle = this.#dispatchInteraction(InteractionType.ApplicationCommandAutocomplete, member, options.channelId ?? this.channelId, { data });
    await handle.acknowledged(options);
    return handle.record.choices ?? [];
  }

  /** Clicks a button on a message the bot posted. */
  click(member: FakeMember, message: FakeMessage, customId: string): InteractionHandle {
    const button = message.components
      .flatMap((row) => row.components)
      .find((c) => c.type === ComponentType.Button && 'custom_id' in c && c.custom_id === customId);
    if (!button) throw new Error(`fake Discord: message ${message.id} has no button ${customId}`);
    if ('disabled' in button && button.disabled) throw new Error(`fake Discord: button ${customId} is disabled`);
    const handle = this.#dispatchInteraction(InteractionType.MessageComponent, member, message.channelId, {
      data: { custom_id: customId, component_type: ComponentType.Button },
      message: apiMessage(message, this.applicationId),
    });
    handle.record.sourceMessageId = message.id;
    return handle;
  }

  /** Fills in and submits the form the bot opened in answer to `opened` (values by the inputs' custom ids). */
  submitModal(member: FakeMember, opened: InteractionHandle, values: Record<string, string>): InteractionHandle {
    const modal = opened.record.modal;
    if (!modal) throw new Error(`fake Discord: the bot opened no form in answer to interaction ${opened.id}`);
    const inputs = modal.components.flatMap((row) => row.components.map((c) => c.custom_id));
    for (const key of Object.keys(values)) if (!inputs.includes(key)) throw new Error(`fake Discord: the form has no input ${key} (inputs: ${inputs.join(', ')})`);
    const payload = opened.record.payload as { channel_id: string; message?: unknown };
    const handle = this.#dispatchInteraction(InteractionType.ModalSubmit, member, payload.channel_id, {
      data: {
        custom_id: modal.custom_id,
        components: modal.components.map((row) => ({
          type: ComponentType.ActionRow,
          components: row.components.map((c) => ({ type: ComponentType.TextInput, custom_id: c.custom_id, value: values[c.custom_id] ?? '' })),
        })),
      },
      ...(payload.message ? { message: payload.message } : {}),
    });
    handle.record.sourceMessageId = opened.record.sourceMessageId;
    return handle;
  }

  /** A member posts a message in a channel or thread (MESSAGE_CREATE to the bot, filtered by its intents). */
  say(member: FakeMember, channelId: string, content: string, { mentionBot = false } = {}): FakeMessage {
    const channel = this.channel(channelId);
    if (channel.archived) {
      if (channel.locked) throw new Error(`fake Discord: thread ${channelId} is locked`);
      channel.archived = false; // a member's message unarchives an unlocked thread
    }
    const message = this.#createMessage(channelId, member.user, { content }, [], { mentions: mentionBot ? [this.botUser] : [] });
    return message;
  }

  // ---------------------------------------------------------------- reading state

  messagesIn(channelId: string): FakeMessage[] {
    return [...this.messages.values()].filter((m) => m.channelId === channelId && !m.deleted);
  }

  /** Bytes of an attachment the bot uploaded or a member uploaded. */
  attachmentBytes(attachment: { id: string }): Buffer {
    const stored = this.#attachments.get(attachment.id);
    if (!stored) throw new Error(`fake Discord: no attachment ${attachment.id}`);
    return stored.bytes;
  }

  /** Requests whose decoded path matches. */
  requestsTo(method: string, path: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && path.test(r.path));
  }

  // ---------------------------------------------------------------- waiting

  /**
   * Resolves with the first truthy value of `check`, re-evaluated after every request the fake handles (and every
   * 20 ms, for conditions on the client's side). Rejects
   * at the timeout with `what` and the last requests, and at once when the code under test reported an error
   * through `fail` (so a bot exception fails the test instead of hanging it).
   */
  waitFor<T>(check: () => T | undefined | null | false, what: string, { timeoutMs = this.#defaultWaitMs }: WaitOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const first = this.failures[0];
      if (first) return reject(this.#failureError(what, first));
      const initial = check();
      if (initial) return resolve(initial);
      const waiter: Waiter = {
        what,
        check: () => {
          const value = check();
          if (!value) return false;
          cleanup();
          resolve(value);
          return true;
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake Discord: timed out after ${timeoutMs} ms waiting for ${what}\n${this.describeRecent()}`));
      }, timeoutMs);
      // conditions may also depend on the client's side (its events, its errors): look again now and then
      const poll = setInterval(() => waiter.check(), 20);
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.#waiters.delete(waiter);
      };
      this.#waiters.add(waiter);
    });
  }

  /** Reports an error from the code under test: every pending and later wait rejects with it. */
  fail(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.failures.push(error);
    for (const w of [...this.#waiters]) w.reject(this.#failureError(w.what, error));
  }

  #failureError(what: string, cause: Error): Error {
    return new Error(`the code under test failed while the test waited for ${what}: ${cause.stack ?? cause.message}`, { cause });
  }

  /** The last requests, one line each, for failure messages. */
  describeRecent(count = 15): string {
    const lines = this.requests.slice(-count).map((r) => {
      const body = r.body && typeof r.body === 'object' ? JSON.stringify(r.body).slice(0, 160) : '';
      return `  ${r.status} ${r.method} ${r.path} ${body}`;
    });
    const violations = this.violations.map((v) => `  violation ${v.kind}: ${v.message}`);
    return ['last requests:', ...lines, ...violations].join('\n');
  }

  #changed(): void {
    for (const w of [...this.#waiters]) w.check();
  }

  // ---------------------------------------------------------------- gateway

  #onGateway(ws: WebSocket): void {
    const session: GatewaySession = { ws, intents: 0, seq: 0, identified: false };
    this.#sessions.add(session);
    ws.on('close', () => this.#sessions.delete(session));
    const send = (payload: unknown) => ws.send(JSON.stringify(payload));
    send({ op: GatewayOpcodes.Hello, d: { heartbeat_interval: 41_250 } });
    ws.on('message', (raw) => {
      const frame = JSON.parse(raw.toString()) as { op: number; d: Record<string, unknown> };
      this.gatewayFrames.push(frame);
      if (frame.op === GatewayOpcodes.Heartbeat) return send({ op: GatewayOpcodes.HeartbeatAck });
      if (frame.op === GatewayOpcodes.Identify) {
        if (frame.d.token !== this.token) return ws.close(4004, 'Authentication failed');
        session.intents = Number(frame.d.intents);
        session.identified = true;
        this.#sendDispatch(session, GatewayDispatchEvents.Ready, {
          v: 10,
          user: { ...apiUser(this.botUser), verified: true, flags: 0, mfa_enabled: false },
          guilds: [{ id: this.guild.id, unavailable: true }],
          session_id: `session-${snowflake(this.now())}`,
          resume_gateway_url: this.#base.replace('http', 'ws'),
          shard: frame.d.shard ?? [0, 1],
          application: { id: this.applicationId, flags: 0 },
        });
        // without GUILD_CREATE discord.js waits 15 s (waitGuildTimeout) before it is ready
        this.#sendDispatch(session, GatewayDispatchEvents.GuildCreate, guildCreatePayload(this.guild, this.#joinedAt));
        this.#changed();
        return;
      }
      if (frame.op === GatewayOpcodes.Resume) this.#sendDispatch(session, GatewayDispatchEvents.Resumed, {});
    });
  }

  #sendDispatch(session: GatewaySession, t: string, d: unknown): void {
    session.seq += 1;
    session.ws.send(JSON.stringify({ op: GatewayOpcodes.Dispatch, t, s: session.seq, d }));
  }

  /** Sends an event to every identified session that asked for `intent` (0: no intent needed). */
  #dispatchAll(t: string, d: unknown, intent: number, transform?: (session: GatewaySession) => unknown): void {
    for (const s of this.#sessions) {
      if (s.identified && (intent === 0 || (s.intents & intent) !== 0)) this.#sendDispatch(s, t, transform ? transform(s) : d);
    }
  }

  /** Resolves once a client has identified (and been sent READY and GUILD_CREATE). */
  async connected(options: WaitOptions = {}): Promise<void> {
    await this.waitFor(() => [...this.#sessions].some((s) => s.identified), 'a gateway client to identify', options);
  }

  get identifiedIntents(): number[] {
    return [...this.#sessions].filter((s) => s.identified).map((s) => s.intents);
  }

  // ---------------------------------------------------------------- interactions

  #registered(): CommandDefinition[] {
    const commands = [...(this.commands.get(this.guild.id) ?? []), ...(this.commands.get('global') ?? [])];
    if (commands.length === 0) throw new Error('fake Discord: no commands registered; deploy the command definitions first');
    return commands;
  }

  #dispatchInteraction(type: InteractionType, member: FakeMember, channelId: string, extra: Record<string, unknown>): InteractionHandle {
    const live = [...this.#sessions].filter((s) => s.identified);
    if (live.length === 0) throw new Error('fake Discord: no bot is connected to the gateway');
    const channel = this.channel(channelId);
    const id = snowflake(this.now());
    const token = `interaction-token-${id}-${Math.random().toString(36).slice(2)}`;
    const payload = {
      id,
      token,
      type,
      application_id: this.applicationId,
      version: 1,
      guild_id: this.guild.id,
      guild: { id: this.guild.id, features: [], locale: 'en-US' },
      channel_id: channelId,
      channel: { ...apiChannel(channel, this.guild.id), permissions: String(member.permissions) },
      member: apiInteractionMember(member),
      app_permissions: String(PermissionFlagsBits.Administrator),
      locale: 'en-US',
      guild_locale: 'en-US',
      // discord.js reads both; without them it throws inside its gateway handler and no event fires
      entitlements: [],
      authorizing_integration_owners: { '0': this.guild.id },
      context: 0,
      attachment_size_limit: 10 * 1024 * 1024,
      ...extra,
    } as unknown as APIInteraction;
    const record: InteractionRecord = {
      id,
      token,
      type,
      payload,
      createdAt: this.now(),
      acked: false,
      callbackType: null,
      originalId: null,
      sourceMessageId: null,
      followUpIds: [],
      choices: null,
      modal: null,
    };
    this.interactions.set(id, record);
    this.#dispatchAll(GatewayDispatchEvents.InteractionCreate, payload, 0);
    return new InteractionHandle(this, record);
  }

  // ---------------------------------------------------------------- messages

  #storeAttachment(channelId: string, filename: string, bytes: Buffer, contentType: string): StoredAttachment {
    const id = snowflake(this.now());
    const stored: StoredAttachment = {
      id,
      filename,
      contentType,
      bytes,
      url: `${this.#base}/attachments/${channelId}/${id}/${encodeURIComponent(filename)}`,
    };
    this.#attachments.set(id, stored);
    return stored;
  }

  #createMessage(
    channelId: string,
    author: FakeUser,
    body: Record<string, unknown>,
    files: UploadedFile[],
    extra: { webhook?: boolean; interactionId?: string; flags?: number; mentions?: FakeUser[] } = {},
  ): FakeMessage {
    const now = this.now();
    const attachments = files.map((f) => this.#storeAttachment(channelId, f.name, f.bytes, f.type));
    const message: FakeMessage = {
      id: snowflake(now),
      channelId,
      author,
      content: typeof body.content === 'string' ? body.content : '',
      embeds: (body.embeds as APIEmbed[] | undefined) ?? [],
      components: (body.components as APIActionRowComponent<APIComponentInMessageActionRow>[] | undefined) ?? [],
      attachments,
      flags: (extra.flags ?? 0) | (typeof body.flags === 'number' ? body.flags : 0),
      createdAt: now,
      editedAt: null,
      revisions: [],
      deleted: false,
      webhookId: extra.webhook ? this.applicationId : null,
      interactionId: extra.interactionId ?? null,
      mentions: (extra.mentions ?? []).map((u) => u.id),
    };
    message.revisions.push(this.#revision(message));
    this.messages.set(message.id, message);
    const channel = this.guild.channels.get(channelId);
    if (channel) channel.messageCount += 1;
    if (!(message.flags & EPHEMERAL) && !(message.flags & LOADING)) this.#dispatchMessageCreate(message, extra.mentions ?? []);
    return message;
  }

  #dispatchMessageCreate(message: FakeMessage, mentions: FakeUser[]): void {
    const member = this.guild.members.get(message.author.id);
    const base = { ...apiMessage(message, this.applicationId), guild_id: this.guild.id, mentions: mentions.map(apiUser), ...(member ? { member: { ...apiMember(member), user: undefined } } : {}) };
    const fromBot = message.author.id === this.botUser.id;
    const mentionsBot = mentions.some((u) => u.id === this.botUser.id);
    this.#dispatchAll(GatewayDispatchEvents.MessageCreate, base, GatewayIntentBits.GuildMessages, (s) => {
      // the privileged MessageContent intent: without it content, embeds, attachments and components arrive empty
      if ((s.intents & GatewayIntentBits.MessageContent) !== 0 || fromBot || mentionsBot) return base;
      return { ...base, content: '', embeds: [], attachments: [], components: [] };
    });
  }

  #revision(message: FakeMessage) {
    return {
      at: this.now(),
      content: message.content,
      embeds: message.embeds,
      components: message.components,
      attachments: message.attachments.map((a) => a.filename),
    };
  }

  #editMessage(message: FakeMessage, body: Record<string, unknown>, files: UploadedFile[]): void {
    if (typeof body.content === 'string' || body.content === null) message.content = body.content ?? '';
    if (Array.isArray(body.embeds)) message.embeds = body.embeds as APIEmbed[];
    if (Array.isArray(body.components)) message.components = body.components as APIActionRowComponent<APIComponentInMessageActionRow>[];
    if (Array.isArray(body.attachments) || files.length > 0) {
      // `attachments` lists the existing ones to keep ({id}) and the new uploads ({id: index})
      const keep = new Set(((body.attachments as { id: string }[] | undefined) ?? []).map((a) => String(a.id)));
      const kept = Array.isArray(body.attachments) ? message.attachments.filter((a) => keep.has(a.id)) : message.attachments;
      message.attachments = [...kept, ...files.map((f) => this.#storeAttachment(message.channelId, f.name, f.bytes, f.type))];
    }
    message.flags &= ~LOADING;
    message.editedAt = this.now();
    message.revisions.push(this.#revision(message));
  }

  // ---------------------------------------------------------------- REST

  async #readBody(req: http.IncomingMessage): Promise<{ body: unknown; files: UploadedFile[] }> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const buf = Buffer.concat(chunks);
    const contentType = req.headers['content-type'] ?? '';
    if (buf.length === 0) return { body: null, files: [] };
    if (contentType.startsWith('application/json')) return { body: JSON.parse(buf.toString('utf8')), files: [] };
    if (contentType.startsWith('multipart/form-data')) {
      const form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': contentType }, body: buf }).formData();
      let body: unknown = null;
      const files: UploadedFile[] = [];
      for (const [field, value] of form.entries()) {
        if (field === 'payload_json' && typeof value === 'string') body = JSON.parse(value);
        else if (typeof value !== 'string') files.push({ field, name: value.name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) });
      }
      return { body, files };
    }
    return { body: buf.toString('utf8'), files: [] };
  }

  async #onHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.#base);
    let record: RecordedRequest | null = null;
    try {
      if (url.pathname.startsWith('/attachments/')) return this.#serveAttachment(url, res);
      const { body, files } = await this.#readBody(req);
      const path = decodeURIComponent(url.pathname).replace(/^\/api\/v10/, ''); // discord.js sends @original as %40original
      record = { method: req.method ?? 'GET', path, query: Object.fromEntries(url.searchParams), headers: req.headers, body, files, at: this.now(), status: 0, response: undefined };
      this.requests.push(record);
      const reply = this.#route(record);
      record.status = reply.status;
      record.response = reply.body;
      const headers: Record<string, string> = { ...reply.headers };
      if (reply.body === undefined) {
        res.writeHead(reply.status, headers).end();
      } else {
        res.writeHead(reply.status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(reply.body));
      }
    } catch (err) {
      // a bug in the fake, not in the bot: make it loud
      const error = err instanceof Error ? err : new Error(String(err));
      if (record) record.status = 500;
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 0, message: `fake Discord crashed: ${error.message}` }));
      this.fail(new Error(`fake Discord crashed on ${req.method} ${url.pathname}: ${error.stack}`));
    } finally {
      this.#changed();
    }
  }

  #serveAttachment(url: URL, res: http.ServerResponse): void {
    const id = url.pathname.split('/')[3] ?? '';
    const stored = this.#attachments.get(id);
    if (!stored) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': stored.contentType, 'content-length': String(stored.bytes.length) }).end(stored.bytes);
  }

  #violation(kind: ViolationKind, message: string, request: RecordedRequest): void {
    this.violations.push({ kind, message, request });
  }

  #route(r: RecordedRequest): Reply {
    const isCallback = /^\/interactions\/\d+\/[^/]+\/callback$/.test(r.path);
    const limited = this.rateLimits.check(r.method, r.path, this.now(), { exemptFromGlobal: isCallback });
    if (limited) {
      if (limited.violation) this.#violation('ignored-retry-after', `${r.method} ${r.path} came ${limited.retryAfter.toFixed(3)} s before its retry_after ended`, r);
      const headers: Record<string, string> = {
        'retry-after': String(Math.ceil(limited.retryAfter)),
        'x-ratelimit-scope': limited.scope,
      };
      if (limited.global) headers['x-ratelimit-global'] = 'true';
      else Object.assign(headers, { 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': String(limited.retryAfter), 'x-ratelimit-bucket': Buffer.from(limited.bucket).toString('hex').slice(0, 32) });
      return json(429, { message: 'You are being rate limited.', retry_after: limited.retryAfter, global: limited.global }, headers);
    }
    const authed = r.headers.authorization === `Bot ${this.token}`;
    const needsAuth = !isCallback && !r.path.startsWith('/webhooks/');
    if (needsAuth && !authed) {
      this.#violation('unauthorized', `${r.method} ${r.path} without a valid bot token`, r);
      return discordError(401, 0, '401: Unauthorized');
    }
    let m: RegExpMatchArray | null;
    const route = `${r.method} ${r.path}`;
    if (route === 'GET /gateway/bot') {
      return json(200, { url: this.#base.replace('http', 'ws'), shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 14_400_000, max_concurrency: 1 } });
    }
    if (route === 'GET /gateway') return json(200, { url: this.#base.replace('http', 'ws') });
    if (route === 'GET /users/@me') return json(200, apiUser(this.botUser));
    if (route === 'GET /applications/@me') return json(200, { id: this.applicationId, name: this.botUser.username, description: '', bot_public: false, bot_require_code_grant: false, flags: 0, verify_key: '0' });
    if ((m = route.match(/^(PUT|GET) \/applications\/(\d+)(?:\/guilds\/(\d+))?\/commands$/))) return this.#commands(r, m[1]!, m[2]!, m[3]);
    if ((m = route.match(/^POST \/interactions\/(\d+)\/([^/]+)\/callback$/))) return this.#callback(r, m[1]!, m[2]!);
    if ((m = route.match(/^(GET|PATCH|DELETE) \/webhooks\/(\d+)\/([^/]+)\/messages\/(@original|\d+)$/))) return this.#webhookMessage(r, m[1]!, m[3]!, m[4]!);
    if ((m = route.match(/^POST \/webhooks\/(\d+)\/([^/]+)$/))) return this.#followUp(r, m[2]!);
    if ((m = route.match(/^GET \/channels\/(\d+)$/))) return this.#getChannel(m[1]!);
    if ((m = route.match(/^PATCH \/channels\/(\d+)$/))) return this.#patchChannel(r, m[1]!);
    if ((m = route.match(/^POST \/channels\/(\d+)\/messages$/))) return this.#postChannelMessage(r, m[1]!);
    if ((m = route.match(/^GET \/channels\/(\d+)\/messages$/))) return this.#listMessages(r, m[1]!);
    if ((m = route.match(/^(GET|PATCH|DELETE) \/channels\/(\d+)\/messages\/(\d+)$/))) return this.#channelMessage(r, m[1]!, m[2]!, m[3]!);
    if ((m = route.match(/^POST \/channels\/(\d+)(?:\/messages\/(\d+))?\/threads$/))) return this.#createThread(r, m[1]!, m[2]);
    if ((m = route.match(/^PUT \/channels\/(\d+)\/thread-members\/(\d+|@me)$/))) return this.#addThreadMember(m[1]!, m[2]!);
    if ((m = route.match(/^POST \/channels\/(\d+)\/typing$/))) return this.guild.channels.has(m[1]!) ? json(204) : discordError(404, RESTJSONErrorCodes.UnknownChannel, 'Unknown Channel');
    if ((m = route.match(/^GET \/guilds\/(\d+)\/members\/(\d+)$/))) {
      const member = this.guild.members.get(m[2]!);
      return member ? json(200, apiMember(member)) : discordError(404, RESTJSONErrorCodes.UnknownMember, 'Unknown Member');
    }
    this.#violation('unknown-route', `the fake does not serve ${route}`, r);
    return discordError(404, 0, `404: Not Found (${route})`);
  }

  #commands(r: RecordedRequest, method: string, appId: string, guildId: string | undefined): Reply {
    if (appId !== this.applicationId) return discordError(403, RESTJSONErrorCodes.MissingAccess, 'Missing Access');
    if (guildId !== undefined && guildId !== this.guild.id) return discordError(403, RESTJSONErrorCodes.MissingAccess, 'Missing Access');
    const key = guildId ?? 'global';
    if (method === 'GET') return json(200, this.commands.get(key) ?? []);
    const errors = validateCommands(r.body);
    if (errors.length > 0) {
      this.#violation('invalid-body', `command definitions: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, r);
      return formErrorReply(errors);
    }
    const previous = new Map((this.commands.get(key) ?? []).map((c) => [c.name, c.id]));
    const stored = (r.body as Omit<CommandDefinition, 'id'>[]).map((c) => ({
      ...c,
      id: previous.get(c.name) ?? snowflake(this.now()),
      application_id: this.applicationId,
      ...(guildId ? { guild_id: guildId } : {}),
      version: snowflake(this.now()),
      type: c.type ?? ApplicationCommandType.ChatInput,
    })) as CommandDefinition[];
    this.commands.set(key, stored);
    return json(200, stored);
  }

  #interactionByToken(r: RecordedRequest, token: string): InteractionRecord | Reply {
    const it = [...this.interactions.values()].find((i) => i.token === token);
    if (!it || !it.acked) return discordError(404, RESTJSONErrorCodes.UnknownWebhook, 'Unknown Webhook');
    if (this.now() - it.createdAt > TOKEN_LIFETIME_MS) {
      this.#violation('expired-token', `${r.method} ${r.path} with an interaction token older than 15 minutes`, r);
      return discordError(401, RESTJSONErrorCodes.InvalidWebhookToken, 'Invalid Webhook Token');
    }
    return it;
  }

  #checkBody(r: RecordedRequest, { edit }: { edit: boolean }, body = r.body): Reply | null {
    const errors = validateMessage(body, r.files.length);
    if (errors.length > 0) {
      this.#violation('invalid-body', errors.map((e) => `${e.path}: ${e.message}`).join('; '), r);
      return formErrorReply(errors);
    }
    if (!edit && isEmptyMessage(body, r.files.length)) {
      this.#violation('empty-message', `${r.method} ${r.path} with nothing to show`, r);
      return discordError(400, RESTJSONErrorCodes.CannotSendAnEmptyMessage, 'Cannot send an empty message');
    }
    return null;
  }

  #callback(r: RecordedRequest, id: string, token: string): Reply {
    const it = this.interactions.get(id);
    if (!it || it.token !== token) return discordError(404, RESTJSONErrorCodes.UnknownInteraction, 'Unknown interaction');
    if (this.now() - it.createdAt > ACK_WINDOW_MS) {
      this.#violation('late-ack', `interaction ${id} acknowledged ${this.now() - it.createdAt} ms after it was created (limit 3000)`, r);
      return discordError(404, RESTJSONErrorCodes.UnknownInteraction, 'Unknown interaction');
    }
    if (it.acked) {
      this.#violation('double-ack', `interaction ${id} acknowledged twice`, r);
      return discordError(400, RESTJSONErrorCodes.InteractionHasAlreadyBeenAcknowledged, 'Interaction has already been acknowledged.');
    }
    const body = (r.body ?? {}) as { type?: InteractionResponseType; data?: Record<string, unknown> };
    const type = body.type;
    const isAutocomplete = it.type === InteractionType.ApplicationCommandAutocomplete;
    const isComponent = it.type === InteractionType.MessageComponent || it.type === InteractionType.ModalSubmit;
    const allowed =
      type === InteractionResponseType.ApplicationCommandAutocompleteResult
        ? isAutocomplete
        : type === InteractionResponseType.DeferredMessageUpdate || type === InteractionResponseType.UpdateMessage
          ? isComponent
          : !isAutocomplete && (type === InteractionResponseType.ChannelMessageWithSource || type === InteractionResponseType.DeferredChannelMessageWithSource || type === InteractionResponseType.Modal);
    if (!allowed) {
      this.#violation('wrong-callback', `callback type ${type} is not valid for interaction type ${it.type}`, r);
      return discordError(400, RESTJSONErrorCodes.InvalidFormBodyOrContentType, 'Invalid Form Body', { errors: { type: { _errors: [{ code: 'INTERACTION_RESPONSE_TYPE_INVALID', message: 'Invalid interaction response type' }] } } });
    }
    const channelId = (it.payload as { channel_id: string }).channel_id;
    const data = body.data ?? {};
    switch (type) {
      case InteractionResponseType.ApplicationCommandAutocompleteResult: {
        const errors = validateChoices(data.choices);
        if (errors.length > 0) {
          this.#violation('invalid-body', errors.map((e) => `${e.path}: ${e.message}`).join('; '), r);
          return formErrorReply(errors);
        }
        it.choices = (data.choices as InteractionRecord['choices']) ?? [];
        break;
      }
      case InteractionResponseType.ChannelMessageWithSource: {
        const bad = this.#checkBody(r, { edit: false }, data);
        if (bad) return bad;
        it.originalId = this.#createMessage(channelId, this.botUser, data, r.files, { webhook: true, interactionId: id }).id;
        break;
      }
      case InteractionResponseType.DeferredChannelMessageWithSource:
        it.originalId = this.#createMessage(channelId, this.botUser, {}, [], { webhook: true, interactionId: id, flags: LOADING | (Number(data.flags ?? 0) & EPHEMERAL) }).id;
        break;
      case InteractionResponseType.Modal: {
        const modal = data as unknown as InteractionRecord['modal'];
        const title = String((data as { title?: unknown }).title ?? '');
        if (!modal?.custom_id || modal.custom_id.length > 100 || title.length < 1 || title.length > 45 || !Array.isArray(modal.components) || modal.components.length === 0 || modal.components.length > 5) {
          this.#violation('invalid-body', 'a modal needs a custom_id (≤ 100), a title (1–45) and 1–5 rows of inputs', r);
          return formErrorReply([{ path: 'data', code: 'BASE_TYPE_INVALID', message: 'Invalid modal' }]);
        }
        it.modal = modal;
        break;
      }
      case InteractionResponseType.UpdateMessage:
      case InteractionResponseType.DeferredMessageUpdate: {
        const source = it.sourceMessageId ? this.messages.get(it.sourceMessageId) : undefined;
        if (!source) {
          this.#violation('wrong-callback', `callback type ${type} updates a message, but interaction ${id} has none (a form not opened from a button)`, r);
          return discordError(400, RESTJSONErrorCodes.InvalidFormBodyOrContentType, 'Invalid Form Body');
        }
        if (type === InteractionResponseType.UpdateMessage) {
          const bad = this.#checkBody(r, { edit: true }, data);
          if (bad) return bad;
          this.#editMessage(source, data, r.files);
        }
        it.originalId = source.id;
        break;
      }
      default:
        break;
    }
    it.acked = true;
    it.callbackType = type ?? null;
    if (r.query.with_response === 'true') {
      const message = it.originalId ? this.messages.get(it.originalId) : undefined;
      return json(200, {
        interaction: { id, type: it.type, response_message_id: message?.id, response_message_loading: type === InteractionResponseType.DeferredChannelMessageWithSource, response_message_ephemeral: Boolean(message && message.flags & EPHEMERAL) },
        resource: message ? { type, message: apiMessage(message, this.applicationId) } : { type },
      });
    }
    return json(204);
  }

  #webhookMessage(r: RecordedRequest, method: string, token: string, which: string): Reply {
    const it = this.#interactionByToken(r, token);
    if (it instanceof Reply) return it;
    const messageId = which === '@original' ? it.originalId : which;
    const message = messageId ? this.messages.get(messageId) : undefined;
    if (!message || message.deleted || (which !== '@original' && !it.followUpIds.includes(which))) return discordError(404, RESTJSONErrorCodes.UnknownMessage, 'Unknown Message');
    if (method === 'GET') return json(200, apiMessage(message, this.applicationId));
    if (method === 'DELETE') {
      message.deleted = true;
      return json(204);
    }
    const body = (r.body ?? {}) as Record<string, unknown>;
    const bad = this.#checkBody(r, { edit: true });
    if (bad) return bad;
    const wasLoading = (message.flags & LOADING) !== 0;
    this.#editMessage(message, body, r.files);
    if (wasLoading && !(message.flags & EPHEMERAL)) this.#dispatchMessageCreate(message, []);
    return json(200, apiMessage(message, this.applicationId));
  }

  #followUp(r: RecordedRequest, token: string): Reply {
    const it = this.#interactionByToken(r, token);
    if (it instanceof Reply) return it;
    const bad = this.#checkBody(r, { edit: false });
    if (bad) return bad;
    const body = (r.body ?? {}) as Record<string, unknown>;
    const original = it.originalId ? this.messages.get(it.originalId) : undefined;
    // Discord's own quirk: the first follow-up after a defer replaces the "thinking…" message instead of posting
    if (original && !original.deleted && original.flags & LOADING) {
      this.#editMessage(original, body, r.files);
      if (!(original.flags & EPHEMERAL)) this.#dispatchMessageCreate(original, []);
      return json(200, apiMessage(original, this.applicationId));
    }
    const channelId = (it.payload as { channel_id: string }).channel_id;
    const message = this.#createMessage(channelId, this.botUser, body, r.files, { webhook: true, interactionId: it.id });
    it.followUpIds.push(message.id);
    return json(200, apiMessage(message, this.applicationId));
  }

  #getChannel(id: string): Reply {
    const channel = this.guild.channels.get(id);
    return channel ? json(200, apiChannel(channel, this.guild.id)) : discordError(404, RESTJSONErrorCodes.UnknownChannel, 'Unknown Channel');
  }

  #patchChannel(r: RecordedRequest, id: string): Reply {
    const channel = this.guild.channels.get(id);
    if (!channel) return discordError(404, RESTJSONErrorCodes.UnknownChannel, 'Unknown Channel');
    const body = (r.body ?? {}) as { name?: string; archived?: boolean; locked?: boolean };
    if (typeof body.name === 'string') channel.name = body.name;
    if (typeof body.archived === 'boolean') channel.archived = body.archived;
    if (typeof body.locked === 'boolean') channel.locked = body.locked;
    const payload = apiChannel(channel, this.guild.id);
    this.#dispatchAll(isThread(channel) ? GatewayDispatchEvents.ThreadUpdate : GatewayDispatchEvents.ChannelUpdate, payload, GatewayIntentBits.Guilds);
    return json(200, payload);
  }

  #postChannelMessage(r: RecordedRequest, channelId: string): Reply {
    const channel = this.guild.channels.get(channelId);
    if (!channel) return discordError(404, RESTJSONErrorCodes.UnknownChannel, 'Unknown Channel');
    if (channel.archived) {
      this.#violation('archived-thread', `POST to archived thread ${channelId}`, r);
      return discordError(400, RESTJSONErrorCodes.InvalidActionOnArchivedThread, 'Thread is archived');
    }
    const bad = this.#checkBody(r, { edit: false });
    if (bad) return bad;
    const message = this.#createMessage(channelId, this.botUser, (r.body ?? {}) as Record<string, unknown>, r.files);
    return json(200, apiMessage(message, this.applicationId));
  }

  #listMessages(r: RecordedRequest, channelId: string): Reply {
    if (!this.guild.channels.has(channelId)) return discordError(404, RESTJSONErrorCodes.UnknownChannel, 'Unknown Channel');
    const limit = Math.min(100, Number(r.query.limit ?? 50));
    const list = this.messagesIn(channelId).filter((m) => !(m.flags & EPHEMERAL)).reverse().slice(0, limit);
    return json(200, list.map((m) => apiMessage(m, this.applicationId)));
  }

  #channelMessage(r: RecordedRequest, method: string, channelId: string, messageId: string): Reply {
    const message = this.messages.get(messageId);
    if (!message || message.deleted || message.channelId !== channelId || message.flags & EPHEMERAL) return discordError(404, RESTJSONErrorCodes.UnknownMessage, 'Unknown Message');
    if (method === 'GET') return json(200, apiMessage(message, this.applicationId));
    if (message.author.id !== this.botUser.id && method === 'PATCH') return discordError(403, RESTJSONErrorCodes.CannotEditMessageAuthoredByAnotherUser, 'Cannot edit a message authored by another user');
    if (method === 'DELETE') {
      message.deleted = true;
      return json(204);
    }
    const bad = this.#checkBody(r, { edit: true });
    if (bad) return bad;
    this.#editMessage(message, (r.body ?? {}) as Record<string, unknown>, r.files);
    return json(200, apiMessage(message, this.applicationId));
  }

  #createThread(r: RecordedRequest, parentId: string, fromMessageId: string | undefined): Reply {
    const parent = this.guild.channels.get(parentId);
    if (!parent || isThread(parent)) return discordError(404, RESTJSONErrorCodes.UnknownChannel, 'Unknown Channel');
    const body = (r.body ?? {}) as { name?: string; type?: number; auto_archive_duration?: number; invitable?: boolean };
    if (!body.name || body.name.length > 100) {
      const errors = [{ path: 'name', code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' }];
      this.#violation('invalid-body', 'thread name must be 1-100 characters', r);
      return formErrorReply(errors);
    }
    const thread: FakeChannel = {
      id: fromMessageId ?? snowflake(this.now()), // a thread started from a message takes the message's id
      type: body.type === ChannelType.PrivateThread && !fromMessageId ? ChannelType.PrivateThread : ChannelType.PublicThread,
      name: body.name,
      parentId,
      ownerId: this.botUser.id,
      archived: false,
      locked: false,
      autoArchiveDuration: (body.auto_archive_duration ?? 1440) as FakeChannel['autoArchiveDuration'],
      invitable: body.invitable ?? true,
      members: new Set([this.botUser.id]),
      createdAt: this.now(),
      messageCount: 0,
    };
    this.guild.channels.set(thread.id, thread);
    const payload = apiChannel(thread, this.guild.id);
    this.#dispatchAll(GatewayDispatchEvents.ThreadCreate, { ...payload, newly_created: true }, GatewayIntentBits.Guilds);
    return json(201, payload);
  }

  #addThreadMember(threadId: string, userId: string): Reply {
    const thread = this.guild.channels.get(threadId);
    if (!thread || !isThread(thread)) return discordError(404, RESTJSONErrorCodes.UnknownChannel, 'Unknown Channel');
    const id = userId === '@me' ? this.botUser.id : userId;
    if (!this.guild.members.has(id)) return discordError(404, RESTJSONErrorCodes.UnknownMember, 'Unknown Member');
    thread.members.add(id);
    return json(204);
  }

  /** Rate-limits requests; see `RateLimitRuleSpec`. Returns a function that removes the rule. */
  injectRateLimit(spec: RateLimitRuleSpec): () => void {
    return this.rateLimits.inject(spec);
  }
}

/** A test's view of one interaction it started. */
export class InteractionHandle {
  constructor(
    readonly fake: FakeDiscord,
    readonly record: InteractionRecord,
  ) {}

  get id(): string {
    return this.record.id;
  }

  /** Resolves with the callback type once the bot acknowledged the interaction. */
  async acknowledged(options: WaitOptions = {}): Promise<InteractionResponseType> {
    return this.fake.waitFor(() => (this.record.acked ? this.record.callbackType! : undefined), `interaction ${this.id} to be acknowledged`, options);
  }

  /** The message that answers the interaction (after a defer: once the bot has edited it). */
  get original(): FakeMessage | undefined {
    return this.record.originalId ? this.fake.messages.get(this.record.originalId) : undefined;
  }

  get followUps(): FakeMessage[] {
    return this.record.followUpIds.map((id) => this.fake.messages.get(id)!).filter((m) => !m.deleted);
  }

  get ephemeral(): boolean {
    return Boolean((this.original?.flags ?? 0) & EPHEMERAL);
  }

  /** Waits until the answer (original response, no longer "thinking…") satisfies `check`. */
  async reply(check: (m: FakeMessage) => boolean = () => true, what = 'the reply', options: WaitOptions = {}): Promise<FakeMessage> {
    return this.fake.waitFor(
      () => {
        const m = this.original;
        return m && !(m.flags & LOADING) && check(m) ? m : undefined;
      },
      `${what} to interaction ${this.id}`,
      options,
    );
  }

  /**
   * Waits for a message only the member sees (an ephemeral reply or follow-up) that satisfies `check`: where a bot
   * puts refusals and failures, whatever state the interaction was in.
   */
  async privately(check: (m: FakeMessage) => boolean = () => true, what = 'a private answer', options: WaitOptions = {}): Promise<FakeMessage> {
    return this.fake.waitFor(
      () => [this.original, ...this.followUps].find((m) => m && !m.deleted && m.flags & EPHEMERAL && !(m.flags & LOADING) && check(m)),
      `${what} to interaction ${this.id}`,
      options,
    );
  }

  /** Waits until a follow-up message satisfies `check`. */
  async followUp(check: (m: FakeMessage) => boolean = () => true, what = 'a follow-up', options: WaitOptions = {}): Promise<FakeMessage> {
    return this.fake.waitFor(() => this.followUps.find(check), `${what} to interaction ${this.id}`, options);
  }

  /** The REST calls made with this interaction's token. */
  requests(): RecordedRequest[] {
    return this.fake.requests.filter((r) => r.path.includes(this.record.token));
  }
}

