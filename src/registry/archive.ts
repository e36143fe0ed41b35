// Unpacking an uploaded .zip, .tar or .tar.gz of a PEFT dir, bounded by what is written, never by what the
// archive's headers claim. The kind is read from the first bytes (a browser or Discord may label a tar.gz
// application/gzip or application/octet-stream). Only adapter_config.json and adapter_model.safetensors are
// written (at the top level or inside one folder); every entry is counted and its path checked; the bytes
// written, and for a tar every byte read, count against a budget: the upload limit, and at most `ratio` times
// the archive's own size.
// Any failure stops the reading, ends every write in flight and rejects once; the caller removes the staging.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Parser as TarParser, type ReadEntry } from 'tar';
import yauzl from 'yauzl';
import { clip, InvalidFileError, isLoraforgeError, TooLargeError } from '../errors.js';
import { ADAPTER_FILES, WEIGHTS_FILE } from './store.js';

export interface ArchiveLimits {
  /** bytes the content may have in all (server.uploadLimitBytes) */
  bytes: number;
  /** the content may be at most this many times the archive's size, past RATIO_FLOOR (server.archiveMaxRatio) */
  ratio: number;
  /** entries an archive may hold, folders included (server.archiveMaxEntries) */
  entries: number;
}

/** Below this much content the ratio is not checked: a tiny adapter's config compresses well and is harmless. */
export const RATIO_FLOOR = 16 * 1024 ** 2;

export type ArchiveKind = 'zip' | 'tar' | 'tar.gz';
type AdapterFile = (typeof ADAPTER_FILES)[number];

const ARCHIVE = 'the archive';

/** The archive kind from its first bytes (at least 262 of them for a plain tar), or undefined. */
export function sniffArchive(head: Buffer): ArchiveKind | undefined {
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && [0x0304, 0x0506, 0x0708].includes(head.readUInt16BE(2))) return 'zip';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  return undefined;
}

/** What an entry's path means: one of the two files, something to skip, or a path that leads out. */
function classify(entryPath: string): { file?: AdapterFile; escapes?: true } {
  const normal = entryPath.replace(/\\/g, '/');
  const parts = normal.split('/').filter((p) => p !== '' && p !== '.');
  if (normal.startsWith('/') || /^[a-zA-Z]:/.test(normal) || parts.includes('..')) return { escapes: true };
  if (parts.length === 0 || parts.length > 2) return {};
  const base = parts[parts.length - 1]!;
  return (ADAPTER_FILES as readonly string[]).includes(base) ? { file: base as AdapterFile } : {};
}

/** A count of content bytes, against the smaller of the upload limit and the ratio budget. */
class Budget {
  private used = 0;
  private readonly max: number;
  private readonly byRatio: boolean;

  constructor(
    private readonly limits: ArchiveLimits,
    private readonly archiveBytes: number,
  ) {
    const ratioCap = Math.max(RATIO_FLOOR, limits.ratio * archiveBytes);
    this.byRatio = ratioCap < limits.bytes;
    this.max = Math.min(limits.bytes, ratioCap);
  }

  /** Counts `n` more bytes; throws past the budget. */
  take(n: number): void {
    this.check(n);
    this.used += n;
  }

  /** Throws when `n` more bytes (as a header declares them) would not fit. */
  check(n: number): void {
    if (this.used + n <= this.max) return;
    if (this.byRatio) {
      throw new InvalidFileError(
        ARCHIVE,
        `expands to more than ${this.limits.ratio} times its ${this.archiveBytes} bytes: refused as an archive bomb (server.archiveMaxRatio)`,
      );
    }
    throw new TooLargeError(`the archive's content is larger than the upload limit of ${this.limits.bytes} bytes (server.uploadLimitBytes)`, {
      limit: this.limits.bytes,
    });
  }
}

/** The two files as they are written from the archive: one each, bytes counted, the weights hashed. */
class AdapterWriter {
  private readonly found = new Set<AdapterFile>();
  private readonly outs = new Set<WriteStream>();
  private readonly writes: Promise<void>[] = [];
  private readonly hash = createHash('sha256');
  private failure: Error | undefined;

  constructor(
    private readonly into: string,
    readonly budget: Budget,
    private readonly onFailure: (err: Error) => void,
  ) {}

  /** Starts writing `source` as `file`; a failure is reported through `onFailure`, never left unhandled. */
  write(file: AdapterFile, source: Readable, entryName: string): void {
    if (this.found.has(file)) throw new InvalidFileError(ARCHIVE, `holds ${file} more than once (again as "${clip(entryName)}")`);
    this.found.add(file);
    const out = createWriteStream(path.join(this.into, file));
    this.outs.add(out);
    const counter = new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        try {
          this.budget.take(chunk.length);
        } catch (err) {
          return done(err as Error);
        }
        if (file === WEIGHTS_FILE) this.hash.update(chunk);
        done(null, chunk);
      },
    });
    this.writes.push(
      pipeline(source, counter, out)
        .catch((err: unknown) => this.fail(asArchiveError(err, entryName)))
        .finally(() => this.outs.delete(out)),
    );
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** The first failure wins; every write still in flight is ended, so none is left waiting. */
  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const out of this.outs) out.destroy(err);
    this.onFailure(err);
  }

  /** Waits for every write; rethrows the first failure; returns the weights' sha256. */
  async finish(): Promise<string> {
    await Promise.all(this.writes);
    if (this.failure) throw this.failure;
    for (const file of ADAPTER_FILES) {
      if (!this.found.has(file)) throw new InvalidFileError(`${ARCHIVE}/${file}`, 'missing: a PEFT adapter dir has adapter_config.json and adapter_model.safetensors');
    }
    return this.hash.digest('hex');
  }
}

/** Errors of the archive libraries as one bounded line naming the archive; ours pass through. */
function asArchiveError(err: unknown, where?: string): Error {
  if (isLoraforgeError(err)) return err;
  const message = clip(err instanceof Error ? err.message : String(err), 300);
  return new InvalidFileError(where ? `${ARCHIVE} ("${clip(where)}")` : ARCHIVE, `not readable: ${message}`);
}

const escapes = (name: string) => new InvalidFileError(ARCHIVE, `entry "${clip(name)}" leads outside the archive (absolute, or through "..")`);
const tooManyEntries = (max: number) => new InvalidFileError(ARCHIVE, `holds more than ${max} entries (server.archiveMaxEntries)`);
const notAFile = (name: string, what: string) =>
  new InvalidFileError(ARCHIVE, `"${clip(name)}" is ${what}, not a file: archive the file itself (tar -h, zip without -y)`);

/** Counts every byte against `budget`; passes them on until `ended()` says the tar has ended. */
const counted = (budget: Budget, ended: () => boolean) =>
  new Transform({
    transform(chunk: Buffer, _enc, done) {
      try {
        budget.take(chunk.length);
      } catch (err) {
        return done(err as Error);
      }
      done(null, ended() ? undefined : chunk);
    },
  });

/**
 * A tar, gunzipped here so that every byte the parser reads (headers, skipped entries, whatever follows the
 * end) counts against `read`, a budget of its own; the files written count against the writer's.
 */
async function extractTar(archive: string, gzip: boolean, writer: AdapterWriter, read: Budget, maxEntries: number, parser: TarParser): Promise<void> {
  let entries = 0;
  parser.on('entry', (entry: ReadEntry) => {
    // a destroyed entry the parser still writes to emits 'error': the write's own failure is reported already
    entry.on('error', () => undefined);
    try {
      if (++entries > maxEntries) throw tooManyEntries(maxEntries);
      const { file, escapes: out } = classify(entry.path);
      if (out) throw escapes(entry.path);
      if (!file) return void entry.resume();
      if (entry.type === 'SymbolicLink' || entry.type === 'Link') throw notAFile(entry.path, `a ${entry.type === 'Link' ? 'hard' : 'symbolic'} link`);
      if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') throw notAFile(entry.path, `a ${entry.type}`);
      writer.budget.check(entry.size);
      writer.write(file, entry as unknown as Readable, entry.path);
    } catch (err) {
      entry.resume();
      writer.fail(asArchiveError(err));
    }
  });
  // the parser ends by 'finish' or by 'error' (strict: a bad header, a truncation, an abort); it may be aborted
  // after that too, so it keeps a listener
  parser.on('error', (err: unknown) => writer.fail(asArchiveError(err)));
  // past the tar's end (two empty blocks) the parser would gather every byte into one buffer, copied anew for
  // each chunk: what follows is counted, not passed on (tar pads to 10 KiB records; the rest is junk or a bomb)
  let ended = false;
  parser.on('eof', () => (ended = true));
  const count = counted(read, () => ended);
  const source = createReadStream(archive);
  const destination = parser as unknown as NodeJS.WritableStream;
  const plain = gzip ? pipeline(source, createGunzip(), count, destination) : pipeline(source, count, destination);
  await plain.catch((err: unknown) => writer.fail(asArchiveError(err)));
}

type ZipEvent = { entry: yauzl.Entry } | { end: true };

async function extractZip(archive: string, writer: AdapterWriter, maxEntries: number): Promise<void> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(archive, { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true }, (err, z) =>
      err ? reject(asArchiveError(err)) : resolve(z),
    ),
  );
  // one listener for the life of the zip: an error between two reads is kept for the next one
  let waiter: { resolve: (e: ZipEvent) => void; reject: (err: Error) => void } | undefined;
  let zipError: Error | undefined;
  zip.on('entry', (entry: yauzl.Entry) => waiter?.resolve({ entry }));
  zip.on('end', () => waiter?.resolve({ end: true }));
  zip.on('error', (err: unknown) => {
    zipError = asArchiveError(err);
    waiter?.reject(zipError);
  });
  const next = () =>
    new Promise<ZipEvent>((resolve, reject) => {
      if (zipError) return reject(zipError);
      waiter = { resolve, reject };
      zip.readEntry();
    });
  try {
    if (zip.entryCount > maxEntries) throw tooManyEntries(maxEntries);
    while (!writer.failed) {
      const event = await next();
      if (!('entry' in event)) break;
      const { entry } = event;
      const { file, escapes: out } = classify(entry.fileName);
      if (out) throw escapes(entry.fileName);
      if (!file || entry.fileName.endsWith('/')) continue;
      // made on unix (3) with the symlink mode bits: the data is a link target, not the file
      if (entry.versionMadeBy >> 8 === 3 && ((entry.externalFileAttributes >>> 16) & 0o170000) === 0o120000) {
        throw notAFile(entry.fileName, 'a symbolic link');
      }
      // the declared size is checked first; the bytes written are what is counted (headers may lie)
      writer.budget.check(entry.uncompressedSize);
      const stream = await new Promise<Readable>((resolve, reject) =>
        zip.openReadStream(entry, (err, s) => (err ? reject(asArchiveError(err, entry.fileName)) : resolve(s))),
      );
      writer.write(file, stream, entry.fileName);
    }
  } catch (err) {
    writer.fail(asArchiveError(err));
  } finally {
    zip.close();
  }
}

async function readHead(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Writes adapter_config.json and adapter_model.safetensors of the archive at `archive` into `into`; returns the
 * sha256 of the weights. Refuses (InvalidFileError 422, TooLargeError 413): anything but a zip, tar or tar.gz,
 * content past the budget, more than `limits.entries` entries, paths out of the archive, links in place of the
 * files, a file twice or missing, and whatever the archive libraries cannot read. `label` names the upload.
 */
export async function extractAdapter(archive: string, into: string, limits: ArchiveLimits, label = 'the upload'): Promise<string> {
  const head = await readHead(archive);
  const kind = sniffArchive(head);
  if (!kind) {
    const start = head.length === 0 ? 'it is empty' : `it starts with ${head.subarray(0, 8).toString('hex')}`;
    throw new InvalidFileError(label, `not a zip, tar or tar.gz archive (${start}): send the adapter dir's two files, or one archive of it`);
  }
  const size = (await stat(archive)).size;
  if (kind === 'zip') {
    const writer = new AdapterWriter(into, new Budget(limits, size), () => undefined);
    await extractZip(archive, writer, limits.entries);
    return writer.finish();
  }
  // on the first failure the parser stops reading (a zip stops at its next entry)
  const parser = new TarParser({ strict: true });
  const writer = new AdapterWriter(into, new Budget(limits, size), () => parser.abort(new Error('stopped')));
  await extractTar(archive, kind === 'tar.gz', writer, new Budget(limits, size), limits.entries, parser);
  return writer.finish();
}
