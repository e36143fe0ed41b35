// openAdapterFiles (what may stand in an adapter dir), bounded JSON, clipped one-line messages, and the value scan
// registration runs (NaN/inf on the bits of every float dtype, checked against a plain reference).
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clip, InvalidFileError, MAX_MESSAGE_CHARS, NotFoundError, oneLine, quote, UnsupportedError } from '../../src/errors.js';
import { countNonFinite, fromFloat32, toFloat32, type FloatDtype } from '../../src/formats/dtype.js';
import { jsonDepth, parseJsonText, readJsonObject } from '../../src/formats/json-file.js';
import { inspectAdapter, openAdapterFiles, parseAdapterConfig } from '../../src/formats/peft.js';
import { SafetensorsFile, writeSafetensors } from '../../src/formats/safetensors.js';
import { writeTestAdapter } from '../helpers/adapters.js';

let root: string;
let n = 0;
const fresh = () => path.join(root, `d${n++}`);
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'lf-adapter-files-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

const SHAPE = { hidden: 8, kv: 4, layers: 1, rank: 2, targets: ['q' as const] };

describe('messages', () => {
  it('clips with an ellipsis, keeping surrogate pairs whole, and errors stay one bounded line', () => {
    expect(clip('abcdef', 6)).toBe('abcdef');
    expect(clip('abcdefg', 6)).toBe('abcde…');
    expect(clip('ab😀cd', 4)).toBe('ab…'); // the emoji's pair would be cut: dropped whole
    expect(quote('x'.repeat(500), 10)).toBe(`"${'x'.repeat(9)}…"`);
    expect(oneLine('a\n  b\r\nc')).toBe('a; b; c');
    expect(oneLine('name \u001b[2J\u0000\tx')).toBe('name \ufffd[2J\ufffd x'); // no terminal escapes
    const err = new InvalidFileError('f', `line one\nline two ${'y'.repeat(5000)}`);
    expect(err.message).toMatch(/^f: line one; line two y+…$/);
    expect(err.message.length).toBe(MAX_MESSAGE_CHARS);
  });
});

describe('bounded JSON', () => {
  it('measures depth without recursion, skipping brackets inside strings', () => {
    expect(jsonDepth('{"a": [1, {"b": []}]}')).toBe(4);
    expect(jsonDepth('{"a": "[[[[\\"[[[", "b": [1]}')).toBe(2);
    expect(jsonDepth('[]'.repeat(3) + '['.repeat(1_000_000), 64)).toBe(65); // stops early
  });

  it('refuses deep nesting before parsing, skips a BOM, and refuses special or oversized files', async () => {
    expect(() => parseJsonText(`${'['.repeat(65)}${']'.repeat(65)}`, 'x.json')).toThrow('x.json: the file nests JSON more than 64 levels deep');
    expect(parseJsonText(`${'['.repeat(64)}${']'.repeat(64)}`, 'x.json')).toBeDefined();
    const dir = fresh();
    await mkdir(dir);
    await writeFile(path.join(dir, 'bom.json'), '\ufeff{"r": 4}');
    expect(await readJsonObject(path.join(dir, 'bom.json'))).toEqual({ r: 4 });
    await writeFile(path.join(dir, 'big.json'), `{"x": "${'x'.repeat(2000)}"}`);
    await expect(readJsonObject(path.join(dir, 'big.json'), { maxBytes: 1000 })).rejects.toThrow(/big.json: 2009 bytes is over the 1000-byte limit for this JSON file/);
    execFileSync('mkfifo', [path.join(dir, 'fifo.json')]);
    await expect(readJsonObject(path.join(dir, 'fifo.json'))).rejects.toThrow(/is not a regular file/);
    await expect(readJsonObject('/dev/zero')).rejects.toThrow(/is not a regular file/);
  });
});

describe('openAdapterFiles', () => {
  it('accepts a plain dir, symlinks inside it, and a Hugging Face cache snapshot whose files link to its blobs', async () => {
    const dir = await writeTestAdapter(fresh(), SHAPE, 1);
    expect(await openAdapterFiles(dir)).toMatchObject({ dir, config: path.join(dir, 'adapter_config.json'), weights: path.join(dir, 'adapter_model.safetensors') });

    const repo = fresh();
    const blobs = path.join(repo, 'blobs');
    const snapshot = path.join(repo, 'snapshots', 'abc123');
    await mkdir(snapshot, { recursive: true });
    await writeTestAdapter(blobs, SHAPE, 1);
    await symlink('../../blobs/adapter_config.json', path.join(snapshot, 'adapter_config.json'));
    await symlink(path.join(blobs, 'adapter_model.safetensors'), path.join(snapshot, 'adapter_model.safetensors'));
    const summary = await inspectAdapter(snapshot);
    expect(summary.modules).toHaveLength(1);

    const inner = fresh();
    await writeTestAdapter(path.join(inner, 'real'), SHAPE, 1);
    await symlink('real/adapter_model.safetensors', path.join(inner, 'adapter_model.safetensors'));
    await symlink('real/adapter_config.json', path.join(inner, 'adapter_config.json'));
    expect((await openAdapterFiles(inner)).weightsBytes).toBeGreaterThan(0);
  });

  it('refuses each thing that can stand in a file\'s place, naming it, before reading', async () => {
    const good = await writeTestAdapter(fresh(), SHAPE, 2);
    const cases: [string, (dir: string) => Promise<unknown>, RegExp, new (...a: never[]) => Error][] = [
      ['nothing', () => Promise.resolve(), /: missing adapter_config.json\. a PEFT adapter needs/, InvalidFileError],
      ['config alone', (d) => writeFile(path.join(d, 'adapter_config.json'), '{}'), /: missing adapter_model.safetensors: the adapter's weights/, InvalidFileError],
      ['pickle', async (d) => (await writeFile(path.join(d, 'adapter_config.json'), '{}'), writeFile(path.join(d, 'adapter_model.bin'), 'x')), /adapter_model.bin is a PyTorch pickle.*python -c "import torch/, UnsupportedError],
      ['dangling', async (d) => (await writeFile(path.join(d, 'adapter_config.json'), '{}'), symlink('gone', path.join(d, 'adapter_model.safetensors'))), /adapter_model.safetensors: is a symlink that leads nowhere/, InvalidFileError],
      ['/dev/zero', async (d) => (await writeFile(path.join(d, 'adapter_config.json'), '{}'), symlink('/dev/zero', path.join(d, 'adapter_model.safetensors'))), /adapter_model.safetensors: is a symlink that leads out of the adapter directory \(to \/dev\/zero\)/, InvalidFileError],
      ['outside', async (d) => (await writeFile(path.join(d, 'adapter_model.safetensors'), 'x'), symlink(path.join(good, 'adapter_config.json'), path.join(d, 'adapter_config.json'))), /adapter_config.json: is a symlink that leads out of the adapter directory/, InvalidFileError],
      ['directory', async (d) => (await writeFile(path.join(d, 'adapter_config.json'), '{}'), mkdir(path.join(d, 'adapter_model.safetensors'))), /adapter_model.safetensors: is a directory, not a regular file/, InvalidFileError],
      ['fifo', async (d) => (await writeFile(path.join(d, 'adapter_model.safetensors'), 'x'), execFileSync('mkfifo', [path.join(d, 'adapter_config.json')])), /adapter_config.json: is a FIFO \(named pipe\), not a regular file/, InvalidFileError],
    ];
    for (const [name, make, message, kind] of cases) {
      const dir = fresh();
      await mkdir(dir);
      await make(dir);
      const err = await openAdapterFiles(dir).catch((e: unknown) => e);
      expect({ name, message: (err as Error).message }).toEqual({ name, message: expect.stringMatching(message) });
      expect(err).toBeInstanceOf(kind);
    }
    await expect(openAdapterFiles(path.join(root, 'absent'))).rejects.toThrow(NotFoundError);
    await expect(openAdapterFiles(path.join(good, 'adapter_config.json'))).rejects.toThrow(/is a file; give the adapter directory/);
  });

  it('refuses more rank_pattern keys than it will match every module against', () => {
    const rankPattern = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`layers.${i}.q_proj`, 4]));
    expect(() => parseAdapterConfig({ peft_type: 'LORA', r: 4, rank_pattern: rankPattern }, 'c.json')).toThrow(
      'c.json: rank_pattern and alpha_pattern hold 5000 keys, over the 4096 loraforge reads',
    );
  });

  it('refuses a bad config before saying the weights are missing (it says more)', async () => {
    const dir = fresh();
    await mkdir(dir);
    await writeFile(path.join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, use_dora: true }));
    await expect(inspectAdapter(dir)).rejects.toThrow(/DoRA adapters/);
  });
});

describe('value scan', () => {
  it('counts NaN and inf on the bits of F32, F16, BF16 and F64 as a plain conversion would find them', () => {
    let s = 12345;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (const dtype of ['F32', 'F16', 'BF16', 'F64'] as FloatDtype[]) {
      const size = { F32: 4, F16: 2, BF16: 2, F64: 8 }[dtype];
      // random bit patterns hit every class: NaN payloads, infinities, subnormals; F64 also overflows f32
      const bytes = Uint8Array.from({ length: 4096 * size }, () => Math.floor(rand() * 256));
      for (let i = 0; i < bytes.length; i += size * 97) bytes.set(fromFloat32(Float32Array.of([NaN, Infinity, -Infinity][i % 3]!), dtype), i);
      const values = toFloat32(bytes, dtype);
      const nan = values.filter(Number.isNaN).length;
      const inf = values.filter((v) => v === Infinity || v === -Infinity).length;
      const first = values.findIndex((v) => !Number.isFinite(v));
      expect({ dtype, ...countNonFinite(bytes, dtype) }).toEqual({ dtype, nan, inf, first });
      expect(nan + inf).toBeGreaterThan(40);
      // an odd number of elements starting off a 4-byte boundary (the 16-bit scan reads words two at a time)
      const part = bytes.subarray(size * 1, size * 4000);
      const partValues = values.subarray(1, 4000);
      expect(countNonFinite(part, dtype)).toEqual({
        nan: partValues.filter(Number.isNaN).length,
        inf: partValues.filter((v) => v === Infinity || v === -Infinity).length,
        first: partValues.findIndex((v) => !Number.isFinite(v)),
      });
    }
    expect(countNonFinite(fromFloat32(Float32Array.of(1, 2, 3), 'BF16'), 'BF16')).toEqual({ nan: 0, inf: 0, first: -1 });
  });

  it('scans every float tensor once, in pieces past 16 MiB and at unaligned offsets', async () => {
    const file = path.join(root, 'scan.safetensors');
    const big = new Float32Array((17 << 20) / 4 + 3);
    big[big.length - 2] = NaN; // in the second piece
    big[5] = Infinity;
    const odd = Float32Array.of(1, NaN, 3);
    await writeSafetensors(file, [
      { name: 'a.big', dtype: 'F32', shape: [big.length], data: big },
      { name: 'b.half', dtype: 'F16', shape: [1], data: Float32Array.of(1) },
      { name: 'c.odd', dtype: 'F32', shape: [3], data: odd }, // starts 2 bytes past a multiple of 4
      { name: 'd.clean', dtype: 'BF16', shape: [2], data: Float32Array.of(1, 2) },
    ]);
    const st = await SafetensorsFile.open(file);
    const found = await st.scanNonFinite();
    await st.close();
    expect(Object.fromEntries(found)).toEqual({ 'a.big': { nan: 1, inf: 1, first: 5 }, 'c.odd': { nan: 1, inf: 0, first: 1 } });
  });

  it('passes a clean adapter on registration', async () => {
    const dir = await writeTestAdapter(fresh(), { ...SHAPE, dtype: 'BF16' }, 3);
    const ok = await inspectAdapter(dir, { values: 'refuse' });
    expect(ok.modules).toHaveLength(1);
    expect((await inspectAdapter(dir, { values: 'count' })).nonFinite).toEqual([]);
  });
});
