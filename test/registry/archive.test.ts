// The archive reader's parts that the process-level test (test/service/hostile-uploads.test.ts) does not pin
// down alone: the kind read from the first bytes, the ratio's floor, and clip().
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { create as createTar } from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clip, InvalidFileError } from '../../src/errors.js';
import { extractAdapter, RATIO_FLOOR, sniffArchive } from '../../src/registry/archive.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lf-archive-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tarGz(files: Record<string, Buffer | string>): Promise<string> {
  const src = path.join(dir, 'src');
  await rm(src, { recursive: true, force: true });
  await import('node:fs/promises').then((fs) => fs.mkdir(src));
  for (const [name, data] of Object.entries(files)) await writeFile(path.join(src, name), data);
  const file = path.join(dir, 'a.tgz');
  await createTar({ gzip: true, file, cwd: src, portable: true }, Object.keys(files));
  return file;
}

describe('sniffArchive', () => {
  it('reads zip, gzip and plain tar from their first bytes, nothing else', () => {
    expect(sniffArchive(Buffer.from('PK\x03\x04rest', 'latin1'))).toBe('zip');
    expect(sniffArchive(Buffer.from('PK\x05\x06', 'latin1'))).toBe('zip');
    expect(sniffArchive(gzipSync('x'))).toBe('tar.gz');
    const tar = Buffer.alloc(512);
    tar.write('ustar', 257);
    expect(sniffArchive(tar)).toBe('tar');
    expect(sniffArchive(Buffer.from('{"name": "x"}'))).toBeUndefined();
    expect(sniffArchive(Buffer.alloc(0))).toBeUndefined();
    expect(sniffArchive(Buffer.from('PK'))).toBeUndefined();
  });
});

describe('extractAdapter budget', () => {
  const limits = { bytes: 1 << 30, ratio: 100, entries: 1000 };

  it('lets content compress well below the floor, refuses it past the floor', async () => {
    // 8 MiB of zeros (about 8 KiB gzipped: ratio about 1000, but under the 16 MiB floor)
    const small = await tarGz({ 'adapter_config.json': '{}', 'adapter_model.safetensors': Buffer.alloc(8 << 20) });
    await extractAdapter(small, dir, limits);
    expect((await readdir(dir)).filter((n) => n.startsWith('adapter'))).toHaveLength(2);
    const bomb = await tarGz({ 'adapter_config.json': '{}', 'adapter_model.safetensors': Buffer.alloc(RATIO_FLOOR + (1 << 20)) });
    const err = await extractAdapter(bomb, path.join(dir, 'src'), limits).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidFileError);
    expect((err as Error).message).toMatch(/more than 100 times .* archive bomb \(server.archiveMaxRatio\)/);
  });

  it('names the upload it could not read, with its first bytes', async () => {
    const file = path.join(dir, 'x');
    await writeFile(file, 'hello world');
    await expect(extractAdapter(file, dir, limits, 'model.bin')).rejects.toThrow(/^model.bin: not a zip, tar or tar.gz archive \(it starts with 68656c6c6f20776f\)/);
  });
});

describe('clip', () => {
  it('cuts with an ellipsis at most max characters, never inside a surrogate pair', () => {
    expect(clip('short', 10)).toBe('short');
    expect(clip('abcdefghijkl', 5)).toBe('abcd…');
    expect(clip('abc😀def', 5)).toBe('abc…');
    expect(clip('x'.repeat(20_000)).length).toBe(120);
  });
});
