// The adapter store: `<dataDir>/adapters/<sha256>/` holds a PEFT directory (adapter_config.json +
// adapter_model.safetensors), content-addressed, written through a temp dir + fsync + rename so no reader sees
// half of one. Incoming adapters are staged under `<dataDir>/tmp/` (same filesystem, so moving in is a rename).
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeDirAtomic } from '../formats/atomic.js';
import { readJsonObject } from '../formats/json-file.js';
import { canonicalJson } from '../util/canonical-json.js';
import { sha256File } from '../formats/file-hash.js';

export const CONFIG_FILE = 'adapter_config.json';
export const WEIGHTS_FILE = 'adapter_model.safetensors';
export const ADAPTER_FILES = [CONFIG_FILE, WEIGHTS_FILE] as const;

const SHA_RE = /^[0-9a-f]{64}$/;

/** Upload staging untouched this long is a request that died with its process (a live upload writes as it goes). */
const UPLOAD_GRACE_MS = 60_000;

/** The newest mtime of a dir and the entries directly in it (a staging dir holds files only). */
async function lastWrite(dir: string): Promise<number> {
  let newest = (await stat(dir)).mtimeMs;
  for (const name of await readdir(dir).catch(() => [])) {
    const mtime = await stat(path.join(dir, name)).then((s) => s.mtimeMs, () => 0);
    newest = Math.max(newest, mtime);
  }
  return newest;
}


/**
 * The content address of a PEFT dir: sha256 over the canonical JSON of its config (key order and whitespace do
 * not matter) and the sha256 of its weights file (`weightsSha256` when the caller hashed it while writing it).
 */
export async function contentHash(dir: string, weightsSha256?: string): Promise<string> {
  // bounded and BOM-tolerant, as formats reads it (a BOM does not change the identity)
  const config = await readJsonObject(path.join(dir, CONFIG_FILE));
  const weights = weightsSha256 ?? (await sha256File(path.join(dir, WEIGHTS_FILE)));
  return createHash('sha256').update(`loraforge-peft-v1\n${canonicalJson(config)}\n${weights}\n`).digest('hex');
}

export class AdapterStore {
  readonly root: string;
  readonly tmpRoot: string;

  constructor(dataDir: string) {
    this.root = path.resolve(dataDir, 'adapters');
    this.tmpRoot = path.resolve(dataDir, 'tmp');
  }

  pathOf(sha256: string): string {
    if (!SHA_RE.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return path.join(this.root, sha256);
  }

  /** A fresh staging dir under `<dataDir>/tmp`, for an upload or a merge result before it is stored. */
  async stagingDir(kind: string): Promise<string> {
    const dir = path.join(this.tmpRoot, `${kind}-${randomUUID()}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async has(sha256: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(sha256))).isDirectory();
    } catch {
      return false;
    }
  }

  /** Moves the two files of `stagedDir` into the store under `sha256`, unless that content is stored already. */
  async put(sha256: string, stagedDir: string): Promise<void> {
    if (await this.has(sha256)) return;
    await mkdir(this.root, { recursive: true });
    await writeDirAtomic(this.pathOf(sha256), async (tmp) => {
      for (const file of ADAPTER_FILES) await rename(path.join(stagedDir, file), path.join(tmp, file));
    });
  }

  async delete(sha256: string): Promise<void> {
    const dir = this.pathOf(sha256);
    // rename first: a reader never sees a dir with one file gone
    const doomed = path.join(this.root, `.${sha256}.deleted-${randomUUID().slice(0, 8)}`);
    try {
      await rename(dir, doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  /** Content addresses present in the store. */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.root)).filter((n) => SHA_RE.test(n));
    } catch {
      return [];
    }
  }

  /**
   * Removes leftovers of interrupted work: temp and half-deleted dirs in the store (names starting with ".") and
   * staging dirs, once nothing in them was written for `graceMs`; the staging of uploads and imports (requests of
   * an API process, which writes to them as the bytes come) once nothing was written for `uploadGraceMs`.
   * Returns what it removed.
   */
  async sweepLeftovers(graceMs: number, uploadGraceMs = Math.min(graceMs, UPLOAD_GRACE_MS)): Promise<string[]> {
    const removed: string[] = [];
    const now = Date.now();
    const scan = async (dir: string, pick: (name: string) => boolean) => {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        return;
      }
      for (const name of names.filter(pick)) {
        const p = path.join(dir, name);
        const grace = dir === this.tmpRoot && /^(upload|import)-/.test(name) ? uploadGraceMs : graceMs;
        try {
          if (now - (await lastWrite(p)) < grace) continue;
          await rm(p, { recursive: true, force: true });
          removed.push(p);
        } catch {
          // gone meanwhile
        }
      }
    };
    await scan(this.root, (n) => n.startsWith('.'));
    await scan(this.tmpRoot, () => true);
    return removed;
  }
}
