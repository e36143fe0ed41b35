import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidInputError, NotFoundError } from '../../src/errors.js';
import { makeDemoTokenizer } from '../../src/inference/demo-tokenizer.js';
import { ModelTokenizer, type ChatMessage } from '../../src/inference/tokenizer.js';
import { fixture, fixturesSkipReason, haveFixtures } from '../helpers/fixtures.js';

const TEXTS = [
  'Hello world!',
  'Ünïcödé ✓ 🤖 日本語 and 中文 numbers 12345 ½',
  'def f(x):\n\treturn x ** 2  # tabs, newlines\r\n',
  "it's LoRA's day 👩‍👩‍👧 (a joined emoji) — dashes…",
  '   leading and trailing spaces   ',
];

const CHAT: ChatMessage[] = [
  { role: 'system', content: 'Be terse.' },
  { role: 'user', content: 'How do I list files?' },
  { role: 'assistant', content: 'ls -la' },
  { role: 'user', content: 'And hidden ones? 🤔' },
];

function streamAll(tok: ModelTokenizer, ids: number[], context: number[] = []): string[] {
  const decoder = tok.streamDecoder({ context });
  const pieces = ids.map((id) => decoder.push(id));
  pieces.push(decoder.flush());
  return pieces;
}

function expectStreamMatches(tok: ModelTokenizer, text: string): void {
  const ids = tok.encode(text, { addSpecialTokens: false });
  const pieces = streamAll(tok, ids);
  for (const piece of pieces) expect(piece).not.toContain('\uFFFD');
  expect(pieces.join('')).toBe(text);
}

describe.skipIf(!haveFixtures)(`real tokenizers from ../shared/fixtures ${haveFixtures ? '' : fixturesSkipReason}`, () => {
  let smol: ModelTokenizer;
  let gpt2: ModelTokenizer;
  beforeAll(async () => {
    smol = await ModelTokenizer.load(fixture('tokenizers/smollm-135m-instruct-tfm-hitesh'));
    gpt2 = await ModelTokenizer.load(fixture('tokenizers/gpt2-blackspy369'));
  });

  it('refuses a text far over a limit having tokenized about the limit of it, and encodes one near it exactly', () => {
    const tokenized = vi.spyOn(Tokenizer.prototype, 'encode');
    const texts = (): string[] => tokenized.mock.calls.map((call: unknown[]) => String(call[0]));
    try {
      for (const tok of [smol, gpt2]) {
        const huge = 'Show the disk usage of each folder under /var/log, sorted. '.repeat(16_000); // ~1 MB
        tokenized.mockClear();
        expect(() => tok.encode(huge, { limit: 1000 })).toThrow(new InvalidInputError("the prompt holds far more than 1000 tokens, this model's context: shorten it"));
        const chars = texts().reduce((sum, text) => sum + text.length, 0);
        expect(chars).toBeLessThan(3 * 4096);
        if (tok.hasChatTemplate) expect(() => tok.encodeChat([{ role: 'user', content: huge }], { limit: 1000 })).toThrow(/far more than 1000 tokens/);
        // counted in pieces, then encoded whole: the same ids as without a limit, even past it (the caller says by
        // how much)
        const near = 'Show the disk usage of each folder under /var/log, sorted. '.repeat(150);
        const ids = tok.encode(near);
        const limit = Math.ceil(ids.length / 1.15);
        tokenized.mockClear();
        expect(tok.encode(near, { limit })).toEqual(ids);
        expect(texts().some((text) => text.length < near.length)).toBe(true); // it was counted in pieces
        expect(tok.encode('Hello world', { limit: 2 })).toEqual(tok.encode('Hello world'));
      }
    } finally {
      tokenized.mockRestore();
    }
  });

  it('round-trips Unicode, emoji, CJK and whitespace', () => {
    for (const tok of [smol, gpt2]) {
      for (const text of TEXTS) expect(tok.decode(tok.encode(text))).toBe(text);
    }
  });

  it('reads special tokens and ids from tokenizer_config.json', () => {
    expect(smol.vocabSize).toBe(49152);
    expect(smol.bosToken).toBe('<|im_start|>');
    expect(smol.eosTokenIds).toEqual([smol.tokenId('<|im_end|>')]);
    expect(smol.padTokenId).toBe(smol.tokenId('<|im_end|>'));
    expect(gpt2.eosTokenIds).toEqual([50256]);
    expect(gpt2.hasChatTemplate).toBe(false);
    expect(() => gpt2.applyChatTemplate(CHAT)).toThrow(InvalidInputError);
  });

  it("renders SmolLM's ChatML template and encodes it without adding special tokens", () => {
    const prompt = smol.applyChatTemplate(CHAT);
    expect(prompt).toBe(
      '<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHow do I list files?<|im_end|>\n' +
        '<|im_start|>assistant\nls -la<|im_end|>\n<|im_start|>user\nAnd hidden ones? 🤔<|im_end|>\n<|im_start|>assistant\n',
    );
    const ids = smol.encodeChat(CHAT);
    const imStart = smol.tokenId('<|im_start|>')!;
    expect(ids[0]).toBe(imStart);
    expect(ids.filter((id) => id === imStart)).toHaveLength(5);
    expect(smol.decode(ids, { skipSpecialTokens: false })).toBe(prompt);
    expect(smol.applyChatTemplate(CHAT.slice(0, 2), { addGenerationPrompt: false }).endsWith('<|im_end|>\n')).toBe(true);
  });

  it('streams text piece by piece with no broken characters', () => {
    for (const tok of [smol, gpt2]) for (const text of TEXTS) expectStreamMatches(tok, text);
    // a lone partial character is held back until flush
    const ids = smol.encode('🤖', { addSpecialTokens: false });
    expect(ids.length).toBeGreaterThan(1);
    const decoder = smol.streamDecoder();
    expect(decoder.push(ids[0]!)).toBe('');
    expect(decoder.flush()).toBe('\uFFFD');
  });
});

describe('demo tokenizer (Llama-3 shaped: BOS post-processor, template emits BOS)', () => {
  let tok: ModelTokenizer;
  let dir: string;
  const files = makeDemoTokenizer();
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'loraforge-tok-'));
    await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizerJson));
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfig));
    await writeFile(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [files.eosTokenId, files.eotTokenId] }));
    tok = await ModelTokenizer.load(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads from disk, has trained merges, and round-trips', () => {
    expect(tok.vocabSize).toBe(files.vocabSize);
    expect(tok.vocabSize).toBeGreaterThan(256 + 100);
    // merges make common words single tokens
    expect(tok.encode(' the', { addSpecialTokens: false })).toHaveLength(1);
    for (const text of TEXTS) expect(tok.decode(tok.encode(text))).toBe(text);
    for (const text of TEXTS) expectStreamMatches(tok, text);
  });

  it('adds BOS to plain prompts and exactly one BOS to chat prompts', () => {
    expect(tok.bosTokenId).toBe(files.bosTokenId);
    expect(tok.encode('hi')[0]).toBe(files.bosTokenId);
    expect(tok.encode('hi', { addSpecialTokens: false })[0]).not.toBe(files.bosTokenId);
    const ids = tok.encodeChat(CHAT);
    expect(ids[0]).toBe(files.bosTokenId);
    expect(ids.filter((id) => id === files.bosTokenId)).toHaveLength(1);
    const prompt = tok.applyChatTemplate(CHAT);
    expect(prompt.startsWith('<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe terse.<|eot_id|>')).toBe(true);
    expect(prompt.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
    expect(tok.decode(ids, { skipSpecialTokens: false })).toBe(prompt);
  });

  it('merges eos ids from tokenizer_config and generation_config', () => {
    expect([...tok.eosTokenIds].sort()).toEqual([files.eosTokenId, files.eotTokenId].sort());
  });

  it('turns a template raise_exception into a clear input error', () => {
    expect(() => tok.applyChatTemplate([{ role: 'tool', content: 'x' }])).toThrow(/chat template refused.*roles must be/);
  });

  it('streams with prompt context', () => {
    const prompt = tok.encode('Run ls', { addSpecialTokens: false });
    const ids = tok.encode(' -la now', { addSpecialTokens: false });
    expect(streamAll(tok, ids, prompt).join('')).toBe(' -la now');
  });

  it('says which file is missing', async () => {
    await expect(ModelTokenizer.load(path.join(dir, 'nope'))).rejects.toThrow(NotFoundError);
    await expect(ModelTokenizer.load(path.join(dir, 'nope'))).rejects.toThrow(/has no tokenizer.json/);
  });
});

/** A Llama-2 / TinyLlama-shaped SentencePiece BPE: ▁ for spaces, byte fallback, a decoder that strips one leading space. */
function sentencePieceTokenizer(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  let id = 259;
  for (const ch of '▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,!?') vocab[ch] = id++;
  const merges = ['▁ H', 'e l', 'el l', 'ell o', '▁H ello', '▁ w', 'o r', 'or l', 'orl d', '▁w orld'];
  for (const m of merges) vocab[m.replace(' ', '')] = id++;
  const special = (tid: number, content: string) => ({ id: tid, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  };
}

describe('SentencePiece-style tokenizer (Llama 2, TinyLlama): byte fallback and a stripped leading space', () => {
  const tok = new ModelTokenizer({ tokenizerJson: sentencePieceTokenizer(), tokenizerConfig: { bos_token: '<s>', eos_token: '</s>' } });

  it('encodes with byte fallback and round-trips', () => {
    const ids = tok.encode('Hello world 🤖 日本', { addSpecialTokens: false });
    expect(ids.slice(0, 2)).toEqual([tok.tokenId('▁Hello'), tok.tokenId('▁world')]);
    expect(ids).toContain(tok.tokenId('<0xF0>'));
    expect(tok.decode(ids)).toBe('Hello world 🤖 日本');
    expect(tok.encode('Hello')[0]).toBe(tok.bosTokenId);
  });

  it('streams the spaces between words and whole characters only', () => {
    const ids = tok.encode('Hello world 🤖 日本', { addSpecialTokens: false });
    // decoded one by one, "▁world" would lose its space to the Strip decoder
    expect(tok.decode([ids[1]!])).toBe('world');
    const pieces = streamAll(tok, ids);
    for (const piece of pieces) expect(piece).not.toContain('\uFFFD');
    expect(pieces.join('')).toBe('Hello world 🤖 日本');
    // continuing after a prompt keeps the space of the first generated word
    const prompt = tok.encode('Hello', { addSpecialTokens: false });
    expect(streamAll(tok, tok.encode('Hello world', { addSpecialTokens: false }).slice(prompt.length), prompt).join('')).toBe(' world');
  });
});
