// The safetensors header (https://github.com/huggingface/safetensors): an 8-byte little-endian length N, then N
// bytes of JSON, {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}, then the
// data section. Validation is as strict as the Rust crate's (offsets must tile the data section exactly), and
// every failure is an InvalidFileError naming the file and the tensor, never another exception: these files
// come from strangers.
import { clip, InvalidFileError } from '../errors.js';
import { DTYPE_SIZE, isDtype, type Dtype } from './dtype.js';
import { parseJsonText } from './json-file.js';

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Byte offsets in the data section (after the 8-byte length and the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

/** The Rust crate's limit: a larger header is an attack or a corrupt file, not a model. */
export const MAX_HEADER_BYTES = 100_000_000;
export const METADATA_KEY = '__metadata__';

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A value for an error message, cut short: a hostile header can hold megabytes in one field. */
function brief(value: unknown): string {
  return clip(JSON.stringify(value) ?? 'missing', 200);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(clip(value, 40))}`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

export function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Validates a parsed header against a data section of `dataBytes` bytes. Exported for tests and for readers of
 * headers fetched by other means; `SafetensorsFile.open` is the usual entry point.
 */
export function parseHeader(file: string, headerBytes: Uint8Array, dataBytes: number): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new InvalidFileError(file, 'the safetensors header is not valid UTF-8');
  }
  if (!text.startsWith('{')) {
    throw new InvalidFileError(file, 'the safetensors header does not start with "{": this is not a safetensors file');
  }
  // bounded depth: a nested `shape` or `data_offsets` is quoted with JSON.stringify, which recurses
  const json = parseJsonText(text, file, 'the safetensors header');
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidFileError(file, `the safetensors header must be a JSON object, not ${describe(json)}`);
  }

  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
        throw new InvalidFileError(file, `__metadata__ must be an object of strings, not ${describe(entry)}`);
      }
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== 'string') {
          throw new InvalidFileError(file, `__metadata__ value of ${brief(key)} must be a string, not ${describe(value)}`);
        }
      }
      metadata = Object.fromEntries(Object.entries(entry)) as Record<string, string>; // own keys, even "__proto__"
      continue;
    }
    tensors.set(name, parseEntry(file, name, entry, dataBytes));
  }
  checkTiling(file, [...tensors.values()], dataBytes);
  return { metadata, tensors };
}

function parseEntry(file: string, name: string, entry: unknown, dataBytes: number): TensorInfo {
  const bad = (message: string) => new InvalidFileError(file, `tensor ${brief(name)}: ${message}`, { tensor: clip(name, 200) });
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw bad(`expected {dtype, shape, data_offsets}, found ${describe(entry)}`);
  }
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (!isDtype(dtype)) {
    throw bad(`unknown dtype ${typeof dtype === 'string' ? JSON.stringify(dtype) : describe(dtype)} (known: ${Object.keys(DTYPE_SIZE).join(', ')})`);
  }
  if (!Array.isArray(shape)) throw bad(`shape must be an array of sizes, not ${describe(shape)}`);
  for (const d of shape) {
    if (!isIndex(d)) throw bad(`shape ${brief(shape)} has ${describe(d)}: sizes are non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isIndex(offsets[0]) || !isIndex(offsets[1])) {
    throw bad(`data_offsets must be [begin, end] with non-negative integers, not ${brief(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(`data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataBytes) throw bad(`data_offsets [${begin}, ${end}] run past the data section (${dataBytes} bytes)`);
  let bytes = shape.includes(0) ? 0 : DTYPE_SIZE[dtype];
  for (const d of shape) {
    bytes *= d;
    if (bytes > Number.MAX_SAFE_INTEGER) break; // past 2^53 the product is inexact, and impossible anyway
  }
  if (bytes !== end - begin) {
    const need = bytes > Number.MAX_SAFE_INTEGER ? 'over 2^53 bytes' : `${bytes} bytes`;
    throw bad(`shape ${brief(shape)} of ${dtype} needs ${need}, but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** Tensors must cover the data section exactly, without overlaps or holes (as the Rust crate requires). */
function checkTiling(file: string, tensors: TensorInfo[], dataBytes: number): void {
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous: TensorInfo | undefined;
  for (const t of sorted) {
    if (t.begin < expected) {
      const overlap = `data_offsets [${t.begin}, ${t.end}] overlap tensor ${brief(previous?.name)} ending at ${expected}`;
      throw new InvalidFileError(file, `tensor ${brief(t.name)}: ${overlap}`, { tensor: clip(t.name, 200) });
    }
    if (t.begin > expected) {
      const after = previous ? `after tensor ${brief(previous.name)}` : 'at the start of the data section';
      throw new InvalidFileError(file, `tensor ${brief(t.name)}: bytes ${expected}..${t.begin} ${after} belong to no tensor`, { tensor: clip(t.name, 200) });
    }
    expected = t.end;
    previous = t;
  }
  if (expected !== dataBytes) {
    const where = previous ? ` after tensor ${brief(previous.name)}` : '';
    throw new InvalidFileError(
      file,
      `the data section has ${dataBytes} bytes but the tensors cover ${expected}: ` +
        `${dataBytes - expected} bytes${where} belong to no tensor (truncated or padded file?)`,
      previous ? { tensor: clip(previous.name, 200) } : undefined,
    );
  }
}

/** Says what a file that is not safetensors most likely is, so the user knows what to do. */
export function identifyForeign(prefix: Uint8Array): string | null {
  const text = new TextDecoder('latin1').decode(prefix);
  if (text.startsWith('version https://git-lfs')) {
    return (
      'this is a Git LFS pointer, not the weights: the real file was never downloaded. ' +
      'Run `git lfs install && git lfs pull` in the repository it came from (or download the file itself)'
    );
  }
  if (text.startsWith('PK\x03\x04')) return 'this is a zip archive (a PyTorch torch.save file?), not safetensors';
  if (prefix[0] === 0x80 && prefix[1] !== undefined && prefix[1] >= 2 && prefix[1] <= 5) {
    return 'this is a Python pickle (a PyTorch .bin file?), not safetensors';
  }
  if (/^\s*<(!doctype|html)/i.test(text)) return 'this is an HTML page (a failed download?), not safetensors';
  return null;
}
