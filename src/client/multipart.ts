// A multipart/form-data request body streamed from local files in 1 MiB reads, with its exact length. fetch's
// own FormData encoder reads file blobs in 64 KiB pieces and copies each: for an 8B-shaped adapter (27 MB) it
// took longer than the server needed to receive, hash and store it.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';

const READ_CHUNK = 1 << 20;

export interface MultipartBody {
  body: ReadableStream<Uint8Array>;
  headers: Record<string, string>;
}

export interface FilePart {
  /** the part's name */
  name: string;
  /** the file name sent with it (the server recognises the parts by it) */
  filename: string;
  /** the local file */
  path: string;
}

/** `fields` as text parts, then each of `files` as a file part. */
export async function multipartBody(fields: Record<string, string>, files: FilePart[]): Promise<MultipartBody> {
  const boundary = `----loraforge-${randomUUID()}`;
  const quote = (s: string) => s.replace(/[\r\n"]/g, (c) => encodeURIComponent(c));
  const pieces: Array<Buffer | { path: string }> = [];
  for (const [name, value] of Object.entries(fields)) {
    pieces.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`));
  }
  let length = 0;
  for (const file of files) {
    pieces.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${quote(file.name)}"; filename="${quote(file.filename)}"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      ),
      { path: file.path },
      Buffer.from('\r\n'),
    );
    length += (await stat(file.path)).size;
  }
  pieces.push(Buffer.from(`--${boundary}--\r\n`));
  for (const piece of pieces) if (Buffer.isBuffer(piece)) length += piece.length;

  async function* chunks(): AsyncGenerator<Buffer> {
    for (const piece of pieces) {
      if (Buffer.isBuffer(piece)) yield piece;
      else yield* createReadStream(piece.path, { highWaterMark: READ_CHUNK }) as AsyncIterable<Buffer>;
    }
  }
  return {
    body: Readable.toWeb(Readable.from(chunks(), { objectMode: false })) as ReadableStream<Uint8Array>,
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(length) },
  };
}
