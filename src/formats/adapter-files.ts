// The one way into a PEFT adapter directory, for the CLI, the API's registration and the worker alike: before a
// byte is read, the directory and its two files are checked, and a missing file, a directory, FIFO, device or
// socket in a file's place, a dangling symlink and a symlink leading out of the directory are each refused with
// one line saying what to fix (a FIFO or /dev/zero read as weights would hang the reader forever).
import { lstat, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { InvalidFileError, LoraforgeError, NotFoundError, UnsupportedError } from '../errors.js';
import { CONFIG_NAME } from './peft-config.js';

export const WEIGHTS_NAME = 'adapter_model.safetensors';
const PICKLE_NAME = 'adapter_model.bin';

export interface AdapterFiles {
  /** The directory as given, made absolute: what messages name. */
  dir: string;
  /** Path of adapter_config.json under `dir`: checked to be a regular file inside the directory. */
  config: string;
  /** Path of adapter_model.safetensors under `dir`, checked the same way. */
  weights: string;
  /** Size of the weights file in bytes. */
  weightsBytes: number;
}

/** The details of the refusal of a directory whose config is fine as a file but whose weights are missing. */
export interface MissingWeights {
  missing: typeof WEIGHTS_NAME;
  /** The config, checked to be a regular file inside the directory. */
  config: string;
}

export function isMissingWeights(err: unknown): err is LoraforgeError & { details: MissingWeights } {
  return err instanceof LoraforgeError && (err.details as Partial<MissingWeights> | undefined)?.missing === WEIGHTS_NAME;
}

const isInside = (root: string, p: string) => p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

/** What a non-regular file is, for a message. */
function kindOf(s: Stats): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Where a symlink of a Hugging Face cache snapshot (`<repo>/snapshots/<rev>/file`) may lead besides its own
 * directory: `<repo>/blobs/`, where the hub keeps the bytes. Nothing else outside is followed.
 */
function blobsDirOf(realDir: string): string | null {
  return path.basename(path.dirname(realDir)) === 'snapshots' ? path.join(path.dirname(path.dirname(realDir)), 'blobs') : null;
}

const pickleHint = (dir: string) =>
  `${path.join(dir, PICKLE_NAME)} is a PyTorch pickle, which loraforge does not load (unpickling runs code); convert it in that directory with: ` +
  `python -c "import torch; from safetensors.torch import save_file; save_file(torch.load('${PICKLE_NAME}', map_location='cpu'), '${WEIGHTS_NAME}', metadata={'format': 'pt'})"`;

/**
 * Checks one member of the adapter directory without reading it: null when absent, else its path under `dir` and
 * its stats (a regular file inside the directory), or an InvalidFileError saying what is in its place.
 */
async function member(dir: string, realDir: string, name: string): Promise<{ file: string; stats: Stats } | null> {
  const shown = path.join(dir, name);
  const p = path.join(realDir, name);
  let link: Stats;
  try {
    link = await lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
  let file = p;
  if (link.isSymbolicLink()) {
    try {
      file = await realpath(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new InvalidFileError(shown, 'is a symlink loop; put the file itself there');
      throw new InvalidFileError(shown, 'is a symlink that leads nowhere (its target is missing); put the file itself there');
    }
    const blobs = blobsDirOf(realDir);
    if (!isInside(realDir, file) && !(blobs && isInside(blobs, file))) {
      throw new InvalidFileError(shown, `is a symlink that leads out of the adapter directory (to ${file}); copy the file itself into the directory`);
    }
  }
  const stats = file === p ? link : await stat(file);
  if (!stats.isFile()) throw new InvalidFileError(shown, `is ${kindOf(stats)}, not a regular file`);
  return { file: shown, stats };
}

/**
 * Opens an adapter directory: checks that `dir` is a directory holding adapter_config.json and
 * adapter_model.safetensors as regular files (symlinks followed only within the directory), and refuses
 * anything else, including pickle weights with a one-line conversion recipe, before any file is read.
 */
export async function openAdapterFiles(dir: string): Promise<AdapterFiles> {
  const root = path.resolve(dir);
  let rootStats: Stats;
  try {
    rootStats = await stat(root);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(`${root}: no such directory`);
    if (code === 'ELOOP') throw new InvalidFileError(root, 'is a symlink loop, not a directory');
    throw err;
  }
  if (rootStats.isFile()) {
    throw new InvalidFileError(root, `is a file; give the adapter directory holding ${CONFIG_NAME} and ${WEIGHTS_NAME}`);
  }
  if (!rootStats.isDirectory()) throw new InvalidFileError(root, `is ${kindOf(rootStats)}; give the adapter directory`);
  const realDir = await realpath(root);

  const config = await member(root, realDir, CONFIG_NAME);
  const weights = await member(root, realDir, WEIGHTS_NAME);
  if (!config) {
    const has = weights ? ` It holds ${WEIGHTS_NAME}, but` : '';
    throw new InvalidFileError(
      root,
      `missing ${CONFIG_NAME}.${has} a PEFT adapter needs its ${CONFIG_NAME} (rank, alpha, target modules, base model); copy it from where the adapter was trained or saved`,
    );
  }
  if (!weights) {
    // `details` lets a reader refuse a bad config first: that says more than the missing weights
    const details: MissingWeights = { missing: WEIGHTS_NAME, config: config.file };
    const pickle = await lstat(path.join(realDir, PICKLE_NAME)).catch(() => null);
    if (pickle) throw new UnsupportedError(pickleHint(root), details);
    throw new InvalidFileError(root, `missing ${WEIGHTS_NAME}: the adapter's weights should sit next to ${CONFIG_NAME}`, details);
  }
  return { dir: root, config: config.file, weights: weights.file, weightsBytes: weights.stats.size };
}
