// Writing safetensors: a streaming writer whose header comes from the layout, so tensors are written one by one
// and the data is never all in memory, and a one-call `writeSafetensors` on top of it.
import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInputError } from '../errors.js';
import { fsyncPath, tempSibling } from './atomic.js';
import { DTYPE_SIZE, fromFloat32, isDtype, isFloatDtype, type Dtype, type FloatDtype } from './dtype.js';
import { METADATA_KEY, elementCount, isIndex } from './safetensors-header.js';

/** Writes go in pieces below libuv's 2 GiB limit per call. */
const IO_CHUNK = 1 << 30;

export interface TensorLayout {
  name: string;
  dtype: Dtype;
  shape: number[];
}

export interface TensorToWrite {
  name: string;
  dtype: Exclude<FloatDtype, 'F64'>;
  shape: number[];
  data: Float32Array;
}

function checkMetadata(metadata: Record<string, string>): void {
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw new InvalidInputError(`safetensors metadata ${JSON.stringify(key)} must be a string`);
  }
}

/** JSON of the header with keys in the given order (a plain object would move integer-like names first). */
function headerJson(metadata: Record<string, string>, entries: { layout: TensorLayout; begin: number; end: number }[]): string {
  const parts: string[] = [];
  if (Object.keys(metadata).length > 0) parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  for (const { layout, begin, end } of entries) {
    parts.push(`${JSON.stringify(layout.name)}:${JSON.stringify({ dtype: layout.dtype, shape: layout.shape, data_offsets: [begin, end] })}`);
  }
  return `{${parts.join(',')}}`;
}

export interface WriterOptions {
  /**
   * Hash the file while writing it: `finish()` then returns its sha256 when every write came in file order (one
   * dtype, tensors written in layout order), so a content-addressed store need not read it again.
   */
  sha256?: boolean;
}

interface Slot {
  layout: TensorLayout;
  begin: number;
  end: number;
  written: boolean;
}

/**
 * Streams a safetensors file whose tensor table is known up front: the header is written first, then each tensor
 * as it comes, so the data is never all in memory. Tensors may be written in any order, each exactly once.
 * The file appears at `path` only on `finish()` (written to a temporary sibling, fsynced, renamed); `abort()`
 * removes it. Data is laid out largest dtype first, as the Rust crate does, so every tensor is aligned.
 */
export class SafetensorsWriter {
  private finished = false;
  /** bytes hashed so far, from the start of the file; the hash is dropped at the first write out of order */
  private hashed = 0;

  private constructor(
    readonly path: string,
    private readonly tmpPath: string,
    private readonly handle: FileHandle,
    private readonly dataOffset: number,
    private readonly slots: Map<string, Slot>,
    private hash: Hash | undefined,
  ) {}

  static async create(file: string, layout: TensorLayout[], metadata: Record<string, string> = {}, options: WriterOptions = {}): Promise<SafetensorsWriter> {
    checkMetadata(metadata);
    const slots = new Map<string, Slot>();
    for (const t of layout) {
      if (t.name === METADATA_KEY) throw new InvalidInputError(`a tensor cannot be named ${METADATA_KEY}`);
      if (slots.has(t.name)) throw new InvalidInputError(`tensor ${JSON.stringify(t.name)} appears twice in the layout`);
      if (!isDtype(t.dtype)) throw new InvalidInputError(`tensor ${JSON.stringify(t.name)}: unknown dtype ${JSON.stringify(t.dtype)}`);
      if (!t.shape.every((d) => isIndex(d))) {
        throw new InvalidInputError(`tensor ${JSON.stringify(t.name)}: shape [${t.shape.join(', ')}] must hold non-negative integers`);
      }
      slots.set(t.name, { layout: { name: t.name, dtype: t.dtype, shape: [...t.shape] }, begin: 0, end: 0, written: false });
    }
    const ordered = [...slots.values()]
      .map((slot, index) => ({ slot, index }))
      .sort((a, b) => DTYPE_SIZE[b.slot.layout.dtype] - DTYPE_SIZE[a.slot.layout.dtype] || a.index - b.index)
      .map(({ slot }) => slot);
    let offset = 0;
    for (const slot of ordered) {
      slot.begin = offset;
      offset += elementCount(slot.layout.shape) * DTYPE_SIZE[slot.layout.dtype];
      slot.end = offset;
    }
    let json = headerJson(metadata, ordered);
    const jsonBytes = Buffer.byteLength(json);
    json += ' '.repeat((8 - (jsonBytes % 8)) % 8); // the data section starts 8-byte aligned
    const header = Buffer.alloc(8 + Buffer.byteLength(json));
    header.writeBigUInt64LE(BigInt(header.length - 8), 0);
    header.write(json, 8);

    const target = path.resolve(file);
    const tmpPath = tempSibling(target);
    const handle = await open(tmpPath, 'wx');
    const writer = new SafetensorsWriter(target, tmpPath, handle, header.length, slots, options.sha256 ? createHash('sha256') : undefined);
    try {
      await writer.writeAt(header, 0);
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return writer;
  }

  /** Writes tensor `name` from f32 values, converted to its layout dtype (F32, F16, BF16 or F64). */
  async write(name: string, data: Float32Array): Promise<void> {
    const slot = this.slot(name);
    if (!isFloatDtype(slot.layout.dtype)) {
      throw new InvalidInputError(`tensor ${JSON.stringify(name)} is ${slot.layout.dtype}: write its raw bytes with writeBytes`);
    }
    const count = elementCount(slot.layout.shape);
    if (data.length !== count) {
      const shape = slot.layout.shape.join(', ');
      throw new InvalidInputError(`tensor ${JSON.stringify(name)} of shape [${shape}] needs ${count} values, got ${data.length}`);
    }
    await this.put(slot, fromFloat32(data, slot.layout.dtype));
  }

  /** Writes tensor `name` from little-endian bytes already in its layout dtype (e.g. copied from another file). */
  async writeBytes(name: string, bytes: Uint8Array): Promise<void> {
    const slot = this.slot(name);
    if (bytes.length !== slot.end - slot.begin) {
      throw new InvalidInputError(`tensor ${JSON.stringify(name)} needs ${slot.end - slot.begin} bytes, got ${bytes.length}`);
    }
    await this.put(slot, bytes);
  }

  /** Checks that every tensor was written, fsyncs, and renames the file into place; the file's sha256 when asked for and known. */
  async finish(): Promise<string | undefined> {
    const missing = [...this.slots.values()].filter((s) => !s.written).map((s) => s.layout.name);
    if (missing.length > 0) {
      await this.abort();
      const names = `${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`;
      throw new InvalidInputError(`${this.path}: ${missing.length} tensor(s) never written: ${names}`);
    }
    this.finished = true;
    try {
      try {
        await this.handle.sync();
      } finally {
        await this.handle.close();
      }
      await rename(this.tmpPath, this.path);
    } catch (err) {
      await rm(this.tmpPath, { force: true });
      throw err;
    }
    await fsyncPath(path.dirname(this.path), true);
    let size = this.dataOffset;
    for (const slot of this.slots.values()) size = Math.max(size, this.dataOffset + slot.end);
    return this.hash && this.hashed === size ? this.hash.digest('hex') : undefined;
  }

  /** Drops the partial file. Safe to call more than once, and after a failed write. */
  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.handle.close().catch(() => undefined);
    await rm(this.tmpPath, { force: true });
  }

  private slot(name: string): Slot {
    if (this.finished) throw new InvalidInputError(`${this.path}: the writer is already finished or aborted`);
    const slot = this.slots.get(name);
    if (!slot) throw new InvalidInputError(`tensor ${JSON.stringify(name)} is not in the layout of ${this.path}`);
    if (slot.written) throw new InvalidInputError(`tensor ${JSON.stringify(name)} was already written to ${this.path}`);
    return slot;
  }

  private async put(slot: Slot, bytes: Uint8Array): Promise<void> {
    slot.written = true;
    try {
      await this.writeAt(bytes, this.dataOffset + slot.begin);
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  private async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    if (this.hash && position === this.hashed) {
      this.hash.update(bytes);
      this.hashed += bytes.length;
    } else {
      this.hash = undefined;
    }
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, Math.min(IO_CHUNK, bytes.length - done), position + done);
      done += bytesWritten;
    }
  }
}

/** Writes a whole safetensors file at once (atomically), tensors in the given order; returns what `finish()` does. */
export async function writeSafetensors(
  file: string,
  tensors: TensorToWrite[],
  metadata: Record<string, string> = {},
  options: WriterOptions = {},
): Promise<string | undefined> {
  const writer = await SafetensorsWriter.create(file, tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape })), metadata, options);
  try {
    for (const t of tensors) await writer.write(t.name, t.data);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer.finish();
}
