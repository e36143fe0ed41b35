// The fake's state (users, roles, channels and threads, messages, interactions) and its API-shaped views. Every
// payload handed to discord.js goes through the functions here, typed with discord-api-types, because discord.js
// builds real structures from them and silently drops events whose payloads miss fields it reads.
import {
  ChannelType,
  type ChannelFlags,
  type GuildMemberFlags,
  type RoleFlags,
  GuildDefaultMessageNotifications,
  GuildExplicitContentFilter,
  GuildMFALevel,
  GuildNSFWLevel,
  GuildPremiumTier,
  type GuildSystemChannelFlags,
  GuildVerificationLevel,
  MessageFlags,
  MessageType,
  type APIActionRowComponent,
  type APIAttachment,
  type APIChannel,
  type APIComponentInMessageActionRow,
  type APIEmbed,
  type APIGuildMember,
  type APIInteractionGuildMember,
  type APIMessage,
  type APIRole,
  type APIThreadChannel,
  type APIUser,
  type GatewayGuildCreateDispatchData,
} from 'discord-api-types/v10';

export const DISCORD_EPOCH = 1420070400000n;
let counter = 0n;

/** A snowflake for `now` (17–19 digits, so @discordjs/rest buckets it like a real id). */
export function snowflake(now: number): string {
  counter = (counter + 1n) & 0xfffn;
  return (((BigInt(now) - DISCORD_EPOCH) << 22n) | (1n << 17n) | counter).toString();
}

export interface FakeUser {
  id: string;
  username: string;
  globalName: string | null;
  bot: boolean;
}

export interface FakeMember {
  user: FakeUser;
  roles: string[];
  /** guild-wide permissions bitfield (Discord computes it from the roles; the fake takes it as given) */
  permissions: bigint;
  joinedAt: string;
}

export interface FakeRole {
  id: string;
  name: string;
  permissions: bigint;
  position: number;
}

export interface FakeChannel {
  id: string;
  type: ChannelType.GuildText | ChannelType.PublicThread | ChannelType.PrivateThread;
  name: string;
  parentId: string | null;
  ownerId: string | null;
  archived: boolean;
  locked: boolean;
  autoArchiveDuration: 60 | 1440 | 4320 | 10080;
  invitable: boolean;
  members: Set<string>;
  createdAt: number;
  messageCount: number;
}

export interface StoredAttachment {
  id: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
  /** served by the fake's CDN route */
  url: string;
}

export interface MessageRevision {
  at: number;
  content: string;
  embeds: APIEmbed[];
  components: APIActionRowComponent<APIComponentInMessageActionRow>[];
  attachments: string[];
}

export interface FakeMessage {
  id: string;
  channelId: string;
  author: FakeUser;
  content: string;
  embeds: APIEmbed[];
  components: APIActionRowComponent<APIComponentInMessageActionRow>[];
  attachments: StoredAttachment[];
  flags: number;
  createdAt: number;
  editedAt: number | null;
  /** every state the message has shown, first one included: what a user watching it saw */
  revisions: MessageRevision[];
  deleted: boolean;
  /** set on interaction responses and follow-ups */
  webhookId: string | null;
  interactionId: string | null;
  mentions: string[];
}

export function isThread(channel: FakeChannel): boolean {
  return channel.type === ChannelType.PublicThread || channel.type === ChannelType.PrivateThread;
}

export function apiUser(user: FakeUser): APIUser {
  return {
    id: user.id,
    username: user.username,
    discriminator: '0',
    global_name: user.globalName,
    avatar: null,
    bot: user.bot,
  };
}

export function apiRole(role: FakeRole): APIRole {
  return {
    id: role.id,
    name: role.name,
    color: 0,
    colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
    hoist: false,
    icon: null,
    unicode_emoji: null,
    position: role.position,
    permissions: role.permissions.toString(),
    managed: false,
    mentionable: false,
    flags: 0 as RoleFlags,
  };
}

export function apiMember(member: FakeMember): APIGuildMember {
  return {
    user: apiUser(member.user),
    nick: null,
    avatar: null,
    banner: null,
    roles: member.roles,
    joined_at: member.joinedAt,
    premium_since: null,
    deaf: false,
    mute: false,
    flags: 0 as GuildMemberFlags,
    pending: false,
    communication_disabled_until: null,
  };
}

export function apiInteractionMember(member: FakeMember): APIInteractionGuildMember {
  return { ...apiMember(member), user: apiUser(member.user), permissions: member.permissions.toString() };
}

export function apiChannel(channel: FakeChannel, guildId: string): APIChannel {
  if (!isThread(channel)) {
    return {
      id: channel.id,
      type: ChannelType.GuildText,
      name: channel.name,
      guild_id: guildId,
      position: 0,
      permission_overwrites: [],
      parent_id: null,
      nsfw: false,
      topic: null,
      last_message_id: null,
      rate_limit_per_user: 0,
      default_auto_archive_duration: 60,
      flags: 0 as ChannelFlags,
    };
  }
  const thread: APIThreadChannel = {
    id: channel.id,
    type: channel.type as ChannelType.PublicThread | ChannelType.PrivateThread,
    name: channel.name,
    guild_id: guildId,
    parent_id: channel.parentId ?? undefined,
    owner_id: channel.ownerId ?? undefined,
    last_message_id: null,
    rate_limit_per_user: 0,
    message_count: channel.messageCount,
    member_count: channel.members.size,
    total_message_sent: channel.messageCount,
    flags: 0 as ChannelFlags,
    applied_tags: [],
    thread_metadata: {
      archived: channel.archived,
      auto_archive_duration: channel.autoArchiveDuration,
      archive_timestamp: new Date(channel.createdAt).toISOString(),
      locked: channel.locked,
      invitable: channel.invitable,
      create_timestamp: new Date(channel.createdAt).toISOString(),
    },
  };
  return thread;
}

export function apiAttachment(a: StoredAttachment): APIAttachment {
  return {
    id: a.id,
    filename: a.filename,
    size: a.bytes.length,
    url: a.url,
    proxy_url: a.url,
    content_type: a.contentType,
  };
}

export function apiMessage(message: FakeMessage, applicationId: string): APIMessage {
  return {
    id: message.id,
    channel_id: message.channelId,
    type: MessageType.Default,
    content: message.content,
    author: apiUser(message.author),
    timestamp: new Date(message.createdAt).toISOString(),
    edited_timestamp: message.editedAt === null ? null : new Date(message.editedAt).toISOString(),
    tts: false,
    mention_everyone: false,
    mentions: [],
    mention_roles: [],
    attachments: message.attachments.map(apiAttachment),
    embeds: message.embeds,
    components: message.components,
    pinned: false,
    flags: message.flags,
    ...(message.webhookId ? { webhook_id: message.webhookId, application_id: applicationId } : {}),
  };
}

export interface GuildState {
  id: string;
  name: string;
  ownerId: string;
  roles: Map<string, FakeRole>;
  members: Map<string, FakeMember>;
  channels: Map<string, FakeChannel>;
}

export function guildCreatePayload(guild: GuildState, joinedAt: string): GatewayGuildCreateDispatchData {
  const channels = [...guild.channels.values()];
  return {
    id: guild.id,
    name: guild.name,
    icon: null,
    splash: null,
    discovery_splash: null,
    owner_id: guild.ownerId,
    afk_channel_id: null,
    afk_timeout: 300,
    verification_level: GuildVerificationLevel.None,
    default_message_notifications: GuildDefaultMessageNotifications.OnlyMentions,
    explicit_content_filter: GuildExplicitContentFilter.Disabled,
    features: [],
    mfa_level: GuildMFALevel.None,
    application_id: null,
    system_channel_id: null,
    system_channel_flags: 0 as GuildSystemChannelFlags,
    rules_channel_id: null,
    vanity_url_code: null,
    description: null,
    banner: null,
    premium_tier: GuildPremiumTier.None,
    preferred_locale: 'en-US' as GatewayGuildCreateDispatchData['preferred_locale'],
    public_updates_channel_id: null,
    nsfw_level: GuildNSFWLevel.Default,
    premium_progress_bar_enabled: false,
    safety_alerts_channel_id: null,
    emojis: [],
    stickers: [],
    roles: [...guild.roles.values()].map(apiRole),
    hub_type: null,
    incidents_data: null,
    joined_at: joinedAt,
    large: false,
    unavailable: false,
    member_count: guild.members.size,
    voice_states: [],
    members: [...guild.members.values()].map(apiMember),
    channels: channels.filter((c) => !isThread(c)).map((c) => apiChannel(c, guild.id)),
    threads: channels.filter((c) => isThread(c) && !c.archived).map((c) => apiChannel(c, guild.id)) as APIThreadChannel[],
    presences: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
  } as GatewayGuildCreateDispatchData;
}

export const EPHEMERAL = MessageFlags.Ephemeral as number;
export const LOADING = MessageFlags.Loading as number;
