import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidFileError, InvalidInputError, UnsupportedError } from '../../src/errors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/formats/dtype.js';
import {
  SafetensorsFile,
  SafetensorsWriter,
  readSafetensorsHeader,
  writeSafetensors,
} from '../../src/formats/safetensors.js';
import { fixture, fixturesSkipReason, haveFixtures } from '../helpers/fixtures.js';
import { rawSafetensors } from './safetensors-raw.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-st-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = (name = 'x.safetensors') => path.join(dir, `${n++}-${name}`);

function ramp(count: number, scale = 0.37): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * scale) * (i % 7) - 0.5);
}

async function expectInvalid(file: string, pattern: RegExp): Promise<InvalidFileError> {
  const err = await SafetensorsFile.open(file).then(
    async (st) => {
      await st.close();
      return null;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidFileError);
  expect((err as InvalidFileError).message).toMatch(pattern);
  expect((err as InvalidFileError).message.startsWith(`${file}: `)).toBe(true);
  return err as InvalidFileError;
}

describe('safetensors round trips', () => {
  it('writes F32, F16 and BF16 with metadata and reads them back', async () => {
    const file = tmp();
    const a = ramp(6 * 5);
    const b = ramp(3 * 4, 1.3);
    const c = ramp(7, 0.01);
    await writeSafetensors(
      file,
      [
        { name: 'layer.a', dtype: 'F32', shape: [6, 5], data: a },
        { name: 'layer.b', dtype: 'F16', shape: [3, 4], data: b },
        { name: 'layer.c', dtype: 'BF16', shape: [7], data: c },
      ],
      { format: 'pt', note: 'hello' },
    );
    const st = await SafetensorsFile.open(file);
    try {
      expect(st.metadata).toEqual({ format: 'pt', note: 'hello' });
      expect([...st.tensors.keys()].sort()).toEqual(['layer.a', 'layer.b', 'layer.c']);
      expect(st.info('layer.b')).toMatchObject({ dtype: 'F16', shape: [3, 4] });
      expect(await st.readFloat32('layer.a')).toEqual(a);
      expect(await st.readFloat32('layer.b')).toEqual(f16ToF32(f32ToF16(b)));
      expect(await st.readFloat32('layer.c')).toEqual(bf16ToF32(f32ToBf16(c)));
      expect(Array.from(await st.readBytes('layer.b'))).toEqual(Array.from(new Uint8Array(f32ToF16(b).buffer)));
    } finally {
      await st.close();
    }
  });

  it('pads the header with spaces to 8 bytes and aligns every tensor to its dtype', async () => {
    const file = tmp();
    await writeSafetensors(file, [
      { name: 'h', dtype: 'F16', shape: [3], data: ramp(3) },
      { name: 'f', dtype: 'F32', shape: [5], data: ramp(5) },
      { name: 'b', dtype: 'BF16', shape: [1], data: ramp(1) },
    ]);
    const bytes = readFileSync(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    const text = bytes.subarray(8, 8 + headerLength).toString();
    expect(text).toMatch(/^\{.*\} *$/);
    expect(text).not.toContain('__metadata__'); // none given, none written
    const header = await readSafetensorsHeader(file);
    for (const t of header.tensors.values()) expect(t.begin % (t.dtype === 'F32' ? 4 : 2)).toBe(0);
    expect(header.tensors.get('f')!.begin).toBe(0); // the larger dtype comes first
  });

  it('keeps the layout order of integer-like names in the header', async () => {
    const file = tmp();
    await writeSafetensors(file, [
      { name: 'z', dtype: 'F32', shape: [1], data: Float32Array.of(1) },
      { name: '10', dtype: 'F32', shape: [1], data: Float32Array.of(2) },
      { name: '2', dtype: 'F32', shape: [1], data: Float32Array.of(3) },
    ]);
    const header = await readSafetensorsHeader(file);
    expect([...header.tensors.values()].sort((x, y) => x.begin - y.begin).map((t) => t.name)).toEqual(['z', '10', '2']);
    const st = await SafetensorsFile.open(file);
    expect(await st.readFloat32('2')).toEqual(Float32Array.of(3));
    await st.close();
  });

  it('reads F64 (converted to f32) and raw integer tensors, and handles empty and scalar tensors', async () => {
    const file = tmp();
    const w = await SafetensorsWriter.create(file, [
      { name: 'd', dtype: 'F64', shape: [3] },
      { name: 'ids', dtype: 'I64', shape: [2] },
      { name: 'empty', dtype: 'F32', shape: [0, 4] },
      { name: 'scalar', dtype: 'F32', shape: [] },
    ]);
    await w.write('scalar', Float32Array.of(7));
    await w.writeBytes('ids', new Uint8Array(new BigInt64Array([5n, -1n]).buffer));
    await w.write('d', Float32Array.of(0.1, -3, 1e30));
    await w.write('empty', new Float32Array(0));
    await w.finish();
    const st = await SafetensorsFile.open(file);
    expect(await st.readFloat32('d')).toEqual(Float32Array.of(0.1, -3, 1e30));
    expect(Array.from(new BigInt64Array((await st.readBytes('ids')).buffer))).toEqual([5n, -1n]);
    expect(await st.readFloat32('empty')).toEqual(new Float32Array(0));
    expect(await st.readFloat32('scalar')).toEqual(Float32Array.of(7));
    await expect(st.readFloat32('ids')).rejects.toThrow(UnsupportedError);
    await expect(st.readFloat32('nope')).rejects.toThrow(/no tensor named "nope"/);
    await st.close();
  });

  it('reads one tensor without touching the rest of the file', async () => {
    // A sparse file declaring a 6 GB tensor: opening it and reading the small tensor must cost only that tensor.
    const big = 6_000_000_000;
    const file = tmp();
    writeFileSync(
      file,
      rawSafetensors({ big: { dtype: 'U8', shape: [big], data_offsets: [0, big] }, small: { dtype: 'F32', shape: [2], data_offsets: [big, big + 8] } }, { data: 0 }),
    );
    truncateSync(file, statSync(file).size + big + 8);
    const st = await SafetensorsFile.open(file);
    expect(await st.readFloat32('small')).toEqual(new Float32Array(2));
    expect(st.info('big').end).toBe(big);
    await st.close();
  });

  it('reads many tensors in few reads, skipping far gaps, with the values readFloat32 gives', async () => {
    // a 6 GB unread tensor between two groups: the big gap must not be read
    const big = 6_000_000_000;
    const file = tmp();
    const tensors = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      h: { dtype: 'F16', shape: [2], data_offsets: [8, 12] },
      b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] },
      big: { dtype: 'U8', shape: [big], data_offsets: [16, 16 + big] },
      c: { dtype: 'F32', shape: [2], data_offsets: [16 + big, 24 + big] },
    };
    writeFileSync(file, rawSafetensors(tensors, { data: 0 }));
    truncateSync(file, statSync(file).size + 24 + big);
    const st = await SafetensorsFile.open(file);
    const many = await st.readManyFloat32(['c', 'a', 'h', 'b']);
    for (const name of ['a', 'h', 'b', 'c']) expect(many.get(name)).toEqual(await st.readFloat32(name));
    expect(many.get('a')!.buffer).toBe(many.get('b')!.buffer); // one read for the first three
    await expect(st.readManyFloat32(['a', 'big'])).rejects.toThrow(UnsupportedError);
    await st.close();
  });

  it('refuses non-finite values when asked to check', async () => {
    const file = tmp();
    await writeSafetensors(file, [
      { name: 'ok', dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) },
      { name: 'bad', dtype: 'F16', shape: [3], data: Float32Array.of(1, 1e6, 0) },
    ]);
    const lax = await SafetensorsFile.open(file);
    expect((await lax.readFloat32('bad'))[1]).toBe(Infinity);
    await lax.close();
    const strict = await SafetensorsFile.open(file, { checkFinite: true });
    expect(await strict.readFloat32('ok')).toEqual(Float32Array.of(1, 2));
    await expect(strict.readFloat32('bad')).rejects.toThrow(`${file}: tensor "bad": 1 infinite of 3 values (the first at element 1); refusing non-finite weights`);
    await expect(strict.readManyFloat32(['ok', 'bad'])).rejects.toThrow(`${file}: tensor "bad": 1 infinite of 3 values (the first at element 1); refusing non-finite weights`);
    await strict.close();
    // all F32: checked in one loop, and the tensor and element still named (in the 4-wide part and in the tail)
    const f32 = tmp();
    const y = Float32Array.from({ length: 11 }, (_, i) => i);
    y[5] = NaN;
    await writeSafetensors(f32, [
      { name: 'x', dtype: 'F32', shape: [5], data: Float32Array.of(1, 2, 3, 4, 5) },
      { name: 'y', dtype: 'F32', shape: [11], data: y },
      { name: 'z', dtype: 'F32', shape: [2], data: Float32Array.of(1, -Infinity) },
    ]);
    const all = await SafetensorsFile.open(f32, { checkFinite: true });
    await expect(all.readManyFloat32(['x', 'y', 'z'])).rejects.toThrow(`${f32}: tensor "y": 1 NaN of 11 values (the first at element 5)`);
    await expect(all.readManyFloat32(['x', 'z'])).rejects.toThrow(`${f32}: tensor "z": 1 infinite of 2 values (the first at element 1)`);
    expect((await all.readManyFloat32(['x'])).get('x')).toEqual(Float32Array.of(1, 2, 3, 4, 5));
    await all.close();
  });
});

describe('streaming writer', () => {
  it('accepts tensors in any order and creates the file only on finish', async () => {
    const file = tmp();
    const w = await SafetensorsWriter.create(file, [
      { name: 'a', dtype: 'F32', shape: [2] },
      { name: 'b', dtype: 'BF16', shape: [2] },
    ], { format: 'pt' });
    await w.write('b', Float32Array.of(1, 2));
    expect(() => statSync(file)).toThrow();
    await w.write('a', Float32Array.of(3, 4));
    await w.finish();
    const st = await SafetensorsFile.open(file);
    expect(await st.readFloat32('a')).toEqual(Float32Array.of(3, 4));
    expect(await st.readFloat32('b')).toEqual(Float32Array.of(1, 2));
    await st.close();
  });

  it('refuses wrong names, sizes, repeats and missing tensors, and leaves no file behind', async () => {
    const file = tmp('refuse.safetensors');
    const w = await SafetensorsWriter.create(file, [
      { name: 'a', dtype: 'F32', shape: [2, 2] },
      { name: 'b', dtype: 'F32', shape: [1] },
    ]);
    await expect(w.write('zz', Float32Array.of(1))).rejects.toThrow(/not in the layout/);
    await expect(w.write('a', Float32Array.of(1))).rejects.toThrow(/needs 4 values, got 1/);
    await w.write('a', new Float32Array(4));
    await expect(w.write('a', new Float32Array(4))).rejects.toThrow(/already written/);
    await expect(w.finish()).rejects.toThrow(/1 tensor\(s\) never written: b/);
    expect(readdirSync(dir).filter((f) => f.includes('refuse'))).toEqual([]);
  });

  it('refuses bad layouts up front', async () => {
    await expect(SafetensorsWriter.create(tmp(), [{ name: 'a', dtype: 'F32', shape: [1] }, { name: 'a', dtype: 'F32', shape: [1] }])).rejects.toThrow(InvalidInputError);
    await expect(SafetensorsWriter.create(tmp(), [{ name: '__metadata__', dtype: 'F32', shape: [1] }])).rejects.toThrow(InvalidInputError);
    await expect(SafetensorsWriter.create(tmp(), [{ name: 'a', dtype: 'F32', shape: [-1] }])).rejects.toThrow(/non-negative integers/);
    await expect(SafetensorsWriter.create(tmp(), [{ name: 'a', dtype: 'Q4' as never, shape: [1] }])).rejects.toThrow(/unknown dtype/);
  });

  it('returns the sha256 of the file when asked and every write came in file order, and nothing otherwise', async () => {
    const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
    const layout = [
      { name: 'a', dtype: 'BF16' as const, shape: [3] },
      { name: 'b', dtype: 'BF16' as const, shape: [2, 2] },
    ];
    const inOrder = tmp();
    const w = await SafetensorsWriter.create(inOrder, layout, { format: 'pt' }, { sha256: true });
    await w.write('a', ramp(3));
    await w.write('b', ramp(4));
    expect(await w.finish()).toBe(sha(inOrder));
    expect(await writeSafetensors(tmp(), [{ name: 'x', dtype: 'F32', shape: [5], data: ramp(5) }], {}, { sha256: true })).toMatch(/^[0-9a-f]{64}$/);

    const outOfOrder = await SafetensorsWriter.create(tmp(), layout, {}, { sha256: true });
    await outOfOrder.write('b', ramp(4));
    await outOfOrder.write('a', ramp(3));
    expect(await outOfOrder.finish()).toBeUndefined();
    const notAsked = await SafetensorsWriter.create(tmp(), layout);
    await notAsked.write('a', ramp(3));
    await notAsked.write('b', ramp(4));
    expect(await notAsked.finish()).toBeUndefined();
  });

  it('abort removes the partial file', async () => {
    const file = tmp('aborted.safetensors');
    const w = await SafetensorsWriter.create(file, [{ name: 'a', dtype: 'F32', shape: [1] }]);
    await w.abort();
    await w.abort();
    expect(readdirSync(dir).filter((f) => f.includes('aborted'))).toEqual([]);
  });
});

describe('malformed files', () => {
  const valid = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const cases: [string, Uint8Array | string, RegExp][] = [
    ['empty file', new Uint8Array(0), /0 bytes is too short/],
    ['short file', new Uint8Array(5), /5 bytes is too short/],
    ['header length past the file', rawSafetensors(valid, { length: 1000n }), /header claims 1000 bytes but the file has only/],
    ['absurd header size', rawSafetensors(valid, { length: 2n ** 62n }), /over the 100000000-byte limit and past the end/],
    ['zero header length', rawSafetensors(valid, { length: 0n }), /claims 0 bytes/],
    ['not JSON', rawSafetensors('{"a": nope}'), /not valid JSON/],
    ['not an object', rawSafetensors('[1,2]'), /does not start with "\{"/],
    ['null entry', rawSafetensors('{"a": null}'), /tensor "a": expected \{dtype, shape, data_offsets\}, found null/],
    ['invalid UTF-8', rawSafetensors(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8/],
    ['unknown dtype', rawSafetensors({ a: { dtype: 'Q4_K', shape: [2], data_offsets: [0, 8] } }, { data: 8 }), /tensor "a": unknown dtype "Q4_K"/],
    ['negative dim', rawSafetensors({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, { data: 8 }), /tensor "a": shape \[-2\] has number -2/],
    ['fractional dim', rawSafetensors({ a: { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] } }, { data: 8 }), /has number 2.5/],
    ['string dim', rawSafetensors({ a: { dtype: 'F32', shape: ['2'], data_offsets: [0, 8] } }, { data: 8 }), /has the string "2"/],
    ['missing offsets', rawSafetensors({ a: { dtype: 'F32', shape: [2] } }, { data: 8 }), /data_offsets must be \[begin, end\].*missing/],
    ['offsets past the data', rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, { data: 4 }), /tensor "a": data_offsets \[0, 8\] run past the data section \(4 bytes\)/],
    ['offsets reversed', rawSafetensors({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, { data: 8 }), /end before they begin/],
    ['shape vs bytes', rawSafetensors({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, { data: 8 }), /tensor "a": shape \[3\] of F32 needs 12 bytes, but data_offsets \[0, 8\] hold 8/],
    ['huge shape', rawSafetensors({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, { data: 8 }), /needs over 2\^53 bytes/],
    [
      'overlap',
      rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, { data: 12 }),
      /tensor "b": data_offsets \[4, 12\] overlap tensor "a" ending at 8/,
    ],
    [
      'hole',
      rawSafetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, { data: 12 }),
      /tensor "b": bytes 4..8 after tensor "a" belong to no tensor/,
    ],
    ['hole at the start', rawSafetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, { data: 8 }), /bytes 0..4 at the start/],
    ['trailing bytes', rawSafetensors(valid, { data: 12 }), /data section has 12 bytes but the tensors cover 8/],
    ['metadata not an object', rawSafetensors({ ...valid, __metadata__: ['x'] }, { data: 8 }), /__metadata__ must be an object of strings, not an array/],
    ['metadata value not a string', rawSafetensors({ ...valid, __metadata__: { format: 1 } }, { data: 8 }), /__metadata__ value of "format" must be a string, not number 1/],
    ['git lfs pointer', 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 45118424\n', /Git LFS pointer.*git lfs install && git lfs pull/],
    ['pickle', new Uint8Array([0x80, 0x02, 0x7d, 0x71, 0, 0, 0, 0, 0, 0]), /Python pickle/],
    ['zip', 'PK\x03\x04 then a torch archive', /zip archive/],
    ['html', '<!DOCTYPE html><html>Not found</html>', /HTML page/],
  ];
  for (const [what, content, pattern] of cases) {
    it(`refuses ${what}`, async () => {
      const file = tmp();
      writeFileSync(file, content);
      await expectInvalid(file, pattern);
    });
  }

  it('names the tensor in the error details', async () => {
    const file = tmp();
    writeFileSync(file, rawSafetensors({ 'layers.0.w': { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, { data: 8 }));
    const err = await expectInvalid(file, /tensor "layers.0.w"/);
    expect(err.details).toEqual({ tensor: 'layers.0.w' });
  });

  it('refuses a file truncated after it was opened, when a tensor is read', async () => {
    const file = tmp();
    await writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [1000], data: ramp(1000) }]);
    const st = await SafetensorsFile.open(file);
    truncateSync(file, 100);
    await expect(st.readFloat32('a')).rejects.toThrow(/the file ended at byte 100/);
    await st.close();
  });

  it('says what a missing file or a directory is', async () => {
    await expect(SafetensorsFile.open(path.join(dir, 'missing.safetensors'))).rejects.toThrow(/no such file/);
    await expect(SafetensorsFile.open(dir)).rejects.toThrow(/is a directory/);
  });
});

describe.skipIf(!haveFixtures)('real files', () => {
  it('reads an F16 file written by torch, whose weights are all NaN (a diverged training run)', async () => {
    const file = fixture('peft/edge/fp16-gemma-2b-jr1407/adapter_model.safetensors');
    const name = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
    const st = await SafetensorsFile.open(file);
    expect(st.metadata).toEqual({ format: 'pt' });
    expect(st.tensors.size).toBe(72);
    expect(st.info(name)).toMatchObject({ dtype: 'F16', shape: [16, 2048] });
    const a = await st.readFloat32(name);
    expect(a.length).toBe(16 * 2048);
    expect(a.every(Number.isNaN)).toBe(true);
    await st.close();
    const strict = await SafetensorsFile.open(file, { checkFinite: true });
    await expect(strict.readFloat32(name)).rejects.toThrow(`tensor "${name}": 32768 NaN of 32768 values (the first at element 0)`);
    await strict.close();
  });

  it('reads a PEFT F32 file like numpy does', async () => {
    // the first values of SmolLM's first lora_B, as numpy.frombuffer reads them
    const EXPECTED_SMOLLM_B = [0.09484095871448517, 0.05343251675367355, -0.02475498989224434];
    const st = await SafetensorsFile.open(fixture('peft/SmolLM-135M-Instruct/tfm-hitesh-medai-5epochs/adapter_model.safetensors'));
    const b = await st.readFloat32('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight');
    expect(b.length).toBe(576 * 16);
    expect(Array.from(b.subarray(0, 3))).toEqual(EXPECTED_SMOLLM_B);
    await st.close();
  });
  it('refuses the Git LFS pointer fixture', async () => {
    await expectInvalid(fixture('peft/edge/git-lfs-pointer-llama-3.2-1b-hmbown/adapter_model.safetensors'), /Git LFS pointer/);
  });
});
if (!haveFixtures) it.skip(fixturesSkipReason, () => undefined);
