// Prompts (and scored rows) encoded in the tokenizer thread: the same ids as on the main thread, the same refusals
// (with their kind, so their HTTP status), the main thread free meanwhile, and a thread that dies replaced by the
// next prompt.
import type { Worker } from 'node:worker_threads';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, LoraforgeError, NotFoundError, UnavailableError } from '../../src/errors.js';
import { textFeature } from '../../src/inference/engine/text-features.js';
import { OffThreadTokenizer } from '../../src/inference/off-thread-tokenizer.js';
import { ModelTokenizer, type ChatMessage } from '../../src/inference/tokenizer.js';
import { fixture, haveFixtures } from '../helpers/fixtures.js';

const DEMO = path.resolve('assets/demo/base');
const CHAT: ChatMessage[] = [
  { role: 'system', content: 'Be terse.' },
  { role: 'user', content: 'How do I list files? 🤔 Ünïcödé' },
];

describe('OffThreadTokenizer', () => {
  let local: ModelTokenizer;
  let thread: OffThreadTokenizer;
  beforeAll(async () => {
    local = await ModelTokenizer.load(DEMO);
    thread = await OffThreadTokenizer.start(DEMO);
  });
  afterAll(async () => {
    await thread?.close();
  });

  it("computes a text router's feature as the main thread does", async () => {
    const long = Array.from({ length: 3000 }, (_, i) => `step ${i}: run ls -la /srv/${i % 37}`).join('\n');
    for (const text of ['Kill the process with PID 4321', '', long]) expect(await thread.textFeature(text)).toEqual(textFeature(text));
  });

  it('gives the ids the main thread gives, for chats and texts', async () => {
    expect(await thread.encodeChat(CHAT, 2048)).toEqual(local.encodeChat(CHAT));
    for (const text of ['Hello world!', 'def f(x):\n\treturn x ** 2', '日本語 👩‍👩‍👧']) expect(await thread.encode(text, 2048)).toEqual(local.encode(text));
    for (const context of [{ kind: 'chat' as const, messages: CHAT }, { kind: 'text' as const, text: 'Run ls' }, { kind: 'ids' as const, ids: [1, 2, 3] }]) {
      expect(await thread.encodeForScoring(context, 'ls -la', 2048)).toEqual(local.encodeForScoring(context, 'ls -la'));
    }
    if (haveFixtures) {
      const dir = fixture('tokenizers/smollm-135m-instruct-tfm-hitesh');
      const smol = await OffThreadTokenizer.start(dir);
      try {
        expect(await smol.encodeChat(CHAT, 2048)).toEqual((await ModelTokenizer.load(dir)).encodeChat(CHAT));
      } finally {
        await smol.close();
      }
    }
  });

  it('refuses what the main thread refuses, keeping the kind of error', async () => {
    const tooLong = thread.encode('list the files in /tmp '.repeat(20_000), 256);
    await expect(tooLong).rejects.toThrow("the prompt holds far more than 256 tokens, this model's context: shorten it");
    await expect(tooLong).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(thread.encodeChat([{ role: 'tool', content: 'x' }], 2048)).rejects.toThrow(/chat template refused/);
    expect(await thread.encode('still here', 2048)).toEqual(local.encode('still here'));
  });

  it('leaves the main thread free while it encodes', async () => {
    const order: string[] = [];
    const encoded = thread.encode('show the disk usage of every folder '.repeat(5_000), 1_000_000).then(() => order.push('encoded'));
    setImmediate(() => order.push('main thread turn'));
    await encoded;
    expect(order).toEqual(['main thread turn', 'encoded']);
  });

  it('fails what a dead thread held, and the next prompt starts a new one', async () => {
    const own = await OffThreadTokenizer.start(DEMO);
    try {
      const held = own.encode('x '.repeat(100_000), 1_000_000);
      await (own as unknown as { worker: Worker }).worker.terminate();
      await expect(held).rejects.toBeInstanceOf(UnavailableError);
      expect(await own.encode('again', 2048)).toEqual(local.encode('again'));
    } finally {
      await own.close();
    }
    await expect(own.encode('closed', 2048)).rejects.toBeInstanceOf(CancelledError);
  });

  it('says what is missing when the tokenizer cannot load', async () => {
    const failed = OffThreadTokenizer.start(path.resolve('assets/demo'));
    await expect(failed).rejects.toBeInstanceOf(LoraforgeError);
    await expect(failed).rejects.toMatchObject({ code: new NotFoundError('x').code, message: expect.stringMatching(/has no tokenizer.json/) });
  });
});
