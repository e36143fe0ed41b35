// Lazy safetensors reading: `open` reads and validates the header only, and each tensor is read by its byte
// range, so a 15 GB checkpoint costs its header until a tensor is asked for. The format and its validation are
// in safetensors-header.ts, writing in safetensors-writer.ts; this module is the one others import.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { clip, InvalidFileError, NotFoundError, quote, UnsupportedError } from '../errors.js';
import { countNonFinite, DTYPE_SIZE, firstNonFinite, isFloatDtype, toFloat32, type FloatDtype, type NonFiniteCount } from './dtype.js';
import { MAX_HEADER_BYTES, identifyForeign, parseHeader, type SafetensorsHeader, type TensorInfo } from './safetensors-header.js';

export { DTYPE_SIZE, isDtype, isFloatDtype, type Dtype, type FloatDtype, type NonFiniteCount } from './dtype.js';
export { elementCount, parseHeader, MAX_HEADER_BYTES, type SafetensorsHeader, type TensorInfo } from './safetensors-header.js';
export { SafetensorsWriter, writeSafetensors, type TensorLayout, type TensorToWrite } from './safetensors-writer.js';

/** Reads go in pieces below libuv's 2 GiB limit per call. */
const IO_CHUNK = 1 << 30;
/** The buffer of a scan over every tensor's values (a multiple of every element size). */
const SCAN_PIECE = 16 << 20;

async function readFully(handle: FileHandle, into: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const length = Math.min(IO_CHUNK, into.length - done);
    const { bytesRead } = await handle.read(into, done, length, position + done);
    if (bytesRead === 0) {
      throw new InvalidFileError(file, `the file ended at byte ${position + done}, before the data it declares (was it truncated?)`);
    }
    done += bytesRead;
  }
}

export interface OpenOptions {
  /** Refuse tensors holding NaN or ±inf when they are read (readFloat32). */
  checkFinite?: boolean;
}

export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    /** Where the data section starts: 8 + header length. */
    readonly dataOffset: number,
    readonly metadata: Record<string, string>,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    private readonly checkFinite: boolean,
  ) {}

  static async open(file: string, options: OpenOptions = {}): Promise<SafetensorsFile> {
    let handle: FileHandle;
    try {
      // non-blocking, so a FIFO put in place of the file cannot stall the open; the stat below refuses it
      handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new NotFoundError(`${file}: no such file`);
      if (code === 'EISDIR') throw new InvalidFileError(file, 'is a directory, not a safetensors file');
      throw err;
    }
    try {
      const header = await readHeaderFrom(handle, file);
      return new SafetensorsFile(file, handle, header.dataOffset, header.metadata, header.tensors, options.checkFinite ?? false);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new NotFoundError(`${this.path}: no tensor named ${quote(name)}`);
    return info;
  }

  /** The tensor's raw little-endian bytes, in a fresh (hence aligned) buffer. */
  async readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    const bytes = new Uint8Array(info.end - info.begin);
    await readFully(this.handle, bytes, this.dataOffset + info.begin, this.path);
    return bytes;
  }

  /** The tensor as f32, converted from F32, F16, BF16 or F64. */
  async readFloat32(name: string): Promise<Float32Array> {
    const info = this.info(name);
    if (!isFloatDtype(info.dtype)) {
      throw new UnsupportedError(
        `${this.path}: tensor ${quote(name)} is ${info.dtype}; only F32, F16, BF16 and F64 tensors can be read as floats`,
      );
    }
    const bytes = await this.readBytes(name);
    const values = toFloat32(bytes, info.dtype);
    if (this.checkFinite) assertFinite(this.path, name, values);
    return values;
  }

  /**
   * Several tensors as f32, read in as few large reads as their byte ranges allow (ranges at most `gap` bytes
   * apart are read together): one read per adapter file instead of one per tensor. F32 tensors are views into
   * the read buffer, not copies.
   */
  async readManyFloat32(names: string[], gap = 1 << 16): Promise<Map<string, Float32Array>> {
    const infos = names.map((name) => ({ name, info: this.info(name) }));
    for (const { name, info } of infos) {
      if (!isFloatDtype(info.dtype)) {
        throw new UnsupportedError(`${this.path}: tensor ${quote(name)} is ${info.dtype}; only F32, F16, BF16 and F64 tensors can be read as floats`);
      }
    }
    infos.sort((a, b) => a.info.begin - b.info.begin);
    const out = new Map<string, Float32Array>();
    for (let i = 0; i < infos.length; ) {
      const begin = infos[i]!.info.begin;
      let end = infos[i]!.info.end;
      let j = i + 1;
      while (j < infos.length && infos[j]!.info.begin - end <= gap && infos[j]!.info.end - begin <= IO_CHUNK) end = Math.max(end, infos[j++]!.info.end);
      const bytes = new Uint8Array(end - begin);
      await readFully(this.handle, bytes, this.dataOffset + begin, this.path);
      const group = infos.slice(i, j);
      // an all-F32 run is checked in one loop (hundreds of short loops run mostly unoptimized); the tensor is
      // named only when something is found
      const whole = this.checkFinite && group.every((t) => t.info.dtype === 'F32') && bytes.length % 4 === 0;
      const clean = whole && firstNonFinite(new Float32Array(bytes.buffer, 0, bytes.length / 4)) < 0;
      for (const { name, info } of group) {
        const values = toFloat32(bytes.subarray(info.begin - begin, info.end - begin), info.dtype as FloatDtype);
        if (this.checkFinite && !clean) assertFinite(this.path, name, values);
        out.set(name, values);
      }
      i = j;
    }
    return out;
  }

  /**
   * NaN and ±inf in every float tensor, by tensor name (tensors holding none are left out), counted on the stored
   * bits in one pass over the data section, read in pieces of at most 16 MiB.
   */
  async scanNonFinite(): Promise<Map<string, NonFiniteCount>> {
    const infos = [...this.tensors.values()].filter((t) => isFloatDtype(t.dtype) && t.end > t.begin).sort((a, b) => a.begin - b.begin);
    const found = new Map<string, NonFiniteCount>();
    const span = infos.length > 0 ? infos[infos.length - 1]!.end - infos[0]!.begin : 0;
    const buffer = new Uint8Array(Math.min(SCAN_PIECE, span));
    const add = (name: string, c: NonFiniteCount, offset: number) => {
      if (c.first < 0) return;
      const seen = found.get(name);
      if (seen) {
        seen.nan += c.nan;
        seen.inf += c.inf;
      } else found.set(name, { ...c, first: offset + c.first });
    };
    for (let i = 0; i < infos.length; ) {
      const head = infos[i]!;
      const dtype = head.dtype as FloatDtype;
      if (head.end - head.begin > SCAN_PIECE) {
        // a large tensor alone, piece by piece (SCAN_PIECE is a whole number of elements)
        for (let at = head.begin; at < head.end; at += SCAN_PIECE) {
          const piece = buffer.subarray(0, Math.min(SCAN_PIECE, head.end - at));
          await readFully(this.handle, piece, this.dataOffset + at, this.path);
          add(head.name, countNonFinite(piece, dtype), (at - head.begin) / DTYPE_SIZE[dtype]);
        }
        i++;
        continue;
      }
      // small tensors together, in one read
      let j = i + 1;
      while (j < infos.length && infos[j]!.end - head.begin <= SCAN_PIECE) j++;
      const piece = buffer.subarray(0, infos[j - 1]!.end - head.begin);
      await readFully(this.handle, piece, this.dataOffset + head.begin, this.path);
      for (const t of infos.slice(i, j)) add(t.name, countNonFinite(piece.subarray(t.begin - head.begin, t.end - head.begin), t.dtype as FloatDtype), 0);
      i = j;
    }
    return found;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

async function readHeaderFrom(handle: FileHandle, file: string): Promise<SafetensorsHeader & { dataOffset: number }> {
  const stats = await handle.stat();
  if (!stats.isFile()) throw new InvalidFileError(file, 'is a directory or a device, not a safetensors file');
  const size = stats.size;
  const prefix = new Uint8Array(Math.min(size, 64));
  await readFully(handle, prefix, 0, file);
  const foreign = identifyForeign(prefix);
  if (foreign) throw new InvalidFileError(file, foreign);
  if (size < 8) throw new InvalidFileError(file, `${size} bytes is too short for a safetensors file (at least 8)`);
  const length = new DataView(prefix.buffer, 0, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    const what = length > BigInt(size - 8) ? ` and past the end of the ${size}-byte file` : '';
    const why = `over the ${MAX_HEADER_BYTES}-byte limit${what}: not a safetensors file, or corrupt`;
    throw new InvalidFileError(file, `the header claims ${length} bytes, ${why}`);
  }
  const headerLength = Number(length);
  if (headerLength > size - 8) {
    const why = `the file has only ${size - 8} after the length: truncated or not a safetensors file`;
    throw new InvalidFileError(file, `the header claims ${headerLength} bytes but ${why}`);
  }
  if (headerLength < 2) throw new InvalidFileError(file, `the header claims ${headerLength} bytes; the smallest header, {}, has 2`);
  const headerBytes = new Uint8Array(headerLength);
  await readFully(handle, headerBytes, 8, file);
  const dataOffset = 8 + headerLength;
  return { ...parseHeader(file, headerBytes, size - dataOffset), dataOffset };
}

/** Reads and validates only the header of `file` (metadata and tensor table); the file is closed again. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const st = await SafetensorsFile.open(file);
  await st.close();
  return { metadata: st.metadata, tensors: new Map(st.tensors) };
}

function assertFinite(file: string, name: string, values: Float32Array): void {
  if (firstNonFinite(values) >= 0) {
    const c = countNonFinite(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 'F32');
    throw new InvalidFileError(file, `tensor ${quote(name)}: ${describeNonFinite(c, values.length)}; refusing non-finite weights`, {
      tensor: clip(name, 200),
      ...c,
    });
  }
}

/** "3 NaN and 1 infinite of 4096 values (the first at element 17)". */
export function describeNonFinite(c: NonFiniteCount, total: number): string {
  const kinds = [c.nan && `${c.nan} NaN`, c.inf && `${c.inf} infinite`].filter(Boolean).join(' and ');
  return `${kinds} of ${total} values (the first at element ${c.first})`;
}
