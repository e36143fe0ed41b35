// JSON from other tools and from strangers (configs, indexes, safetensors headers): bounded in size and nesting
// depth before JSON.parse, so no recursive code after it (zod, JSON.stringify in a message, canonical hashing)
// can overflow the stack; a UTF-8 byte-order mark is skipped; every failure names the file.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { InvalidFileError, NotFoundError } from '../errors.js';

/** Deeper than any config or header we read (theirs are 3 or 4 levels), far below what recursion survives. */
const MAX_JSON_DEPTH = 64;
/** The default size limit of a JSON file (a sharded checkpoint's index is a few hundred KB). */
const MAX_JSON_BYTES = 64 * 2 ** 20;

export interface JsonLimits {
  maxBytes?: number;
  maxDepth?: number;
}

/** The deepest nesting of [ and { in `text`, outside strings; stops counting once past `limit`. No recursion. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // skip the string, escapes included
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return max;
}

/**
 * Parses JSON text from an untrusted source: a leading byte-order mark is skipped, and text nested deeper than
 * `maxDepth` is refused before it is parsed. Failures are InvalidFileErrors naming `file` and saying `what` it is.
 */
export function parseJsonText(text: string, file: string, what = 'the file', limits: JsonLimits = {}): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const maxDepth = limits.maxDepth ?? MAX_JSON_DEPTH;
  if (jsonDepth(body, maxDepth) > maxDepth) {
    throw new InvalidFileError(file, `${what} nests JSON more than ${maxDepth} levels deep: corrupt or hostile, refusing to read it`);
  }
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new InvalidFileError(file, `${what} is not valid JSON (${(err as Error).message})`);
  }
}

/**
 * Reads a JSON file that must hold an object; every failure names the file. Anything but a regular file (a FIFO,
 * a device) is refused without blocking on it, and so is a file over `maxBytes`.
 */
export async function readJsonObject(file: string, limits: JsonLimits = {}): Promise<Record<string, unknown>> {
  const maxBytes = limits.maxBytes ?? MAX_JSON_BYTES;
  let text: string;
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${file}: no such file`);
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') throw new InvalidFileError(file, 'is a directory, not a JSON file');
    throw err;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new InvalidFileError(file, 'is not a regular file (a directory, a device, a FIFO or a socket)');
    if (stats.size > maxBytes) throw new InvalidFileError(file, `${stats.size} bytes is over the ${maxBytes}-byte limit for this JSON file`);
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  const json = parseJsonText(text, file, 'the file', limits);
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidFileError(file, 'must hold a JSON object');
  }
  return json as Record<string, unknown>;
}
