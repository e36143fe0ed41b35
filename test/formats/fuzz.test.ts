// Seeded corruptions of valid adapters (F32, F16, BF16) thrown at the one way in (openAdapterFiles) and at what
// registration, inspect and merge read: each is accepted or refused with a LoraforgeError of one bounded line,
// never another exception, a stack overflow or a hang. The CLI and the API get the same cases in
// test/service/hostile-adapters.test.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoraforgeError, MAX_MESSAGE_CHARS } from '../../src/errors.js';
import { inspectAdapter, openAdapterFiles, readAdapter } from '../../src/formats/peft.js';
import { corruptions, sourceAdapter, type Corruption, type Source } from '../helpers/corrupt-adapters.js';

let root: string;
const sources = new Map<Source['dtype'], Source>();
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'lf-adapter-fuzz-'));
  for (const [i, dtype] of (['F32', 'F16', 'BF16'] as const).entries()) sources.set(dtype, await sourceAdapter(path.join(root, `source-${dtype}`), dtype, 7 + i));
});
afterAll(() => rm(root, { recursive: true, force: true }));

/** Rejects when `work` takes longer than `ms`: a hang is a failure, not a stuck suite. */
function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still running after ${ms} ms (a hang)`)), ms)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** What each reader does with the case: 'ok', or the refusal's message. Anything but a LoraforgeError fails. */
async function outcome(read: () => Promise<unknown>): Promise<string> {
  try {
    await within(10_000, read());
    return 'ok';
  } catch (err) {
    if (!isLoraforgeError(err)) throw err;
    expect(err.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
    expect(err.message).not.toMatch(/[\r\n]/);
    expect(JSON.stringify(err.details ?? null).length).toBeLessThan(20_000);
    return err.message;
  }
}

async function check(c: Corruption, dir: string): Promise<void> {
  await c.make(dir);
  const opened = await outcome(() => openAdapterFiles(dir));
  const registered = await outcome(() => inspectAdapter(dir, { values: 'refuse' }));
  const read = await outcome(() => readAdapter(dir));
  const header = await outcome(() => inspectAdapter(dir));
  // registration and merge reading agree, and what the directory check refuses nothing reads
  expect({ case: c.name, registered: registered === 'ok' }).toEqual({ case: c.name, registered: read === 'ok' });
  if (opened !== 'ok') expect([registered, read, header].every((m) => m !== 'ok')).toBe(true);
  if (c.expect === 'refuse') expect({ case: c.name, refused: registered !== 'ok' }).toEqual({ case: c.name, refused: true });
  if (c.expect === 'accept') expect({ case: c.name, registered }).toEqual({ case: c.name, registered: 'ok' });
}

describe('corrupted adapters', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`accepts or refuses each corruption of a ${dtype} adapter in one bounded line`, async () => {
      const src = sources.get(dtype)!;
      const outside = path.join(root, `source-${dtype}`, 'adapter_model.safetensors');
      const cases = corruptions(src, outside, { seed: 1100 + dtype.length, random: 40 });
      for (const [i, c] of cases.entries()) await check(c, path.join(root, `${dtype}-${i}`));
    });
  }

  it('reads doubly wrapped keys as the module names they wrap, saying so', async () => {
    const src = sources.get('F32')!;
    const [wrapped] = corruptions(src, '', { seed: 1, random: 0 }).filter((c) => c.name.startsWith('keys wrapped twice'));
    const dir = path.join(root, 'wrapped');
    await wrapped!.make(dir);
    const plain = await readAdapter(path.join(root, 'source-F32'));
    const read = await readAdapter(dir);
    expect([...read.modules.keys()]).toEqual([...plain.modules.keys()]);
    expect([...read.modules.keys()][0]).toBe('model.layers.0.self_attn.q_proj');
    expect(read.modules.get('model.layers.1.self_attn.v_proj')!.B).toEqual(plain.modules.get('model.layers.1.self_attn.v_proj')!.B);
    expect(read.warnings).toContainEqual(expect.stringMatching(/^8 tensor key\(s\) carry PEFT's prefix twice/));
  });
});
