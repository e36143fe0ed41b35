// Getting an adapter into a staging dir (`<dataDir>/tmp/...`), from where the registry validates and stores it:
// from a path under the configured import dir, or from an upload (the two files as multipart parts, or a .zip or
// .tar.gz of the directory). Uploads are streamed to disk with a byte limit, never held in memory whole, and the
// weights are hashed on the way in, so registering them needs no second read of the file.
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, realpath, rm, stat } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { clip, ForbiddenError, InvalidFileError, InvalidInputError, TooLargeError } from '../errors.js';
import { openAdapterFiles } from '../formats/adapter-files.js';
import { extractAdapter, type ArchiveLimits } from './archive.js';
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

/** What was staged: the dir, and the sha256 of its weights file when it was computed while writing it. */
export interface Staged {
  staged: string;
  weightsSha256?: string;
}

const tooLarge = (limit: number) =>
  new TooLargeError(`the upload is larger than the limit of ${limit} bytes (server.uploadLimitBytes)`, { limit });

/** The client closed the connection before its body was complete: nothing is answered, staging is removed. */
export const clientGone = () => new InvalidInputError('the client went away before the upload was complete');

/**
 * Watches a request body for the client going away mid-body (a 'close' before its end, or an 'error') and calls
 * `onGone`; returns the function that stops watching.
 */
function whenGone(body: Readable, onGone: (err: Error) => void): () => void {
  const closed = () => {
    if (!body.readableEnded) onGone(clientGone());
  };
  const failed = () => onGone(clientGone());
  body.on('close', closed);
  body.on('error', failed);
  return () => {
    body.off('close', closed);
    body.off('error', failed);
  };
}

/**
 * Copies `source` to `file`, counting the bytes against `limit` through `counter` (shared by every part of one
 * request); `hash` is fed the bytes when given.
 */
function writeCounted(source: Readable, file: string, counter: { add(n: number): void }, hash?: Hash): { done: Promise<void>; out: WriteStream } {
  const out = createWriteStream(file);
  const count = new Transform({
    transform(chunk: Buffer, _enc, next) {
      try {
        counter.add(chunk.length);
      } catch (err) {
        return next(err as Error);
      }
      hash?.update(chunk);
      next(null, chunk);
    },
  });
  return { done: pipeline(source, count, out), out };
}

const byteCounter = (limit: number) => {
  let seen = 0;
  return {
    add(n: number) {
      seen += n;
      if (seen > limit) throw tooLarge(limit);
    },
  };
};

/**
 * A raw request body that is a .zip, .tar or .tar.gz of the adapter dir (the kind read from its first bytes).
 * The request is never destroyed here: past the limit the rest of the body is read and dropped, so the answer
 * reaches a client that sends everything before it reads. A client that goes away leaves no staging behind.
 */
export async function stageFromArchive(store: AdapterStore, body: Readable, limits: ArchiveLimits): Promise<Staged> {
  const staged = await store.stagingDir('upload');
  const archive = path.join(staged, 'upload.archive');
  // the body flows through a pass-through: a failed write ends it, never the request itself
  const pass = new PassThrough();
  const stopWatching = whenGone(body, (err) => pass.destroy(err));
  try {
    body.pipe(pass);
    await writeCounted(pass, archive, byteCounter(limits.bytes)).done;
    stopWatching();
    const weightsSha256 = await extractAdapter(archive, staged, limits);
    await rm(archive, { force: true });
    return { staged, weightsSha256 };
  } catch (err) {
    stopWatching();
    body.unpipe(pass);
    body.resume();
    await rm(staged, { recursive: true, force: true });
    throw err;
  }
}

export interface MultipartUpload extends Staged {
  fields: Record<string, string>;
}

const isAdapterFile = (name: string): name is (typeof ADAPTER_FILES)[number] => (ADAPTER_FILES as readonly string[]).includes(name);

/**
 * A multipart/form-data body: the parts `adapter_config.json` and `adapter_model.safetensors` (recognised by
 * file name), or one part holding a .zip / .tar / .tar.gz (any other file name; the kind is read from its
 * bytes); other parts are text fields (name, description, ...). Bytes of all parts count against one limit.
 */
export async function stageFromMultipart(store: AdapterStore, body: Readable, headers: IncomingHttpHeaders, limits: ArchiveLimits): Promise<MultipartUpload> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers, limits: { fileSize: limits.bytes, files: 3, fields: 20, fieldSize: 64 * 1024, parts: 30 } });
  } catch (err) {
    throw new InvalidInputError(`bad multipart request: ${clip((err as Error).message, 200)}`);
  }
  const staged = await store.stagingDir('upload');
  const fields: Record<string, string> = {};
  const writes: Promise<void>[] = [];
  const outs: WriteStream[] = [];
  const received = new Set<string>();
  const counter = byteCounter(limits.bytes);
  const weightsHash = createHash('sha256');
  let archive: { file: string; name: string } | undefined;
  // the first failure wins, from the parser, a part's write or the client; it may come after the parser's end
  let failure: Error | undefined;
  let fail: (err: Error) => void = () => undefined;
  const stopWatching = whenGone(body, (err) => fail(err));
  try {
    const done = new Promise<void>((resolve, reject) => {
      fail = (err) => {
        if (failure) return;
        failure = err;
        // end every write in flight, so each settles and the staging can go
        for (const out of outs) out.destroy(err);
        reject(err);
      };
      parser.on('field', (name, value) => (fields[name] = value));
      parser.on('file', (_field, stream, info) => {
        const name = path.basename(info.filename ?? '');
        const target = isAdapterFile(name) ? name : 'upload.archive';
        if (failure || received.has(target)) {
          stream.resume();
          return fail(
            new InvalidInputError(
              target === 'upload.archive'
                ? `more than one archive or unexpected file ("${clip(name)}"): send adapter_config.json and adapter_model.safetensors, or one .zip / .tar.gz`
                : `${name} sent twice`,
            ),
          );
        }
        received.add(target);
        if (target === 'upload.archive') archive = { file: path.join(staged, target), name };
        const write = writeCounted(stream, path.join(staged, target), counter, target === WEIGHTS_FILE ? weightsHash : undefined);
        outs.push(write.out);
        stream.on('limit', () => write.out.destroy(tooLarge(limits.bytes)));
        writes.push(
          write.done.catch((err: unknown) => {
            stream.resume();
            fail(err as Error);
          }),
        );
      });
      parser.on('error', (err: Error) => fail(new InvalidInputError(`bad multipart request: ${clip(err.message, 200)}`)));
      parser.on('close', () => resolve());
    });
    body.pipe(parser);
    await done;
    await Promise.all(writes);
    stopWatching();
    if (failure) throw failure;
    if (archive) {
      if (received.size > 1) throw new InvalidInputError('send either the two files or one archive, not both');
      const weightsSha256 = await extractAdapter(archive.file, staged, limits, clip(archive.name || 'the file part'));
      await rm(archive.file, { force: true });
      return { staged, fields, weightsSha256 };
    }
    for (const file of ADAPTER_FILES) if (!received.has(file)) throw missingFile('upload', file);
    return { staged, fields, weightsSha256: weightsHash.digest('hex') };
  } catch (err) {
    stopWatching();
    body.unpipe(parser);
    body.resume(); // drain the rest so the connection can answer
    await Promise.allSettled(writes);
    await rm(staged, { recursive: true, force: true });
    throw err;
  }
}
