// Who may change things. Registering, removing, merging and cancelling need the configured operator role (by id
// or by name); members with Administrator or Manage Server pass too, as they can change the role itself. With no
// role configured only those administrators may. Asking, chatting and voting are open to everyone.

/** Manage Server and Administrator, as Discord's permission bits. */
const MANAGE_GUILD = 1n << 5n;
const ADMINISTRATOR = 1n << 3n;

export interface MemberAccess {
  roles: { id: string; name: string }[];
  /** the member's guild-wide permissions */
  permissions: bigint;
}

export function canOperate(member: MemberAccess, operatorRole: string | undefined): boolean {
  if ((member.permissions & (ADMINISTRATOR | MANAGE_GUILD)) !== 0n) return true;
  if (!operatorRole) return false;
  const wanted = operatorRole.trim().replace(/^@/, '').toLowerCase();
  return member.roles.some((r) => r.id === operatorRole || r.name.toLowerCase() === wanted);
}

/** The ephemeral answer to a member who may not do `action`. */
export function operatorDenial(action: string, operatorRole: string | undefined): string {
  if (!operatorRole) {
    return `Only server managers may ${action} until an operator role is configured. Ask an admin to set \`LORAFORGE_OPERATOR_ROLE\` (a role id or name) for the bot.`;
  }
  const role = /^\d{15,21}$/.test(operatorRole) ? `<@&${operatorRole}>` : `**${operatorRole}**`;
  return `You need the ${role} role to ${action}. Ask a server admin to give it to you; asking, chatting and voting are open to everyone.`;
}
