// Seeded corruptions of a valid PEFT adapter, for the fuzz tests of the formats code, the CLI and the API: broken
// files (truncations, header lengths, deep nesting, offsets, dtypes, shapes, NaN/inf, huge names, a BOM, doubly
// wrapped keys) and broken directories (missing files, symlinks, FIFOs, directories and devices in a file's place).
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fromFloat32 } from '../../src/formats/dtype.js';
import { writeTestAdapter } from './adapters.js';
import { seeded } from './random.js';

export interface Corruption {
  name: string;
  /** refuse: must be refused (exit 2, 4xx); accept: must load; either: anything but a crash or a hang */
  expect: 'refuse' | 'accept' | 'either';
  /** false when the case is a directory entry an upload cannot carry (symlinks, FIFOs, directories) */
  uploadable: boolean;
  /** Writes the case as the adapter directory `dir` (which does not exist yet). */
  make(dir: string): Promise<void>;
}

type Entry = { dtype: unknown; shape: unknown; data_offsets: unknown };
type Header = Record<string, Entry | Record<string, string>>;

export interface Source {
  config: Record<string, unknown>;
  header: Header;
  /** The data section. */
  data: Uint8Array;
  dtype: 'F32' | 'F16' | 'BF16';
}

/** A small valid adapter (2 layers, q/v, rank 4) in `dtype`, written to `dir` and split into its parts. */
export async function sourceAdapter(dir: string, dtype: Source['dtype'], seed: number): Promise<Source> {
  await writeTestAdapter(dir, { hidden: 16, kv: 8, layers: 2, rank: 4, targets: ['q', 'v'], dtype }, seed);
  const bytes = new Uint8Array(await readFile(path.join(dir, 'adapter_model.safetensors')));
  const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Header;
  const config = JSON.parse(await readFile(path.join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  return { config, header, data: bytes.slice(8 + length), dtype };
}

/** safetensors bytes: the length (given, or the true one), the header text, the data. */
export function safetensorsBytes(header: Header | string, data: Uint8Array, length?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

async function writeDir(dir: string, files: { config?: string | Uint8Array; weights?: Uint8Array; extra?: Record<string, string | Uint8Array> }): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (files.config !== undefined) await writeFile(path.join(dir, 'adapter_config.json'), files.config);
  if (files.weights !== undefined) await writeFile(path.join(dir, 'adapter_model.safetensors'), files.weights);
  for (const [name, content] of Object.entries(files.extra ?? {})) await writeFile(path.join(dir, name), content);
}

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
const tensorNames = (h: Header) => Object.keys(h).filter((k) => k !== '__metadata__');
const HOLE = '@@hole@@';
const deep = (depth: number, inner = '1') => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;

/** Writes `value` over element `index` of tensor `name` in a copy of the data section. */
function poke(src: Source, name: string, index: number, value: number): Uint8Array {
  const data = src.data.slice();
  const entry = src.header[name] as Entry;
  const [begin] = entry.data_offsets as [number, number];
  const size = src.dtype === 'F32' ? 4 : 2;
  data.set(fromFloat32(Float32Array.of(value), src.dtype), begin + index * size);
  return data;
}

/**
 * The cases: a fixed list covering each kind of damage, then `random` seeded ones (truncations, header lengths,
 * byte flips in the header, NaN or inf at a random place). `outside` is a valid weights file outside every case.
 */
export function corruptions(src: Source, outside: string, options: { seed: number; random: number }): Corruption[] {
  const configText = JSON.stringify(src.config);
  const weights = safetensorsBytes(src.header, src.data);
  const names = tensorNames(src.header);
  const first = names[0]!;
  const withHeader = (edit: (h: Header) => Header | string) => safetensorsBytes(edit(clone(src.header)), src.data);
  const entry = (h: Header, name = first) => h[name] as Entry;
  const refuse = (name: string, make: Corruption['make'], uploadable = true): Corruption => ({ name, expect: 'refuse', uploadable, make });

  const cases: Corruption[] = [
    { name: 'valid', expect: 'accept', uploadable: true, make: (d) => writeDir(d, { config: configText, weights }) },
    { name: 'config with a UTF-8 BOM', expect: 'accept', uploadable: true, make: (d) => writeDir(d, { config: `\ufeff${configText}`, weights }) },
    {
      name: 'keys wrapped twice (base_model.model.base_model.model.)',
      expect: 'accept',
      uploadable: true,
      make: (d) =>
        writeDir(d, {
          config: configText,
          weights: withHeader((h) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k === '__metadata__' ? k : `base_model.model.${k}`, v]))),
        }),
    },
    refuse('config alone', (d) => writeDir(d, { config: configText })),
    refuse('weights alone', (d) => writeDir(d, { weights })),
    refuse('only adapter_model.bin', (d) => writeDir(d, { config: configText, extra: { 'adapter_model.bin': new Uint8Array([0x80, 0x02, 0x7d]) } })),
    refuse('empty weights file', (d) => writeDir(d, { config: configText, weights: new Uint8Array(0) })),
    refuse('weights a Git LFS pointer', (d) => writeDir(d, { config: configText, weights: new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n') })),
    refuse('weights an HTML page', (d) => writeDir(d, { config: configText, weights: new TextEncoder().encode('<!DOCTYPE html><html>not found</html>') })),
    refuse('config not JSON', (d) => writeDir(d, { config: new Uint8Array([0xff, 0xfe, 0x00, 0x7b]), weights })),
    refuse('config a JSON array nested 100000 deep', (d) => writeDir(d, { config: deep(100_000), weights })),
    refuse('config target_modules nested 20000 deep', (d) => writeDir(d, { config: JSON.stringify({ ...src.config, target_modules: HOLE }).replace(`"${HOLE}"`, deep(20_000, '"q_proj"')), weights })),
    refuse('config over 4 MiB', (d) => writeDir(d, { config: JSON.stringify({ ...src.config, padding: 'x'.repeat(5 * 2 ** 20) }), weights })),
    refuse('config peft_type a 20000-character string', (d) => writeDir(d, { config: JSON.stringify({ ...src.config, peft_type: 'P'.repeat(20_000) }), weights })),
    refuse('config r mismatched', (d) => writeDir(d, { config: JSON.stringify({ ...src.config, r: 5 }), weights })),
    refuse('header data_offsets nested 20000 deep', (d) =>
      writeDir(d, { config: configText, weights: withHeader((h) => JSON.stringify(h).replace(/"data_offsets":\[\d+,\d+\]/, `"data_offsets":${deep(20_000)}`)) }),
    ),
    refuse('header shape nested 20000 deep', (d) =>
      writeDir(d, { config: configText, weights: withHeader((h) => JSON.stringify(h).replace(/"shape":\[\d+,\d+\]/, `"shape":${deep(20_000)}`)) }),
    ),
    refuse('header metadata nested 20000 deep', (d) =>
      writeDir(d, { config: configText, weights: withHeader((h) => JSON.stringify({ ...h, __metadata__: { a: HOLE } }).replace(`"${HOLE}"`, deep(20_000))) }),
    ),
    refuse('a 20000-character tensor name', (d) =>
      writeDir(d, { config: configText, weights: withHeader((h) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k === first ? `${'n'.repeat(20_000)}.weight` : k, v]))) }),
    ),
    refuse('a 20000-character unknown dtype', (d) => writeDir(d, { config: configText, weights: withHeader((h) => ((entry(h).dtype = 'F'.repeat(20_000)), h)) })),
    refuse('header length 2^63', (d) => writeDir(d, { config: configText, weights: safetensorsBytes(src.header, src.data, 1n << 63n) })),
    refuse('header length 0', (d) => writeDir(d, { config: configText, weights: safetensorsBytes(src.header, src.data, 0n) })),
    refuse('header length past the end', (d) => writeDir(d, { config: configText, weights: safetensorsBytes(src.header, src.data, BigInt(weights.length)) })),
    refuse('overlapping data_offsets', (d) => writeDir(d, { config: configText, weights: withHeader((h) => ((entry(h, names[1]).data_offsets = [0, (entry(h, names[1]).data_offsets as number[])[1]! - (entry(h, names[1]).data_offsets as number[])[0]!]), h)) })),
    refuse('data_offsets past the data', (d) => writeDir(d, { config: configText, weights: withHeader((h) => ((entry(h).data_offsets = [0, 2 ** 40]), h)) })),
    refuse('negative and fractional offsets', (d) => writeDir(d, { config: configText, weights: withHeader((h) => ((entry(h).data_offsets = [-1, 0.5]), h)) })),
    refuse('a factor stored as an integer dtype (same bytes)', (d) => writeDir(d, { config: configText, weights: withHeader((h) => ((entry(h).dtype = src.dtype === 'F32' ? 'I32' : 'I16'), h)) })),
    refuse('a 3-D factor', (d) => writeDir(d, { config: configText, weights: withHeader((h) => ((entry(h).shape = [1, ...(entry(h).shape as number[])]), h)) })),
    refuse('a shape with a huge dimension', (d) => writeDir(d, { config: configText, weights: withHeader((h) => ((entry(h).shape = [2 ** 53 - 1, 2 ** 53 - 1]), h)) })),
    refuse('a shape of 100000 dimensions', (d) => writeDir(d, { config: configText, weights: withHeader((h) => ((entry(h).shape = Array(100_000).fill(1)), h)) })),
    refuse(`NaN in ${first}`, (d) => writeDir(d, { config: configText, weights: safetensorsBytes(src.header, poke(src, first, 3, NaN)) })),
    refuse('+inf in the last tensor', (d) => writeDir(d, { config: configText, weights: safetensorsBytes(src.header, poke(src, names.at(-1)!, 0, Infinity)) })),
    refuse('-inf in the middle', (d) => writeDir(d, { config: configText, weights: safetensorsBytes(src.header, poke(src, names[2]!, 5, -Infinity)) })),
    // directory entries an upload cannot carry
    refuse('weights a dangling symlink', async (d) => (await writeDir(d, { config: configText }), symlink('missing.safetensors', path.join(d, 'adapter_model.safetensors'))), false),
    refuse('weights a symlink to /dev/zero', async (d) => (await writeDir(d, { config: configText }), symlink('/dev/zero', path.join(d, 'adapter_model.safetensors'))), false),
    refuse('weights a symlink out of the directory', async (d) => (await writeDir(d, { config: configText }), symlink(outside, path.join(d, 'adapter_model.safetensors'))), false),
    refuse('config a symlink to /etc/passwd', async (d) => (await writeDir(d, { weights }), symlink('/etc/passwd', path.join(d, 'adapter_config.json'))), false),
    refuse('weights a directory', async (d) => (await writeDir(d, { config: configText }), mkdir(path.join(d, 'adapter_model.safetensors'))), false),
    refuse('config a directory', async (d) => (await writeDir(d, { weights }), mkdir(path.join(d, 'adapter_config.json'))), false),
    refuse('weights a FIFO', async (d) => (await writeDir(d, { config: configText }), void execFileSync('mkfifo', [path.join(d, 'adapter_model.safetensors')])), false),
    refuse('config a FIFO', async (d) => (await writeDir(d, { weights }), void execFileSync('mkfifo', [path.join(d, 'adapter_config.json')])), false),
    refuse('weights a symlink loop', async (d) => (await writeDir(d, { config: configText }), symlink('adapter_model.safetensors', path.join(d, 'adapter_model.safetensors'))), false),
  ];

  const rnd = seeded(options.seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const headerEnd = weights.length - src.data.length;
  for (let i = 0; i < options.random; i++) {
    const kind = i % 4;
    if (kind === 0) {
      const at = int(weights.length - 1);
      cases.push(refuse(`truncated at byte ${at}`, (d) => writeDir(d, { config: configText, weights: weights.slice(0, at) })));
    } else if (kind === 1) {
      const delta = [-3, -1, 1, 2, 1000][int(5)]!;
      cases.push(refuse(`header length off by ${delta}`, (d) => writeDir(d, { config: configText, weights: safetensorsBytes(src.header, src.data, BigInt(headerEnd - 8 + delta)) })));
    } else if (kind === 2) {
      const at = 8 + int(headerEnd - 8);
      const value = int(256);
      cases.push({
        name: `header byte ${at} set to ${value}`,
        expect: 'either',
        uploadable: true,
        make: (d) => {
          const bytes = weights.slice();
          bytes[at] = value;
          return writeDir(d, { config: configText, weights: bytes });
        },
      });
    } else {
      const name = names[int(names.length)]!;
      const value = [NaN, Infinity, -Infinity][int(3)]!;
      cases.push(refuse(`${value} at element ${i % 7} of ${name}`, (d) => writeDir(d, { config: configText, weights: safetensorsBytes(src.header, poke(src, name, i % 7, value)) })));
    }
  }
  return cases;
}
