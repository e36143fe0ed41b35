import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { create as createTar } from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { ForbiddenError, InvalidFileError, InvalidInputError, TooLargeError, UnsupportedError } from '../../src/errors.js';
import { stageFromArchive, stageFromMultipart, stageFromPath } from '../../src/registry/ingest.js';
import { AdapterStore } from '../../src/registry/store.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

let root: string;
let store: AdapterStore;
let importDir: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'lf-ingest-'));
  store = new AdapterStore(path.join(root, 'data'));
  importDir = path.join(root, 'import');
  await mkdir(path.join(importDir, 'good'), { recursive: true });
  await writeFile(path.join(importDir, 'good', 'adapter_config.json'), '{"r": 8}');
  await writeFile(path.join(importDir, 'good', 'adapter_model.safetensors'), 'weights');
  await mkdir(path.join(root, 'outside'), { recursive: true });
  await writeFile(path.join(root, 'outside', 'adapter_config.json'), '{}');
  await writeFile(path.join(root, 'outside', 'adapter_model.safetensors'), 'secret');
});

const limits = (bytes: number) => ({ bytes, ratio: 100, entries: 1000 });
const tmpEntries = async () => readdir(store.tmpRoot).catch(() => []);

afterEach(async () => {
  try {
    // nothing half-written is left in the staging area after a refusal
    expect(await tmpEntries()).toEqual([]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

describe('stageFromPath', () => {
  it('copies a dir under the import dir into staging', async () => {
    const staged = await stageFromPath(store, importDir, 'good');
    expect(await readFile(path.join(staged, 'adapter_model.safetensors'), 'utf8')).toBe('weights');
    await rm(staged, { recursive: true });
  });

  it('refuses "..", absolute paths outside, symlinks out, and registration by path when off', async () => {
    await expect(stageFromPath(store, importDir, '../outside')).rejects.toThrow(InvalidInputError);
    await expect(stageFromPath(store, importDir, 'good/../../outside')).rejects.toThrow(/contains "\.\."/);
    await expect(stageFromPath(store, importDir, path.join(root, 'outside'))).rejects.toThrow(ForbiddenError);
    await symlink(path.join(root, 'outside'), path.join(importDir, 'link'));
    await expect(stageFromPath(store, importDir, 'link')).rejects.toThrow(/leads outside the import dir/);
    await mkdir(path.join(importDir, 'sneaky'));
    await writeFile(path.join(importDir, 'sneaky', 'adapter_config.json'), '{}');
    await symlink(path.join(root, 'outside', 'adapter_model.safetensors'), path.join(importDir, 'sneaky', 'adapter_model.safetensors'));
    await expect(stageFromPath(store, importDir, 'sneaky')).rejects.toThrow(/sneaky\/adapter_model.safetensors: is a symlink that leads out of the adapter directory/);
    await expect(stageFromPath(store, undefined, 'good')).rejects.toThrow(/registering by path is off/);
  });

  it('names a missing file and hints at pickle weights, in one line naming the path as given', async () => {
    await mkdir(path.join(importDir, 'bin'));
    await writeFile(path.join(importDir, 'bin', 'adapter_config.json'), '{}');
    await writeFile(path.join(importDir, 'bin', 'adapter_model.bin'), 'pickle');
    const err = await stageFromPath(store, importDir, 'bin').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as Error).message).toMatch(/^bin\/adapter_model.bin is a PyTorch pickle.*save_file/);
    expect((err as Error).message).not.toContain('\n');
    await rm(path.join(importDir, 'bin', 'adapter_model.bin'));
    await expect(stageFromPath(store, importDir, 'bin')).rejects.toThrow(/^bin: missing adapter_model.safetensors/);
  });

  it('refuses special files and dangling symlinks before copying anything', async () => {
    await mkdir(path.join(importDir, 'special'));
    await writeFile(path.join(importDir, 'special', 'adapter_config.json'), '{}');
    await symlink('/dev/zero', path.join(importDir, 'special', 'adapter_model.safetensors'));
    await expect(stageFromPath(store, importDir, 'special')).rejects.toThrow(/leads out of the adapter directory/);
    await rm(path.join(importDir, 'special', 'adapter_model.safetensors'));
    await symlink('nothing-here', path.join(importDir, 'special', 'adapter_model.safetensors'));
    await expect(stageFromPath(store, importDir, 'special')).rejects.toThrow(/^special\/adapter_model.safetensors: is a symlink that leads nowhere/);
    await rm(path.join(importDir, 'special', 'adapter_model.safetensors'));
    await mkdir(path.join(importDir, 'special', 'adapter_model.safetensors'));
    await expect(stageFromPath(store, importDir, 'special')).rejects.toThrow(/is a directory, not a regular file/);
    expect(await readdir(store.tmpRoot).catch(() => [])).toEqual([]);
  });
});

async function zipOf(entries: Record<string, string>): Promise<string> {
  const zip = new yazl.ZipFile();
  for (const [name, content] of Object.entries(entries)) zip.addBuffer(Buffer.from(content), name);
  zip.end();
  const file = path.join(root, `a-${Math.random()}.zip`);
  await pipeline(zip.outputStream, createWriteStream(file));
  return file;
}

describe('archives', () => {
  it('extracts the two files from a zip (in a folder) and a tar.gz, ignoring the rest, hashing the weights', async () => {
    const zip = await zipOf({ 'my-adapter/adapter_config.json': '{"r":4}', 'my-adapter/adapter_model.safetensors': 'w', 'my-adapter/README.md': 'x' });
    const { staged: a, weightsSha256: aSha } = await stageFromArchive(store, createReadStream(zip), limits(1 << 20));
    expect((await readdir(a)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(aSha).toBe(sha256('w'));

    const tgz = path.join(root, 'a.tar.gz');
    await createTar({ gzip: true, file: tgz, cwd: importDir }, ['good']);
    const { staged: b, weightsSha256: bSha } = await stageFromArchive(store, createReadStream(tgz), limits(1 << 20));
    expect(await readFile(path.join(b, 'adapter_model.safetensors'), 'utf8')).toBe('weights');
    expect(bSha).toBe(sha256('weights'));
    await rm(a, { recursive: true });
    await rm(b, { recursive: true });
  });

  it('refuses traversal entries, oversized content, corrupt archives and missing files', async () => {
    // yazl refuses to write "..": write "aa/aa/..." and patch the name bytes (the same length) in place
    const evil = await zipOf({ 'aa/aa/adapter_config.json': '{}', 'adapter_model.safetensors': 'w' });
    const bytes = await readFile(evil);
    await writeFile(evil, Buffer.from(bytes.toString('latin1').replaceAll('aa/aa/adapter_config', '../../adapter_config'), 'latin1'));
    await expect(stageFromArchive(store, createReadStream(evil), limits(1 << 20))).rejects.toThrow(/adapter_config.json/);
    const big = await zipOf({ 'adapter_config.json': '{}', 'adapter_model.safetensors': 'x'.repeat(5000) });
    await expect(stageFromArchive(store, createReadStream(big), limits(4000))).rejects.toThrow(TooLargeError);
    await expect(stageFromArchive(store, Readable.from([Buffer.from('not a zip at all')]), limits(1 << 20))).rejects.toThrow(InvalidFileError);
    await expect(stageFromArchive(store, Readable.from([Buffer.from('not a tar at all, not even close'.repeat(40))]), limits(1 << 20))).rejects.toThrow(
      InvalidFileError,
    );
  });
});

function multipart(parts: Array<{ name: string; filename?: string; content: string }>): { body: Readable; headers: Record<string, string> } {
  const boundary = 'lfboundary';
  let text = '';
  for (const p of parts) {
    text += `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}\r\n`;
    if (p.filename) text += 'Content-Type: application/octet-stream\r\n';
    text += `\r\n${p.content}\r\n`;
  }
  text += `--${boundary}--\r\n`;
  return { body: Readable.from([Buffer.from(text)]), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

describe('multipart', () => {
  it('stages the two files and returns the fields and the sha256 of the weights', async () => {
    const { body, headers } = multipart([
      { name: 'name', content: 'x' },
      { name: 'adapter_config.json', filename: 'adapter_config.json', content: '{}' },
      { name: 'adapter_model.safetensors', filename: 'adapter_model.safetensors', content: 'w' },
    ]);
    const { staged, fields, weightsSha256 } = await stageFromMultipart(store, body, headers, limits(1 << 20));
    expect(fields).toEqual({ name: 'x' });
    expect(weightsSha256).toBe(sha256('w'));
    expect((await readdir(staged)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    await rm(staged, { recursive: true });
  });

  it('refuses oversized, unexpected and incomplete uploads', async () => {
    const big = multipart([
      { name: 'a', filename: 'adapter_config.json', content: '{}' },
      { name: 'b', filename: 'adapter_model.safetensors', content: 'x'.repeat(3000) },
    ]);
    await expect(stageFromMultipart(store, big.body, big.headers, limits(2000))).rejects.toThrow(TooLargeError);
    const odd = multipart([{ name: 'a', filename: 'model.bin', content: 'x' }]);
    await expect(stageFromMultipart(store, odd.body, odd.headers, limits(2000))).rejects.toThrow(/model.bin: not a zip, tar or tar.gz archive/);
    const half = multipart([{ name: 'a', filename: 'adapter_config.json', content: '{}' }]);
    await expect(stageFromMultipart(store, half.body, half.headers, limits(2000))).rejects.toThrow(/adapter_model.safetensors/);
  });
});

describe('staging sweep', () => {
  it('removes upload staging untouched for a minute, keeps live uploads and younger merge staging', async () => {
    const { utimes } = await import('node:fs/promises');
    const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000);
    const dead = await store.stagingDir('upload');
    await writeFile(path.join(dead, 'upload.archive'), 'half');
    await utimes(path.join(dead, 'upload.archive'), minutesAgo(2), minutesAgo(2));
    await utimes(dead, minutesAgo(2), minutesAgo(2));
    // an old dir whose file is still being written is a live upload
    const live = await store.stagingDir('upload');
    await writeFile(path.join(live, 'upload.archive'), 'growing');
    await utimes(live, minutesAgo(5), minutesAgo(5));
    const merge = await store.stagingDir('merge-x');
    await utimes(merge, minutesAgo(2), minutesAgo(2));

    expect(await store.sweepLeftovers(6 * 3600_000)).toEqual([dead]);
    expect((await tmpEntries()).sort()).toEqual([path.basename(live), path.basename(merge)].sort());
    expect((await store.sweepLeftovers(0)).sort()).toEqual([live, merge].sort());
  });
});
