// Crash-safe writes: a reader sees either the old state or the complete new one, never a half-written file or
// directory. Data is written next to the target (same filesystem, so rename is atomic), fsynced, then renamed, and
// the parent directory is fsynced so the rename itself survives a power loss.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { ConflictError } from '../errors.js';

/** A unique sibling path of `target` for temporary data: hidden, and named after the target it belongs to. */
export function tempSibling(target: string, kind: 'tmp' | 'old' = 'tmp'): string {
  const { dir, base } = path.parse(path.resolve(target));
  return path.join(dir, `.${base}.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** fsyncs a file or a directory. Directories cannot be fsynced everywhere (Windows): that is not an error. */
export async function fsyncPath(p: string, isDirectory = false): Promise<void> {
  let handle;
  try {
    handle = await open(p, 'r');
  } catch (err) {
    if (isDirectory) return;
    throw err;
  }
  try {
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!(isDirectory && (code === 'EPERM' || code === 'EINVAL' || code === 'EISDIR' || code === 'EBADF'))) throw err;
  } finally {
    await handle.close();
  }
}

async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(p);
    else if (entry.isFile()) await fsyncPath(p);
  }
  await fsyncPath(dir, true);
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

export interface WriteDirOptions {
  /** Replace an existing target directory (default: refuse with a ConflictError). */
  overwrite?: boolean;
}

/**
 * Fills a fresh temporary directory next to `targetDir`, fsyncs every file in it and the directory itself, and
 * renames it to `targetDir`. If `fill` throws, the temporary directory is removed and the target is untouched.
 */
export async function writeDirAtomic(
  targetDir: string,
  fill: (tmpDir: string) => Promise<void>,
  options: WriteDirOptions = {},
): Promise<void> {
  const target = path.resolve(targetDir);
  const parent = path.dirname(target);
  if (!options.overwrite && (await exists(target))) {
    throw new ConflictError(`${target} already exists: choose another output directory or remove it first`);
  }
  await mkdir(parent, { recursive: true });
  const tmp = tempSibling(target);
  await mkdir(tmp);
  try {
    await fill(tmp);
    await fsyncTree(tmp);
    if (await exists(target)) {
      if (!options.overwrite) throw new ConflictError(`${target} already exists: it appeared while it was being written`);
      const old = tempSibling(target, 'old');
      await rename(target, old);
      await rename(tmp, target);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, target);
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      throw new ConflictError(`${target} already exists: it appeared while it was being written`);
    }
    throw err;
  }
  await fsyncPath(parent, true);
}

/** Writes `data` to `filePath` through a temporary sibling, fsync and rename. */
export async function writeFileAtomic(filePath: string, data: string | Uint8Array): Promise<void> {
  const target = path.resolve(filePath);
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = tempSibling(target);
  try {
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncPath(path.dirname(target), true);
}
