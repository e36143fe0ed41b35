// Seeded fuzzing of the safetensors reader: every mutation designed to break a file must be refused with an
// InvalidFileError, and random byte flips may leave a readable file but must never raise anything else.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidFileError } from '../../src/errors.js';
import { isFloatDtype, SafetensorsFile, DTYPE_SIZE, type Dtype } from '../../src/formats/safetensors.js';
import { rawSafetensors } from './safetensors-raw.js';
import { seeded } from '../helpers/random.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Entry = { dtype: unknown; shape: unknown; data_offsets: unknown };
type Header = Record<string, Entry | Record<string, unknown>>;

const rnd = seeded(20240611);
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const DTYPES = Object.keys(DTYPE_SIZE) as Dtype[];
const JUNK: unknown[] = [null, true, -1, 1.5, 'x', '', [], {}, [1, 2, 3], { a: 1 }, 2 ** 60, -0.5, '7', [[1]], 'F32 ', 'f32'];

/** A valid header with 1-5 tensors tiling `dataBytes` exactly. */
function validHeader(): { header: Header; dataBytes: number } {
  const header: Header = {};
  let offset = 0;
  const count = 1 + int(5);
  for (let i = 0; i < count; i++) {
    const dtype = pick(DTYPES);
    const shape = Array.from({ length: int(4) }, () => 1 + int(5));
    const bytes = shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[dtype];
    header[`t${i}.${pick(['weight', 'lora_A.weight', '0', 'x y'])}`] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  if (rnd() < 0.5) header.__metadata__ = { format: 'pt' };
  return { header, dataBytes: offset };
}

const tensorNames = (h: Header) => Object.keys(h).filter((k) => k !== '__metadata__');

/** Mutations that always make the file invalid. Each returns the file's bytes. */
const breakers: ((h: Header, dataBytes: number) => Uint8Array)[] = [
  (h, d) => {
    (h[pick(tensorNames(h))] as Entry).dtype = pick([...JUNK, 'Q4_K', 'F128', 'float32', 'I128']);
    return rawSafetensors(h, { data: d });
  },
  (h, d) => {
    const e = h[pick(tensorNames(h))] as Entry;
    const shape = [...(e.shape as unknown[])];
    shape.splice(int(shape.length + 1), 0, pick([-1, -7, 1.5, 0.1, '3', null, [2], {}, true, 2 ** 60, 1e300]));
    e.shape = shape;
    return rawSafetensors(h, { data: d });
  },
  (h, d) => {
    const e = h[pick(tensorNames(h))] as Entry;
    e.shape = pick([null, 'abc', 4, {}, true]);
    return rawSafetensors(h, { data: d });
  },
  (h, d) => {
    // change one size of a non-empty tensor: its byte size no longer matches
    const e = h[pick(tensorNames(h))] as Entry;
    const shape = e.shape as number[];
    if (shape.length === 0) e.shape = [2 + int(3)];
    else {
      const i = int(shape.length);
      shape[i] = shape[i]! + 1 + int(3);
    }
    return rawSafetensors(h, { data: d });
  },
  (h, d) => {
    // move one offset or both: either the size or the tiling breaks
    const e = h[pick(tensorNames(h))] as Entry;
    const [begin, end] = e.data_offsets as [number, number];
    const delta = (1 + int(16)) * (rnd() < 0.5 ? -1 : 1);
    e.data_offsets = pick([[begin + delta, end], [begin, end + delta], [begin + delta, end + delta]]);
    return rawSafetensors(h, { data: d });
  },
  (h, d) => {
    (h[pick(tensorNames(h))] as Entry).data_offsets = pick([null, [0], [0, 1, 2], ['0', '4'], [-4, 0], [0.5, 4.5], 'x', {}, [2 ** 60, 2 ** 60 + 4]]);
    return rawSafetensors(h, { data: d });
  },
  (h, d) => {
    const e = h[pick(tensorNames(h))] as Entry;
    delete (e as Partial<Entry>)[pick(['dtype', 'shape', 'data_offsets'] as const)];
    return rawSafetensors(h, { data: d });
  },
  (h, d) => {
    h[pick(tensorNames(h))] = pick([null, 1, 'x', [], true]) as never;
    return rawSafetensors(h, { data: d });
  },
  (h, d) => {
    h.__metadata__ = pick([null, 1, 'x', [], [['a', 'b']], { format: 1 }, { a: null }, { a: ['x'] }, { a: {} }]) as never;
    return rawSafetensors(h, { data: d });
  },
  (h, d) => rawSafetensors(h, { data: d + 1 + int(64) }), // trailing bytes
  (h, d) => {
    // truncated: into the data, or into the header
    const bytes = rawSafetensors(h, { data: d });
    return bytes.subarray(0, bytes.length - 1 - int(d + 8));
  },
  (h, d) => {
    // a wrong length prefix
    const bytes = rawSafetensors(h, { data: d });
    const true_ = JSON.stringify(h).length;
    const wrong = pick([0, 1, true_ - 1 - int(true_ - 1), true_ + 1 + int(100), 2 ** 27 + int(1000), 2 ** 40, 2 ** 63 - 1]);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(wrong === true_ ? true_ + 1 : wrong), true);
    return bytes;
  },
  (h, d) => {
    // cut the JSON text short, keeping the length consistent
    const text = JSON.stringify(h);
    return rawSafetensors(text.slice(0, 1 + int(text.length - 2)), { data: d });
  },
  () => rawSafetensors(pick(['', ' ', 'null', '[]', '"x"', '1', '{', '}', '{"a":}', '{"a":1,}', "{'a':1}", '\u0000{}', '{}\u0000', '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}x'])),
];

async function openAndReadAll(file: string): Promise<void> {
  const st = await SafetensorsFile.open(file);
  try {
    for (const t of st.tensors.values()) {
      if (isFloatDtype(t.dtype)) await st.readFloat32(t.name);
      else await st.readBytes(t.name);
    }
  } finally {
    await st.close();
  }
}

async function outcome(bytes: Uint8Array, i: number): Promise<'ok' | InvalidFileError> {
  const file = path.join(dir, `${i}.safetensors`);
  writeFileSync(file, bytes);
  try {
    await openAndReadAll(file);
    return 'ok';
  } catch (err) {
    if (err instanceof InvalidFileError && err.message.startsWith(`${file}: `)) return err;
    throw new Error(`case ${i}: expected an InvalidFileError naming the file, got ${String(err)}`, { cause: err });
  }
}

describe('safetensors fuzzing (seeded)', () => {
  it('accepts every valid file the generator makes', async () => {
    for (let i = 0; i < 50; i++) {
      const { header, dataBytes } = validHeader();
      expect(await outcome(rawSafetensors(header, { data: dataBytes }), i)).toBe('ok');
    }
  });

  it('refuses 420 broken files, each with an InvalidFileError', async () => {
    const kinds = new Set<string>();
    for (let i = 0; i < 420; i++) {
      const { header, dataBytes } = validHeader();
      const bytes = breakers[i % breakers.length]!(header, dataBytes);
      const result = await outcome(bytes, 1000 + i);
      expect(result, `case ${i} (mutation ${i % breakers.length}): ${new TextDecoder().decode(bytes.subarray(8, 200))}`).toBeInstanceOf(InvalidFileError);
      const message = (result as InvalidFileError).message.replace(/^[^:]*: /, '');
      kinds.add(message.replace(/"[^"]*"/g, '"…"').replace(/\[[^\]]*\]/g, '[…]').replace(/\d+/g, 'N').slice(0, 30));
    }
    expect(kinds.size).toBeGreaterThanOrEqual(15); // the mutations reach many different checks
  });

  it('survives 300 random byte flips and 60 random files without any other exception', async () => {
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const { header, dataBytes } = validHeader();
      const bytes = rawSafetensors(header, { data: dataBytes });
      const headerEnd = 8 + JSON.stringify(header).length;
      for (let k = 1 + int(4); k > 0; k--) bytes[int(headerEnd)] = int(256);
      if ((await outcome(bytes, 2000 + i)) !== 'ok') refused++;
    }
    for (let i = 0; i < 60; i++) {
      const bytes = Uint8Array.from({ length: int(300) }, () => int(256));
      if (rnd() < 0.5 && bytes.length >= 8) new DataView(bytes.buffer).setBigUint64(0, BigInt(int(bytes.length)), true);
      if ((await outcome(bytes, 3000 + i)) !== 'ok') refused++;
    }
    expect(refused).toBeGreaterThan(300); // nearly every flip breaks something
  });
});
