// A checkpoint's tokenizer and chat template: `@huggingface/tokenizers` (pure JS) over a local tokenizer.json, and
// `@huggingface/jinja` for the chat template, the same two packages transformers.js uses.
//
// Chat prompts are rendered, then encoded with add_special_tokens=false: templates emit BOS themselves, so letting
// the tokenizer's post-processor add one more would give the model a double BOS it never saw in training.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { InvalidFileError, InvalidInputError, NotFoundError } from '../errors.js';

/** The files a model directory may carry for its tokenizer; the builder copies exactly these. */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
  'chat_template.jinja',
] as const;

export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** append the assistant header so the model answers (default true) */
  addGenerationPrompt?: boolean;
  tools?: unknown[];
  /** further variables some templates read, e.g. `date_string` */
  variables?: Record<string, unknown>;
}

type Json = Record<string, unknown>;

/** tokenizer_config tokens are a string or, in older files, an AddedToken object `{content, ...}`. */
function tokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  return null;
}

function idList(value: unknown): number[] {
  if (typeof value === 'number' && Number.isInteger(value)) return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number' && Number.isInteger(v));
  return [];
}

/** `chat_template` is a string, or (older files) a list of `{name, template}` of which "default" is the chat one. */
function pickTemplate(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.filter((t): t is { name: string; template: string } => !!t && typeof t.template === 'string');
    return (named.find((t) => t.name === 'default') ?? named[0])?.template ?? null;
  }
  return null;
}

async function readJson(file: string, required: boolean): Promise<Json | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (!required) return null;
      throw new NotFoundError(`${path.dirname(file)} has no ${path.basename(file)}: copy it from the model's repository`);
    }
    throw err;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the top level is not an object');
    return parsed as Json;
  } catch (err) {
    throw new InvalidFileError(file, `not valid JSON: ${(err as Error).message}`);
  }
}

export interface TokenizerSources {
  tokenizerJson: Json;
  tokenizerConfig?: Json | null;
  /** contents of chat_template.jinja; wins over tokenizer_config's chat_template as in transformers */
  chatTemplate?: string | null;
  generationConfig?: Json | null;
}

/** Characters tokenized at a time when a long text is counted against a limit (ModelTokenizer.encode). */
const COUNT_PIECE = 4096;

/** The context of a scored continuation: a chat (rendered with the template and the assistant header), text or ids. */
export type ScoreContext = { kind: 'chat'; messages: ChatMessage[] } | { kind: 'text'; text: string } | { kind: 'ids'; ids: number[] };

export class ModelTokenizer {
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly bosTokenId: number | null;
  /** every id that ends a generation: tokenizer_config's eos_token plus generation_config's eos_token_id(s) */
  readonly eosTokenIds: readonly number[];
  readonly padTokenId: number | null;
  readonly chatTemplate: string | null;
  /** size of the id space (vocabulary plus added tokens) */
  readonly vocabSize: number;
  private readonly tokenizer: Tokenizer;
  private readonly specialTokens: Record<string, string> = {};
  private compiledTemplate: Template | null = null;

  constructor(sources: TokenizerSources) {
    const config = sources.tokenizerConfig ?? {};
    try {
      this.tokenizer = new Tokenizer(sources.tokenizerJson, config);
    } catch (err) {
      throw new InvalidFileError('tokenizer.json', `cannot be loaded: ${(err as Error).message}`, undefined, { cause: err });
    }
    for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token', 'sep_token', 'cls_token', 'mask_token']) {
      const token = tokenString(config[key]);
      if (token !== null) this.specialTokens[key] = token;
    }
    this.bosToken = this.specialTokens.bos_token ?? null;
    this.eosToken = this.specialTokens.eos_token ?? null;
    this.bosTokenId = this.idOf(this.bosToken);
    const eos = new Set<number>();
    const eosId = this.idOf(this.eosToken);
    if (eosId !== null) eos.add(eosId);
    for (const id of idList(sources.generationConfig?.eos_token_id)) eos.add(id);
    this.eosTokenIds = [...eos];
    this.padTokenId = this.idOf(this.specialTokens.pad_token ?? null) ?? idList(sources.generationConfig?.pad_token_id)[0] ?? null;
    this.chatTemplate = sources.chatTemplate ?? pickTemplate(config.chat_template);
    let maxId = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
  }

  /** Loads tokenizer.json (required), tokenizer_config.json, chat_template.jinja and generation_config.json. */
  static async load(dir: string): Promise<ModelTokenizer> {
    const tokenizerJson = await readJson(path.join(dir, 'tokenizer.json'), true);
    const tokenizerConfig = await readJson(path.join(dir, 'tokenizer_config.json'), false);
    const generationConfig = await readJson(path.join(dir, 'generation_config.json'), false);
    let chatTemplate: string | null = null;
    try {
      chatTemplate = await readFile(path.join(dir, 'chat_template.jinja'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return new ModelTokenizer({ tokenizerJson: tokenizerJson!, tokenizerConfig, chatTemplate, generationConfig });
  }

  private idOf(token: string | null): number | null {
    return token === null ? null : (this.tokenizer.token_to_id(token) ?? null);
  }

  /**
   * Token ids of `text`; `addSpecialTokens` runs the post-processor (e.g. prepends BOS). With `limit` (a model's
   * context), a text that surely holds far more tokens is refused having tokenized only about that many: tokenizing
   * costs 1–5 µs a character, so a megabyte prompt would otherwise take seconds only to be refused for its length.
   */
  encode(text: string, { addSpecialTokens = true, limit }: { addSpecialTokens?: boolean; limit?: number } = {}): number[] {
    if (limit !== undefined && this.surelyLonger(text, limit)) {
      throw new InvalidInputError(`the prompt holds far more than ${limit} tokens, this model's context: shorten it`);
    }
    return this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  /**
   * Whether `text` surely holds more than `limit` tokens: counted piece by piece (cut at white space where one is
   * near), stopping once the count is well past the limit. A cut can change the count by a few tokens, hence the
   * slack; a text under it is tokenized whole and judged on its exact count. Texts under 4 characters a token are
   * not counted first (few tokenizers average less, so they rarely pay for the count).
   */
  private surelyLonger(text: string, limit: number): boolean {
    if (text.length <= Math.max(COUNT_PIECE, 4 * limit)) return false;
    let count = 0;
    for (let at = 0, cuts = 1; at < text.length; cuts++) {
      let end = Math.min(text.length, at + COUNT_PIECE);
      const space = end < text.length ? text.lastIndexOf(' ', end) : -1;
      if (space > end - 64 && space > at) end = space;
      count += this.tokenizer.encode(text.slice(at, end), { add_special_tokens: false }).ids.length;
      if (count > 1.25 * limit + 8 * cuts) return true;
      at = end;
    }
    return false;
  }

  decode(ids: readonly number[], { skipSpecialTokens = true }: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return ''; // the library refuses an empty list
    return this.tokenizer.decode([...ids], { skip_special_tokens: skipSpecialTokens });
  }

  /** The vocabulary string of one id (e.g. "Ġworld"), for logprob displays; null when out of range. */
  tokenString(id: number): string | null {
    return this.tokenizer.id_to_token(id) ?? null;
  }

  tokenId(token: string): number | null {
    return this.tokenizer.token_to_id(token) ?? null;
  }

  get hasChatTemplate(): boolean {
    return this.chatTemplate !== null;
  }

  /** Renders the chat template (compiled once per tokenizer). */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === null) {
      throw new InvalidInputError(
        'this model has no chat template (neither tokenizer_config.json chat_template nor chat_template.jinja): send a plain completion prompt instead',
      );
    }
    if (this.compiledTemplate === null) {
      try {
        this.compiledTemplate = new Template(this.chatTemplate);
      } catch (err) {
        throw new InvalidFileError('chat template', `cannot be parsed: ${(err as Error).message}`);
      }
    }
    try {
      return this.compiledTemplate.render({
        ...this.specialTokens,
        ...options.variables,
        messages,
        tools: options.tools,
        add_generation_prompt: options.addGenerationPrompt ?? true,
      });
    } catch (err) {
      // raise_exception() in templates reports what the conversation breaks, e.g. roles that must alternate
      throw new InvalidInputError(`the chat template refused these messages: ${(err as Error).message}`);
    }
  }

  /** Chat prompt ids: render, then encode without adding special tokens (the template emits its own BOS). */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions & { limit?: number } = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false, limit: options.limit });
  }

  /**
   * Token ids of context + continuation, for teacher-forced scoring. The continuation is encoded on its own without
   * special tokens, so it is exactly the answer's tokens after the prompt (a chat prompt's template already put BOS
   * in; text gets BOS). `limit` (the context) refuses either part when it surely holds far more tokens.
   */
  encodeForScoring(context: ScoreContext, continuation: string, limit?: number): { ids: number[]; targetStart: number } {
    const prompt =
      context.kind === 'chat'
        ? this.encodeChat(context.messages, { addGenerationPrompt: true, limit })
        : context.kind === 'text'
          ? this.encode(context.text, { limit })
          : context.ids;
    const answer = this.encode(continuation, { addSpecialTokens: false, limit });
    return { ids: [...prompt, ...answer], targetStart: prompt.length };
  }

  /** An incremental detokenizer for streaming; `context` = the last prompt ids, so leading spaces come out right. */
  streamDecoder(options: { context?: readonly number[]; skipSpecialTokens?: boolean } = {}): StreamDecoder {
    return new StreamDecoder(this, options.context ?? [], options.skipSpecialTokens ?? true);
  }
}

/**
 * Turns a stream of token ids into text pieces that are never broken UTF-8. A byte-level token may hold part of a
 * multi-byte character, which decodes to U+FFFD until the rest arrives; text is held back until it decodes clean.
 * Text is decoded with a few tokens of context before it, so decoders that strip a leading space from the first
 * token (SentencePiece) or merge across tokens still give the same text as decoding everything at once.
 * (The prefix/read offset scheme of text-generation-inference.)
 */
export class StreamDecoder {
  private readonly ids: number[];
  private prefixOffset: number;
  private readOffset: number;

  constructor(
    private readonly tokenizer: ModelTokenizer,
    context: readonly number[],
    private readonly skipSpecialTokens: boolean,
  ) {
    this.ids = context.slice(-6);
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
  }

  private decode(from: number, to: number): string {
    return this.tokenizer.decode(this.ids.slice(from, to), { skipSpecialTokens: this.skipSpecialTokens });
  }

  /** Adds one generated id; returns the text it completes ('' while a character is still incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.decode(this.prefixOffset, this.readOffset);
    const text = this.decode(this.prefixOffset, this.ids.length);
    if (text.length > prefix.length && !text.endsWith('\uFFFD')) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return text.slice(prefix.length);
    }
    return '';
  }

  /** The text still held back (an incomplete character at the very end comes out as U+FFFD). */
  flush(): string {
    const prefix = this.decode(this.prefixOffset, this.readOffset);
    const text = this.decode(this.prefixOffset, this.ids.length);
    this.prefixOffset = this.readOffset = this.ids.length;
    return text.length > prefix.length ? text.slice(prefix.length) : '';
  }
}
