// Builds the `data` of an application-command (or autocomplete) interaction from the command definitions the bot
// registered with the fake, the way Discord's client does: it knows each option's type from the definition,
// refuses what the client would refuse (a missing required option, a value outside the choices or the bounds),
// and resolves attachments. A test names the command by its path ("merge ties") and gives plain values.
import {
  ApplicationCommandOptionType,
  ApplicationCommandType,
  type APIApplicationCommandInteractionDataOption,
  type APIAttachment,
  type APIChatInputApplicationCommandInteractionData,
  type RESTPutAPIApplicationCommandsJSONBody,
} from 'discord-api-types/v10';

export type CommandDefinition = RESTPutAPIApplicationCommandsJSONBody[number] & { id: string };
export type OptionValue = string | number | boolean | APIAttachment;

interface OptionDef {
  type: ApplicationCommandOptionType;
  name: string;
  required?: boolean;
  autocomplete?: boolean;
  choices?: { name: string; value: string | number }[];
  min_value?: number;
  max_value?: number;
  min_length?: number;
  max_length?: number;
  options?: OptionDef[];
}

function fail(path: string, message: string): never {
  throw new Error(`fake Discord: /${path}: ${message} (Discord's client would not send this interaction)`);
}

function leafValue(path: string, def: OptionDef, value: OptionValue, focused: boolean): APIApplicationCommandInteractionDataOption {
  const name = def.name;
  if (focused) {
    // while typing, Discord sends whatever is in the box so far, as a string for string options
    return { type: def.type, name, value: String(value), focused: true } as APIApplicationCommandInteractionDataOption;
  }
  switch (def.type) {
    case ApplicationCommandOptionType.String: {
      if (typeof value !== 'string') fail(path, `option ${name} must be a string`);
      if (def.min_length !== undefined && value.length < def.min_length) fail(path, `option ${name} is shorter than ${def.min_length}`);
      if (def.max_length !== undefined && value.length > def.max_length) fail(path, `option ${name} is longer than ${def.max_length}`);
      if (def.choices?.length && !def.choices.some((c) => c.value === value)) fail(path, `option ${name} must be one of its choices`);
      return { type: def.type, name, value };
    }
    case ApplicationCommandOptionType.Integer:
    case ApplicationCommandOptionType.Number: {
      if (typeof value !== 'number' || (def.type === ApplicationCommandOptionType.Integer && !Number.isInteger(value))) {
        fail(path, `option ${name} must be ${def.type === ApplicationCommandOptionType.Integer ? 'an integer' : 'a number'}`);
      }
      if (def.min_value !== undefined && value < def.min_value) fail(path, `option ${name} is below ${def.min_value}`);
      if (def.max_value !== undefined && value > def.max_value) fail(path, `option ${name} is above ${def.max_value}`);
      if (def.choices?.length && !def.choices.some((c) => c.value === value)) fail(path, `option ${name} must be one of its choices`);
      return { type: def.type, name, value };
    }
    case ApplicationCommandOptionType.Boolean:
      if (typeof value !== 'boolean') fail(path, `option ${name} must be a boolean`);
      return { type: def.type, name, value };
    case ApplicationCommandOptionType.Attachment:
      if (typeof value !== 'object') fail(path, `option ${name} must be an uploaded attachment (fake.upload)`);
      return { type: def.type, name, value: value.id };
    default:
      return fail(path, `option type ${def.type} is not supported by the fake`);
  }
}

export interface BuiltCommandData {
  data: APIChatInputApplicationCommandInteractionData;
}

/**
 * `path` is the command and its subcommand (group) names separated by spaces. With `focused`, builds an
 * autocomplete interaction: required options may be missing and the focused one carries partial text.
 */
export function buildCommandData(
  commands: CommandDefinition[],
  path: string,
  values: Record<string, OptionValue>,
  focused?: string,
): BuiltCommandData {
  const [commandName, ...subPath] = path.trim().split(/\s+/);
  const command = commands.find((c) => (c.type ?? ApplicationCommandType.ChatInput) === ApplicationCommandType.ChatInput && c.name === commandName);
  if (!command) fail(path, `no command named ${commandName} is registered (registered: ${commands.map((c) => c.name).join(', ') || 'none'})`);
  let defs = (('options' in command ? command.options : undefined) ?? []) as OptionDef[];
  const chain: OptionDef[] = [];
  for (const name of subPath) {
    const sub = defs.find((d) => d.name === name && (d.type === ApplicationCommandOptionType.Subcommand || d.type === ApplicationCommandOptionType.SubcommandGroup));
    if (!sub) fail(path, `no subcommand ${name}`);
    chain.push(sub);
    defs = sub.options ?? [];
  }
  if (defs.some((d) => d.type === ApplicationCommandOptionType.Subcommand || d.type === ApplicationCommandOptionType.SubcommandGroup)) {
    fail(path, 'a command with subcommands cannot be invoked without one');
  }
  for (const key of Object.keys(values)) {
    if (!defs.some((d) => d.name === key)) fail(path, `unknown option ${key} (options: ${defs.map((d) => d.name).join(', ')})`);
  }
  if (focused !== undefined) {
    const def = defs.find((d) => d.name === focused);
    if (!def?.autocomplete) fail(path, `option ${focused} does not have autocomplete`);
  }
  const attachments: Record<string, APIAttachment> = {};
  const leaves: APIApplicationCommandInteractionDataOption[] = [];
  for (const def of defs) {
    const value = values[def.name];
    if (value === undefined) {
      if (def.required && focused === undefined) fail(path, `required option ${def.name} is missing`);
      continue;
    }
    if (def.type === ApplicationCommandOptionType.Attachment && typeof value === 'object') attachments[value.id] = value;
    leaves.push(leafValue(path, def, value, def.name === focused));
  }
  let options: APIApplicationCommandInteractionDataOption[] = leaves;
  for (const sub of [...chain].reverse()) {
    options = [{ type: sub.type, name: sub.name, options } as APIApplicationCommandInteractionDataOption];
  }
  const data = {
    id: command.id,
    name: command.name,
    type: ApplicationCommandType.ChatInput,
    options,
    ...(Object.keys(attachments).length > 0 ? { resolved: { attachments } } : {}),
  } as APIChatInputApplicationCommandInteractionData;
  return { data };
}
