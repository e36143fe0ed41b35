// What every feature of the bot is built with: the API client, the caches and trackers, the settings.
import type { GuildMember, PermissionsBitField } from 'discord.js';
import type { LoraforgeClient } from '../client/index.js';
import { ForbiddenError } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { AdapterCache } from './adapter-cache.js';
import type { ChatStore } from './chat-store.js';
import type { MergeTracker } from './merge-tracker.js';
import { canOperate, operatorDenial } from './permissions.js';

export interface BotSettings {
  /** role id or name needed to register, remove, merge and cancel */
  operatorRole?: string;
  /** least time between two edits of one message */
  editIntervalMs: number;
}

export interface BotContext {
  api: LoraforgeClient;
  log: Logger;
  adapters: AdapterCache;
  merges: MergeTracker;
  chats: ChatStore;
  settings: BotSettings;
}

/** Throws the denial (shown privately) unless the member may change the registry or the queue. */
export function requireOperator(
  interaction: { member: GuildMember; memberPermissions: Readonly<PermissionsBitField> | null },
  settings: BotSettings,
  action: string,
): void {
  const { member } = interaction;
  // the interaction's own permissions include channel overwrites; the member's are the guild-wide fallback
  const permissions = (interaction.memberPermissions ?? member.permissions).bitfield;
  const access = { roles: member.roles.cache.map((r) => ({ id: r.id, name: r.name })), permissions };
  if (!canOperate(access, settings.operatorRole)) throw new ForbiddenError(operatorDenial(action, settings.operatorRole));
}
