// Getting an adapter into a staging dir (`<dataDir>/tmp/...`), from where the registry validates and stores it:
// from a path under the configured import dir, or from an upload (the two files as multipart parts, or a .zip or
// .tar.gz of the directory). Uploads are streamed to disk with a byte limit, never held in memory whole, and the
// weights are hashed on the way in, so registering them needs no second read of the file.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, realpath, rm, stat } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { Parser as TarParser, type ReadEntry } from 'tar';
import yauzl from 'yauzl';
import { ForbiddenError, InvalidFileError, InvalidInputError, TooLargeError } from '../errors.js';
import { openAdapterFiles } from '../formats/adapter-files.js';
import { ADAPTER_FILES, WEIGHTS_FILE, type AdapterStore } from './store.js';

const isInside = (root: string, p: string) => p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

/**
 * Copies the PEFT dir at `requested` (absolute, or relative to `importDir`) into a staging dir. Refused: paths
 * with `..`, anything outside the import dir, and symlinks (of the dir or its files) that lead out of it.
 */
export async function stageFromPath(store: AdapterStore, importDir: string | undefined, requested: string): Promise<string> {
  if (!importDir) {
    throw new ForbiddenError('registering by path is off: set LORAFORGE_IMPORT_DIR (server.importDir) on the server, or upload the files');
  }
  if (requested.split(/[\\/]+/).includes('..')) throw new InvalidInputError(`path "${requested}" contains "..": give a path inside the import dir`);
  const root = await realpath(importDir).catch(() => {
    throw new InvalidInputError(`the import dir ${importDir} does not exist on the server`);
  });
  const candidate = path.resolve(root, requested);
  if (!isInside(root, candidate)) throw new ForbiddenError(`path "${requested}" is outside the import dir ${root}`);
  const real = await realpath(candidate).catch(() => {
    throw new InvalidInputError(`no directory "${requested}" in the import dir ${root}`);
  });
  if (!isInside(root, real)) throw new ForbiddenError(`path "${requested}" leads outside the import dir (symlink to ${real})`);
  if (!(await stat(real)).isDirectory()) throw new InvalidInputError(`"${requested}" is a file: give the adapter's directory`);
  // the same checks as the CLI and the worker, before a byte is copied (a FIFO or /dev/zero would never end);
  // messages name the path as the user gave it
  await openAdapterFiles(real).catch((err: unknown) => {
    if (err instanceof Error) err.message = err.message.replaceAll(real, requested);
    throw err;
  });

  const staged = await store.stagingDir('import');
  try {
    for (const file of ADAPTER_FILES) {
      const source = path.join(real, file);
      const resolved = await realpath(source).catch(() => {
        throw missingFile(requested, file);
      });
      if (!isInside(root, resolved)) throw new ForbiddenError(`${requested}/${file} is a symlink that leads outside the import dir`);
      await copyFile(resolved, path.join(staged, file));
    }
    return staged;
  } catch (err) {
    await rm(staged, { recursive: true, force: true });
    throw err;
  }
}

function missingFile(where: string, file: string): InvalidFileError {
  const hint = file === WEIGHTS_FILE ? ' (pickle adapter_model.bin is not supported: save with safe_serialization=True)' : '';
  return new InvalidFileError(`${where}/${file}`, `missing: a PEFT adapter dir has adapter_config.json and adapter_model.safetensors${hint}`);
}

/** Counts bytes through a stream and fails with TooLargeError past `limit`; feeds them to `hash` when given. */
function byteLimit(limit: number, what: string, hash?: Hash): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > limit) return done(tooLarge(limit, what));
      hash?.update(chunk);
      done(null, chunk);
    },
  });
}

/** What was staged: the dir, and the sha256 of its weights file when it was computed while writing it. */
export interface Staged {
  staged: string;
  weightsSha256?: string;
}

/** A sha256 for the weights file only: the other file is small and is read again anyway. */
const hashFor = (file: string, hashes: Map<string, Hash>): Hash | undefined => {
  if (file !== WEIGHTS_FILE) return undefined;
  const hash = createHash('sha256');
  hashes.set(file, hash);
  return hash;
};

const tooLarge = (limit: number, what: string) =>
  new TooLargeError(`${what} is larger than the upload limit of ${limit} bytes (server.uploadLimitBytes)`, { limit });

export type ArchiveKind = 'zip' | 'tar';

export function archiveKindOf(fileName: string, contentType = ''): ArchiveKind | undefined {
  const name = fileName.toLowerCase();
  if (name.endsWith('.zip') || contentType.includes('zip')) return 'zip';
  if (name.endsWith('.tar.gz') || name.endsWith('.tgz') || name.endsWith('.tar') || /gzip|x-tar/.test(contentType)) return 'tar';
  return undefined;
}

/** Which adapter file an archive entry is: only the two files at the top level or inside one folder count. */
function wantedEntry(entryPath: string): (typeof ADAPTER_FILES)[number] | undefined {
  const parts = entryPath.replace(/\\/g, '/').split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.length > 2 || parts.includes('..')) return undefined;
  const base = parts[parts.length - 1]!;
  return (ADAPTER_FILES as readonly string[]).includes(base) ? (base as (typeof ADAPTER_FILES)[number]) : undefined;
}

async function extractZip(archive: string, into: string, limit: number, hashes: Map<string, Hash>): Promise<Set<string>> {
  const found = new Set<string>();
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(archive, { lazyEntries: true, autoClose: true, strictFileNames: false, validateEntrySizes: true }, (err, z) =>
      err ? reject(new InvalidFileError('upload.zip', `not a readable zip: ${err.message}`)) : resolve(z),
    ),
  );
  await new Promise<void>((resolve, reject) => {
    zip.on('error', (err: Error) => reject(new InvalidFileError('upload.zip', err.message)));
    zip.on('end', () => resolve());
    zip.on('entry', (entry: yauzl.Entry) => {
      const file = wantedEntry(entry.fileName);
      if (!file || entry.fileName.endsWith('/')) return zip.readEntry();
      if (found.has(file)) return reject(new InvalidInputError(`the archive holds ${file} more than once`));
      if (entry.uncompressedSize > limit) return reject(tooLarge(limit, entry.fileName));
      found.add(file);
      zip.openReadStream(entry, (err, stream) => {
        if (err) return reject(new InvalidFileError(entry.fileName, err.message));
        pipeline(stream, byteLimit(limit, entry.fileName, hashFor(file, hashes)), createWriteStream(path.join(into, file)))
          .then(() => zip.readEntry())
          .catch(reject);
      });
    });
    zip.readEntry();
  });
  return found;
}

async function extractTar(archive: string, into: string, limit: number, hashes: Map<string, Hash>): Promise<Set<string>> {
  const found = new Set<string>();
  const writes: Promise<void>[] = [];
  let failure: Error | undefined;
  const parser = new TarParser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      const file = entry.type === 'File' ? wantedEntry(entry.path) : undefined;
      if (!file || failure) return entry.resume();
      if (found.has(file)) {
        failure = new InvalidInputError(`the archive holds ${file} more than once`);
        return entry.resume();
      }
      found.add(file);
      writes.push(pipeline(entry as unknown as Readable, byteLimit(limit, entry.path, hashFor(file, hashes)), createWriteStream(path.join(into, file))));
    },
  });
  try {
    await pipeline(createReadStream(archive), parser as unknown as NodeJS.WritableStream);
    await Promise.all(writes);
  } catch (err) {
    if (err instanceof TooLargeError || err instanceof InvalidInputError) throw err;
    throw new InvalidFileError('upload.tar.gz', `not a readable tar or tar.gz archive: ${(err as Error).message}`);
  }
  if (failure) throw failure;
  return found;
}

/** Extracts the two files; returns the sha256 of the weights. */
async function unpackArchive(kind: ArchiveKind, archive: string, into: string, limit: number): Promise<string> {
  const hashes = new Map<string, Hash>();
  const found = kind === 'zip' ? await extractZip(archive, into, limit, hashes) : await extractTar(archive, into, limit, hashes);
  await rm(archive, { force: true });
  for (const file of ADAPTER_FILES) if (!found.has(file)) throw missingFile('archive', file);
  return hashes.get(WEIGHTS_FILE)!.digest('hex');
}

/** A raw request body that is a .zip or .tar(.gz) of the adapter dir. */
export async function stageFromArchive(store: AdapterStore, body: Readable, kind: ArchiveKind, limit: number): Promise<Staged> {
  const staged = await store.stagingDir('upload');
  try {
    const archive = path.join(staged, kind === 'zip' ? 'upload.zip' : 'upload.tar.gz');
    await pipeline(body, byteLimit(limit, 'the upload'), createWriteStream(archive));
    return { staged, weightsSha256: await unpackArchive(kind, archive, staged, limit) };
  } catch (err) {
    await rm(staged, { recursive: true, force: true });
    throw err;
  }
}

export interface MultipartUpload extends Staged {
  fields: Record<string, string>;
}

/**
 * A multipart/form-data body: the parts `adapter_config.json` and `adapter_model.safetensors` (recognised by
 * file name), or one .zip / .tar.gz part; other parts are text fields (name, description, ...).
 */
export async function stageFromMultipart(store: AdapterStore, body: Readable, headers: IncomingHttpHeaders, limit: number): Promise<MultipartUpload> {
  const staged = await store.stagingDir('upload');
  const fields: Record<string, string> = {};
  const writes: Promise<void>[] = [];
  const received = new Set<string>();
  const hashes = new Map<string, Hash>();
  let archive: { kind: ArchiveKind; file: string } | undefined;
  let total = 0;
  try {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers, limits: { fileSize: limit, files: 3, fields: 20, fieldSize: 64 * 1024 } });
    } catch (err) {
      throw new InvalidInputError(`bad multipart request: ${(err as Error).message}`);
    }
    const done = new Promise<void>((resolve, reject) => {
      parser.on('field', (name, value) => (fields[name] = value));
      parser.on('file', (_field, stream, info) => {
        const base = path.basename(info.filename ?? '');
        const kind = archiveKindOf(base, info.mimeType);
        const target = (ADAPTER_FILES as readonly string[]).includes(base) ? base : kind ? `upload.${kind === 'zip' ? 'zip' : 'tar.gz'}` : undefined;
        if (!target) {
          stream.resume();
          return reject(new InvalidInputError(`unexpected file "${base}": send adapter_config.json and adapter_model.safetensors, or one .zip or .tar.gz`));
        }
        if (received.has(target)) {
          stream.resume();
          return reject(new InvalidInputError(`${base} sent twice`));
        }
        received.add(target);
        if (kind && !(ADAPTER_FILES as readonly string[]).includes(base)) archive = { kind, file: path.join(staged, target) };
        const hash = hashFor(target, hashes);
        const counter = new Transform({
          transform(chunk: Buffer, _enc, next) {
            total += chunk.length;
            if (total > limit) return next(tooLarge(limit, 'the upload'));
            hash?.update(chunk);
            next(null, chunk);
          },
        });
        stream.on('limit', () => counter.destroy(tooLarge(limit, base)));
        const write = pipeline(stream, counter, createWriteStream(path.join(staged, target)));
        write.catch((err: unknown) => {
          stream.resume();
          reject(err);
        });
        writes.push(write);
      });
      parser.on('error', (err: Error) => reject(new InvalidInputError(`bad multipart request: ${err.message}`)));
      parser.on('close', () => resolve());
    });
    body.pipe(parser);
    await done;
    await Promise.all(writes);
    if (archive) return { staged, fields, weightsSha256: await unpackArchive(archive.kind, archive.file, staged, limit) };
    for (const file of ADAPTER_FILES) if (!received.has(file)) throw missingFile('upload', file);
    return { staged, fields, weightsSha256: hashes.get(WEIGHTS_FILE)!.digest('hex') };
  } catch (err) {
    body.unpipe();
    body.resume(); // drain the rest so the connection can answer
    await Promise.allSettled(writes);
    await rm(staged, { recursive: true, force: true });
    throw err;
  }
}
