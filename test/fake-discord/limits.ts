// Discord's documented limits on what a bot may send, checked the way Discord checks them: a list of field errors
// that the fake answers with `50035 Invalid Form Body` (nested `errors`, as the real API shapes them, so
// discord.js's DiscordAPIError prints the same text a real bot would see).
import { ApplicationCommandOptionType, ApplicationCommandType, ComponentType } from 'discord-api-types/v10';

export interface FieldError {
  /** dotted path, e.g. `embeds.0.description` */
  path: string;
  code: string;
  message: string;
}

export const LIMITS = {
  content: 2000,
  embeds: 10,
  embedTitle: 256,
  embedDescription: 4096,
  embedFields: 25,
  embedFieldName: 256,
  embedFieldValue: 1024,
  embedFooter: 2048,
  embedAuthor: 256,
  embedTotal: 6000,
  actionRows: 5,
  rowComponents: 5,
  customId: 100,
  buttonLabel: 80,
  attachments: 10,
  choices: 25,
  choiceName: 100,
  choiceValue: 100,
  commandName: 32,
  commandDescription: 100,
  commandOptions: 25,
  commandTotalChars: 8000,
  chatInputCommands: 100,
  threadName: 100,
} as const;

type Json = Record<string, unknown>;

const tooLong = (path: string, max: number): FieldError => ({
  path,
  code: 'BASE_TYPE_MAX_LENGTH',
  message: `Must be ${max} or fewer in length.`,
});
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const obj = (v: unknown): Json => (v && typeof v === 'object' ? (v as Json) : {});

function checkEmbeds(embeds: unknown[], errors: FieldError[]): void {
  if (embeds.length > LIMITS.embeds) errors.push({ path: 'embeds', code: 'BASE_TYPE_MAX_LENGTH', message: `Must be ${LIMITS.embeds} or fewer in length.` });
  let total = 0;
  embeds.forEach((raw, i) => {
    const e = obj(raw);
    const p = `embeds.${i}`;
    const title = str(e.title);
    const description = str(e.description);
    const footer = str(obj(e.footer).text);
    const author = str(obj(e.author).name);
    if (title.length > LIMITS.embedTitle) errors.push(tooLong(`${p}.title`, LIMITS.embedTitle));
    if (description.length > LIMITS.embedDescription) errors.push(tooLong(`${p}.description`, LIMITS.embedDescription));
    if (footer.length > LIMITS.embedFooter) errors.push(tooLong(`${p}.footer.text`, LIMITS.embedFooter));
    if (author.length > LIMITS.embedAuthor) errors.push(tooLong(`${p}.author.name`, LIMITS.embedAuthor));
    total += title.length + description.length + footer.length + author.length;
    const fields = arr(e.fields);
    if (fields.length > LIMITS.embedFields) errors.push(tooLong(`${p}.fields`, LIMITS.embedFields));
    fields.forEach((rawField, j) => {
      const f = obj(rawField);
      const name = str(f.name);
      const value = str(f.value);
      if (name.length === 0) errors.push({ path: `${p}.fields.${j}.name`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
      if (value.length === 0) errors.push({ path: `${p}.fields.${j}.value`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
      if (name.length > LIMITS.embedFieldName) errors.push(tooLong(`${p}.fields.${j}.name`, LIMITS.embedFieldName));
      if (value.length > LIMITS.embedFieldValue) errors.push(tooLong(`${p}.fields.${j}.value`, LIMITS.embedFieldValue));
      total += name.length + value.length;
    });
  });
  if (total > LIMITS.embedTotal) {
    errors.push({ path: 'embeds', code: 'MAX_EMBED_SIZE_EXCEEDED', message: `Embed size exceeds maximum size of ${LIMITS.embedTotal}` });
  }
}

function checkComponents(rows: unknown[], errors: FieldError[]): void {
  if (rows.length > LIMITS.actionRows) errors.push(tooLong('components', LIMITS.actionRows));
  const seen = new Set<string>();
  rows.forEach((rawRow, i) => {
    const row = obj(rawRow);
    if (row.type !== ComponentType.ActionRow) {
      errors.push({ path: `components.${i}.type`, code: 'UNION_TYPE_CHOICES', message: 'Top-level components must be action rows' });
      return;
    }
    const children = arr(row.components);
    if (children.length === 0 || children.length > LIMITS.rowComponents) {
      errors.push({ path: `components.${i}.components`, code: 'BASE_TYPE_BAD_LENGTH', message: `Must be between 1 and ${LIMITS.rowComponents} in length.` });
    }
    children.forEach((rawChild, j) => {
      const c = obj(rawChild);
      const p = `components.${i}.components.${j}`;
      const customId = c.custom_id;
      if (typeof customId === 'string') {
        if (customId.length === 0 || customId.length > LIMITS.customId) errors.push(tooLong(`${p}.custom_id`, LIMITS.customId));
        if (seen.has(customId)) errors.push({ path: `${p}.custom_id`, code: 'COMPONENT_CUSTOM_ID_DUPLICATED', message: 'Component custom id cannot be duplicated' });
        seen.add(customId);
      } else if (c.type === ComponentType.Button && c.style !== 5 && c.style !== 6) {
        errors.push({ path: `${p}.custom_id`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
      }
      if (str(c.label).length > LIMITS.buttonLabel) errors.push(tooLong(`${p}.label`, LIMITS.buttonLabel));
    });
  });
}

/** Checks a message create/edit body against the size limits (emptiness is `isEmptyMessage`'s job). */
export function validateMessage(body: unknown, fileCount: number): FieldError[] {
  const b = obj(body);
  const errors: FieldError[] = [];
  if (b.content != null && typeof b.content !== 'string') errors.push({ path: 'content', code: 'BASE_TYPE_STRING', message: 'Must be a string.' });
  if (str(b.content).length > LIMITS.content) errors.push(tooLong('content', LIMITS.content));
  checkEmbeds(arr(b.embeds), errors);
  checkComponents(arr(b.components), errors);
  if (fileCount > LIMITS.attachments || arr(b.attachments).length > LIMITS.attachments) errors.push(tooLong('attachments', LIMITS.attachments));
  return errors;
}

/** Discord refuses a new message with nothing in it (50006), which discord.js reports as "Cannot send an empty message". */
export function isEmptyMessage(body: unknown, fileCount: number): boolean {
  const b = obj(body);
  return str(b.content).length === 0 && arr(b.embeds).length === 0 && arr(b.components).length === 0 && fileCount === 0 && arr(b.sticker_ids).length === 0 && b.poll == null;
}

export function validateChoices(choices: unknown): FieldError[] {
  const list = arr(choices);
  const errors: FieldError[] = [];
  if (list.length > LIMITS.choices) errors.push(tooLong('data.choices', LIMITS.choices));
  list.forEach((raw, i) => {
    const c = obj(raw);
    const name = str(c.name);
    if (name.length < 1 || name.length > LIMITS.choiceName) errors.push({ path: `data.choices.${i}.name`, code: 'BASE_TYPE_BAD_LENGTH', message: `Must be between 1 and ${LIMITS.choiceName} in length.` });
    if (typeof c.value === 'string' && c.value.length > LIMITS.choiceValue) errors.push(tooLong(`data.choices.${i}.value`, LIMITS.choiceValue));
  });
  return errors;
}

const NAME_RE = /^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$/u;

function checkName(name: unknown, path: string, errors: FieldError[]): string {
  const n = str(name);
  if (!NAME_RE.test(n) || n !== n.toLowerCase()) {
    errors.push({ path: `${path}.name`, code: 'APPLICATION_COMMAND_INVALID_NAME', message: `Command name is invalid: ${JSON.stringify(n)} (1-32 lowercase letters, digits, - or _)` });
  }
  return n;
}

function checkDescription(description: unknown, path: string, errors: FieldError[]): string {
  const d = str(description);
  if (d.length < 1 || d.length > LIMITS.commandDescription) {
    errors.push({ path: `${path}.description`, code: 'BASE_TYPE_BAD_LENGTH', message: `Must be between 1 and ${LIMITS.commandDescription} in length.` });
  }
  return d;
}

/** Returns the characters the option tree counts towards the per-command limit. */
function checkOptions(options: unknown[], path: string, errors: FieldError[], depth: number): number {
  let chars = 0;
  if (options.length > LIMITS.commandOptions) errors.push(tooLong(`${path}.options`, LIMITS.commandOptions));
  const names = new Set<string>();
  let sawOptional = false;
  options.forEach((raw, i) => {
    const o = obj(raw);
    const p = `${path}.options.${i}`;
    const name = checkName(o.name, p, errors);
    chars += name.length + checkDescription(o.description, p, errors).length;
    if (names.has(name)) errors.push({ path: `${p}.name`, code: 'APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS', message: 'Option names must be unique' });
    names.add(name);
    const type = o.type as ApplicationCommandOptionType;
    const isSub = type === ApplicationCommandOptionType.Subcommand || type === ApplicationCommandOptionType.SubcommandGroup;
    if (isSub) {
      if (depth >= 2 || (type === ApplicationCommandOptionType.SubcommandGroup && depth >= 1)) {
        errors.push({ path: `${p}.type`, code: 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID', message: 'Subcommands nest at most one group deep' });
      }
      chars += checkOptions(arr(o.options), p, errors, depth + 1);
      return;
    }
    if (o.required === true && sawOptional) {
      errors.push({ path: `${p}.required`, code: 'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID', message: 'Required options must be placed before non-required options' });
    }
    if (o.required !== true) sawOptional = true;
    const choices = arr(o.choices);
    if (choices.length > 0 && o.autocomplete === true) {
      errors.push({ path: `${p}.autocomplete`, code: 'AUTOCOMPLETE_CHOICES_CONFLICT', message: 'Autocomplete and choices cannot both be set' });
    }
    if (choices.length > LIMITS.choices) errors.push(tooLong(`${p}.choices`, LIMITS.choices));
    for (const rawChoice of choices) {
      const c = obj(rawChoice);
      chars += str(c.name).length + String(c.value ?? '').length;
    }
  });
  return chars;
}

/** Checks a bulk-overwrite body of application commands (PUT .../commands). */
export function validateCommands(body: unknown): FieldError[] {
  const errors: FieldError[] = [];
  if (!Array.isArray(body)) return [{ path: '(body)', code: 'BASE_TYPE_ARRAY', message: 'Must be an array' }];
  const seen = new Set<string>();
  let chatInput = 0;
  body.forEach((raw, i) => {
    const c = obj(raw);
    const p = String(i);
    const type = (c.type as ApplicationCommandType | undefined) ?? ApplicationCommandType.ChatInput;
    const name = checkName(c.name, p, errors);
    if (seen.has(`${type}:${name}`)) errors.push({ path: `${p}.name`, code: 'APPLICATION_COMMANDS_DUPLICATE_NAME', message: `Application command names must be unique (${name})` });
    seen.add(`${type}:${name}`);
    if (type !== ApplicationCommandType.ChatInput) return;
    chatInput += 1;
    const chars = name.length + checkDescription(c.description, p, errors).length + checkOptions(arr(c.options), p, errors, 0);
    if (chars > LIMITS.commandTotalChars) {
      errors.push({ path: p, code: 'APPLICATION_COMMAND_TOO_LARGE', message: `Command exceeds maximum size (${LIMITS.commandTotalChars})` });
    }
  });
  if (chatInput > LIMITS.chatInputCommands) errors.push(tooLong('(body)', LIMITS.chatInputCommands));
  return errors;
}

/** The nested `errors` object of a 50035 answer. */
export function formErrors(errors: FieldError[]): Json {
  const root: Json = {};
  for (const e of errors) {
    let node = root;
    for (const key of e.path.split('.')) node = (node[key] ??= {}) as Json;
    ((node._errors ??= []) as unknown[]).push({ code: e.code, message: e.message });
  }
  return root;
}
