import { describe, expect, it } from 'vitest';
import { DISCORD_CONTENT_LIMIT, splitMessage } from '../../src/bot/split.js';
import { StreamedText, type MessageSink } from '../../src/bot/streamed-text.js';

class RecordingSink implements MessageSink {
  readonly messages: string[][] = [['']];
  readonly files: { note: string; name: string; data: string }[] = [];
  async edit(index: number, content: string): Promise<void> {
    await new Promise((r) => setImmediate(r));
    if (index >= this.messages.length) throw new Error(`edit of message ${index} before it exists`);
    this.messages[index]!.push(content);
  }
  async create(content: string): Promise<void> {
    await new Promise((r) => setImmediate(r));
    this.messages.push([content]);
  }
  async attach(note: string, file: { name: string; data: Buffer }): Promise<void> {
    this.files.push({ note, name: file.name, data: file.data.toString('utf8') });
  }
  final(): string[] {
    return this.messages.map((m) => m.at(-1)!);
  }
}

const words = (n: number) => Array.from({ length: n }, (_, k) => `word${k}`).join(' ');

async function stream(text: string, sink: RecordingSink, step = 37, maxParts = 3): Promise<void> {
  const out = new StreamedText(sink, { minIntervalMs: 0, maxParts });
  for (let end = step; end < text.length; end += step) {
    out.set(text.slice(0, end));
    if (end % (step * 5) === 0) await new Promise((r) => setImmediate(r));
  }
  await out.finish(text);
}

describe('StreamedText', () => {
  it('edits one message as a short answer grows, with a cursor until the end', async () => {
    const sink = new RecordingSink();
    await stream(words(80), sink);
    expect(sink.final()).toEqual([words(80)]);
    const shown = sink.messages[0]!.slice(1);
    expect(shown.length).toBeGreaterThan(1);
    expect(shown.slice(0, -1).every((c) => c.endsWith(' ▌'))).toBe(true);
  });

  it('continues a long answer in new messages, each frozen at a clean cut', async () => {
    const text = words(700); // about 5,500 characters: three parts
    const sink = new RecordingSink();
    await stream(text, sink);
    expect(sink.final()).toEqual(splitMessage(text));
    expect(sink.files).toEqual([]);
    for (const message of sink.messages) for (const c of message) expect(c.length).toBeLessThanOrEqual(DISCORD_CONTENT_LIMIT);
  });

  it('past maxParts stops growing and attaches the full text', async () => {
    const text = words(1500); // about 12,000 characters
    const sink = new RecordingSink();
    await stream(text, sink, 101, 2);
    const parts = splitMessage(text);
    expect(sink.messages).toHaveLength(2);
    expect(sink.final()[0]).toBe(parts[0]);
    expect(sink.final()[1]).toBe(`${parts[1]}\n… *(the rest is in the attached file)*`);
    expect(sink.files).toEqual([{ note: `Full answer: ${text.length} characters.`, name: 'answer.md', data: text }]);
  });

  it('shows the final text even when finish comes right after the last update', async () => {
    const sink = new RecordingSink();
    const out = new StreamedText(sink, { minIntervalMs: 0 });
    out.set('a');
    out.set('ab');
    await out.finish('abc');
    expect(sink.final()).toEqual(['abc']);
  });

  it('reports a failed edit from finish', async () => {
    const sink = new RecordingSink();
    sink.edit = async () => {
      throw new Error('Unknown Message');
    };
    const out = new StreamedText(sink, { minIntervalMs: 0 });
    out.set('a');
    await expect(out.finish('ab')).rejects.toThrow('Unknown Message');
  });
});
