import { describe, expect, it } from 'vitest';
import { DISCORD_CONTENT_LIMIT, splitMessage } from '../../src/bot/split.js';

/** A deterministic pseudo-random text of words, line breaks, paragraphs and code blocks. */
function sampleText(length: number, seed = 1): string {
  let state = seed;
  const rand = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const words = ['alpha', 'beta', 'gamma', 'merge', 'lora', 'adapter', 'x', 'supercalifragilistic', '🙂', 'é'];
  let out = '';
  while (out.length < length) {
    const r = rand();
    if (r < 0.02) out += '\n\n';
    else if (r < 0.05) out += '\n';
    else if (r < 0.06) out += '\n```python\nprint(1)\n';
    else if (r < 0.07) out += '\n```\n';
    else out += `${words[Math.floor(rand() * words.length)]} `;
  }
  return out.slice(0, length);
}

const fences = (s: string) => s.split('\n').filter((l) => l.trimStart().startsWith('```')).length;

describe('splitMessage', () => {
  it('keeps a short text whole', () => {
    expect(splitMessage('hello')).toEqual(['hello']);
    expect(splitMessage('x'.repeat(1900))).toEqual(['x'.repeat(1900)]);
  });

  it('cuts at a paragraph break before a line break or a space, and loses nothing', () => {
    const text = `${'a '.repeat(500)}\n\n${'b '.repeat(300)}\n${'c '.repeat(400)}`;
    const parts = splitMessage(text, 1500);
    expect(parts[0]!.endsWith('\n\n')).toBe(true);
    expect(parts.join('')).toBe(text);
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(1500);
  });

  it('cuts a text without spaces anywhere, but never inside a surrogate pair', () => {
    const emoji = '🙂'.repeat(1500); // 3000 UTF-16 units
    const parts = splitMessage(emoji, 1001);
    expect(parts.join('')).toBe(emoji);
    for (const p of parts) expect(p).toMatch(/^(🙂)+$/u);
  });

  it('closes a code block at a cut and reopens it, with its language, in the next part', () => {
    const code = `Here:\n\`\`\`python\n${'print("hello world")\n'.repeat(200)}\`\`\`\nDone.`;
    const parts = splitMessage(code, 1000);
    expect(parts.length).toBeGreaterThan(3);
    for (const p of parts) {
      expect(fences(p) % 2).toBe(0);
      expect(p.length).toBeLessThanOrEqual(1000);
    }
    expect(parts[1]!.startsWith('```python\n')).toBe(true);
  });

  it('every part fits Discord, for long random texts', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const parts = splitMessage(sampleText(20_000, seed));
      for (const p of parts) expect(p.length).toBeLessThanOrEqual(DISCORD_CONTENT_LIMIT);
    }
  });

  it('is stable as the text grows: a finished part never changes', () => {
    const text = sampleText(7000, 7);
    const final = splitMessage(text);
    for (let length = 1; length <= text.length; length += 13) {
      const parts = splitMessage(text.slice(0, length));
      // all but the last part are finished and must already be what the full text gives
      expect(parts.slice(0, -1)).toEqual(final.slice(0, parts.length - 1));
    }
  });
});
