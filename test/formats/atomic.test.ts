import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../../src/errors.js';
import { writeDirAtomic, writeFileAtomic } from '../../src/formats/atomic.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'lf-atomic-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const fresh = () => mkdtempSync(path.join(root, 'case-'));

describe('writeDirAtomic', () => {
  it('fills a temporary directory and renames it into place, creating parents', async () => {
    const parent = fresh();
    const target = path.join(parent, 'deep', 'out');
    let seen = '';
    await writeDirAtomic(target, async (tmp) => {
      seen = tmp;
      expect(path.dirname(tmp)).toBe(path.dirname(target)); // same filesystem, so the rename is atomic
      expect(existsSync(target)).toBe(false);
      writeFileSync(path.join(tmp, 'a.json'), '{}');
      mkdirSync(path.join(tmp, 'sub'));
      writeFileSync(path.join(tmp, 'sub', 'b.txt'), 'b');
    });
    expect(readFileSync(path.join(target, 'a.json'), 'utf8')).toBe('{}');
    expect(readFileSync(path.join(target, 'sub', 'b.txt'), 'utf8')).toBe('b');
    expect(existsSync(seen)).toBe(false);
    expect(readdirSync(path.dirname(target))).toEqual(['out']);
  });

  it('leaves nothing behind when filling fails', async () => {
    const parent = fresh();
    const target = path.join(parent, 'out');
    await expect(
      writeDirAtomic(target, async (tmp) => {
        writeFileSync(path.join(tmp, 'half'), 'x');
        throw new Error('disk on fire');
      }),
    ).rejects.toThrow('disk on fire');
    expect(readdirSync(parent)).toEqual([]);
  });

  it('refuses an existing target unless asked to overwrite it', async () => {
    const parent = fresh();
    const target = path.join(parent, 'out');
    mkdirSync(target);
    writeFileSync(path.join(target, 'old'), 'old');
    await expect(writeDirAtomic(target, async (tmp) => writeFileSync(path.join(tmp, 'new'), 'new'))).rejects.toThrow(ConflictError);
    expect(readdirSync(target)).toEqual(['old']);
    await writeDirAtomic(target, async (tmp) => writeFileSync(path.join(tmp, 'new'), 'new'), { overwrite: true });
    expect(readdirSync(target)).toEqual(['new']);
    expect(readdirSync(parent)).toEqual(['out']);
  });
});

describe('writeFileAtomic', () => {
  it('writes and replaces a file without leaving temporaries', async () => {
    const parent = fresh();
    const file = path.join(parent, 'sub', 'config.json');
    await writeFileAtomic(file, '{"a":1}');
    await writeFileAtomic(file, new TextEncoder().encode('{"a":2}'));
    expect(readFileSync(file, 'utf8')).toBe('{"a":2}');
    expect(readdirSync(path.dirname(file))).toEqual(['config.json']);
  });

  it('leaves the old file intact when the write fails', async () => {
    const parent = fresh();
    const file = path.join(parent, 'x');
    await writeFileAtomic(file, 'old');
    await expect(writeFileAtomic(file, 42 as never)).rejects.toThrow();
    expect(readFileSync(file, 'utf8')).toBe('old');
    expect(readdirSync(parent)).toEqual(['x']);
  });
});
