// The bytes one token stands for, for logprob displays (OpenAI reports each token's text and UTF-8 bytes; a
// byte-level token may hold only part of a character). Covers byte-level BPE vocabularies (GPT-2 / Llama 3 style,
// written in GPT-2's byte→character table), SentencePiece pieces ("▁" for space, "<0xNN>" byte fallback), and
// anything else by decoding.

function byteLevelTable(): Map<string, number> {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table = new Map<string, number>();
  for (const b of printable) table.set(String.fromCodePoint(b), b);
  let next = 0;
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) table.set(String.fromCodePoint(256 + next++), b);
  return table;
}

const BYTE_LEVEL = byteLevelTable();
const BYTE_FALLBACK = /^<0x([0-9A-Fa-f]{2})>$/;
const encoder = new TextEncoder();

export interface TokenSource {
  tokenString(id: number): string | null;
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
}

export function tokenBytes(tokenizer: TokenSource, id: number): Uint8Array {
  const piece = tokenizer.tokenString(id);
  if (piece === null) return new Uint8Array(0);
  const fallback = BYTE_FALLBACK.exec(piece);
  if (fallback) return Uint8Array.of(parseInt(fallback[1]!, 16));
  if (piece.includes('\u2581')) return encoder.encode(piece.replaceAll('\u2581', ' '));
  const text = tokenizer.decode([id], { skipSpecialTokens: false });
  if (!text.includes('\uFFFD')) return encoder.encode(text);
  const chars = [...piece];
  if (chars.every((c) => BYTE_LEVEL.has(c))) return Uint8Array.from(chars, (c) => BYTE_LEVEL.get(c)!);
  return encoder.encode(text);
}

/** Caches each token's bytes and display text (the bytes as UTF-8, broken characters shown as U+FFFD). */
export class TokenTexts {
  private readonly cache = new Map<number, { text: string; bytes: number[] }>();
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  constructor(private readonly tokenizer: TokenSource) {}

  get(id: number): { text: string; bytes: number[] } {
    let entry = this.cache.get(id);
    if (!entry) {
      const bytes = tokenBytes(this.tokenizer, id);
      entry = { text: this.decoder.decode(bytes), bytes: Array.from(bytes) };
      this.cache.set(id, entry);
    }
    return entry;
  }
}
