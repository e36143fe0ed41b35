import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidFileError, InvalidInputError, NotFoundError, UnsupportedError } from '../../src/errors.js';
import { Checkpoint, ShardedCheckpointWriter } from '../../src/formats/checkpoint.js';
import { SafetensorsFile, writeSafetensors } from '../../src/formats/safetensors.js';
import { fixture, fixturesSkipReason, haveFixtures } from '../helpers/fixtures.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'lf-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const dir = path.join(root, `c${n++}`);
  mkdirSync(dir);
  return dir;
};
const values = (count: number, seed: number) => Float32Array.from({ length: count }, (_, i) => Math.cos(i * 0.7 + seed));

async function tinyCheckpoint(dir: string, extra: Record<string, string> = {}): Promise<void> {
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 4 }));
  for (const [name, text] of Object.entries(extra)) writeFileSync(path.join(dir, name), text);
}

describe('Checkpoint.open', () => {
  it('reads a single-file checkpoint lazily and lists its auxiliary files', async () => {
    const dir = fresh();
    await tinyCheckpoint(dir, { 'tokenizer.json': '{}', 'chat_template.jinja': '{{ x }}', 'README.md': 'hi' });
    await writeSafetensors(path.join(dir, 'model.safetensors'), [
      { name: 'b', dtype: 'F32', shape: [2, 2], data: values(4, 1) },
      { name: 'a', dtype: 'BF16', shape: [3], data: Float32Array.of(1, 2, 3) },
    ]);
    const ckpt = await Checkpoint.open(dir);
    expect(ckpt.config).toEqual({ model_type: 'llama', hidden_size: 4 });
    expect(ckpt.tensorNames).toEqual(['a', 'b']);
    expect(ckpt.shardFiles).toEqual(['model.safetensors']);
    expect(ckpt.files).toEqual({ 'tokenizer.json': path.join(dir, 'tokenizer.json'), 'chat_template.jinja': path.join(dir, 'chat_template.jinja') });
    expect(ckpt.info('a')).toMatchObject({ dtype: 'BF16', shape: [3], file: 'model.safetensors' });
    expect(await ckpt.readFloat32('b')).toEqual(values(4, 1));
    expect(await ckpt.readFloat32('a')).toEqual(Float32Array.of(1, 2, 3));
    await expect(ckpt.readFloat32('zz')).rejects.toThrow(NotFoundError);
    await ckpt.close();
  });

  it('finds tensors across shards without an index, and refuses a tensor held twice', async () => {
    const dir = fresh();
    await tinyCheckpoint(dir);
    await writeSafetensors(path.join(dir, 'one.safetensors'), [{ name: 'x', dtype: 'F32', shape: [1], data: Float32Array.of(1) }]);
    await writeSafetensors(path.join(dir, 'two.safetensors'), [{ name: 'y', dtype: 'F32', shape: [1], data: Float32Array.of(2) }]);
    const ckpt = await Checkpoint.open(dir);
    expect(await ckpt.readFloat32('y')).toEqual(Float32Array.of(2));
    expect(ckpt.info('x').file).toBe('one.safetensors');
    await ckpt.close();
    await writeSafetensors(path.join(dir, 'three.safetensors'), [{ name: 'x', dtype: 'F32', shape: [1], data: Float32Array.of(3) }]);
    await expect(Checkpoint.open(dir)).rejects.toThrow(/tensor "x" is in both one.safetensors and three.safetensors/);
  });

  it('refuses what it cannot load, saying why', async () => {
    const noConfig = fresh();
    await expect(Checkpoint.open(noConfig)).rejects.toThrow(/no config.json/);
    await expect(Checkpoint.open(path.join(root, 'absent'))).rejects.toThrow(NotFoundError);

    const badConfig = fresh();
    writeFileSync(path.join(badConfig, 'config.json'), '{"model_type": ');
    await expect(Checkpoint.open(badConfig)).rejects.toThrow(/config.json: the file is not valid JSON/);

    const pickles = fresh();
    await tinyCheckpoint(pickles, { 'pytorch_model.bin': 'pickle' });
    const err = await Checkpoint.open(pickles).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as Error).message).toMatch(/PyTorch pickles .*save_pretrained\(.*safe_serialization=True\)/);

    const empty = fresh();
    await tinyCheckpoint(empty);
    await expect(Checkpoint.open(empty)).rejects.toThrow(/holds no \*.safetensors weights/);
  });

  it('refuses an index naming a missing shard, a shard without the tensor, or a path outside the directory', async () => {
    const dir = fresh();
    await tinyCheckpoint(dir);
    await writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), [{ name: 'x', dtype: 'F32', shape: [1], data: Float32Array.of(1) }]);
    const index = (weightMap: Record<string, string>) =>
      writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 4 }, weight_map: weightMap }));
    index({ x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' });
    await expect(Checkpoint.open(dir)).rejects.toThrow(/names shard model-00002-of-00002.safetensors, which is not in .*: the download is incomplete/);
    index({ x: 'model-00001-of-00002.safetensors', y: 'model-00001-of-00002.safetensors' });
    await expect(Checkpoint.open(dir)).rejects.toThrow(/maps tensor "y" to model-00001-of-00002.safetensors, which does not hold it/);
    index({ x: '../elsewhere/model.safetensors' });
    await expect(Checkpoint.open(dir)).rejects.toThrow(InvalidFileError);
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"weight_map": []}');
    await expect(Checkpoint.open(dir)).rejects.toThrow(/has no "weight_map" object/);
  });
});

describe('ShardedCheckpointWriter', () => {
  const layout = [
    { name: 'embed', dtype: 'F32' as const, shape: [4, 3] }, // 48 bytes
    { name: 'layer.0', dtype: 'F16' as const, shape: [10] }, // 20: fits beside embed in 70
    { name: 'layer.1', dtype: 'BF16' as const, shape: [10] }, // 20: does not
    { name: 'big', dtype: 'F32' as const, shape: [30] }, // 120, over the limit: a shard of its own
    { name: 'ids', dtype: 'I64' as const, shape: [2] }, // 16
  ];

  it('splits greedily into shards with an index that Checkpoint reads back', async () => {
    const dir = fresh();
    await tinyCheckpoint(dir);
    const w = await ShardedCheckpointWriter.create(dir, layout, { maxShardBytes: 70 });
    expect(w.files).toEqual([
      'model-00001-of-00004.safetensors',
      'model-00002-of-00004.safetensors',
      'model-00003-of-00004.safetensors',
      'model-00004-of-00004.safetensors',
    ]);
    await w.write('layer.1', values(10, 2)); // any order
    await w.write('embed', values(12, 1));
    await w.write('big', values(30, 4));
    await w.write('layer.0', values(10, 3));
    await w.writeBytes('ids', new Uint8Array(new BigInt64Array([7n, 9n]).buffer));
    expect(await w.finish()).toEqual({ files: w.files, totalSize: 224 });

    const index = JSON.parse(readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(index).toEqual({
      metadata: { total_size: 224 },
      weight_map: {
        big: 'model-00003-of-00004.safetensors',
        embed: 'model-00001-of-00004.safetensors',
        ids: 'model-00004-of-00004.safetensors',
        'layer.0': 'model-00001-of-00004.safetensors',
        'layer.1': 'model-00002-of-00004.safetensors',
      },
    });
    const shard = await SafetensorsFile.open(path.join(dir, 'model-00001-of-00004.safetensors'));
    expect(shard.metadata).toEqual({ format: 'pt' });
    await shard.close();

    const ckpt = await Checkpoint.open(dir);
    expect(ckpt.tensorNames).toEqual(['big', 'embed', 'ids', 'layer.0', 'layer.1']);
    expect(await ckpt.readFloat32('embed')).toEqual(values(12, 1));
    expect(await ckpt.readFloat32('big')).toEqual(values(30, 4));
    expect(ckpt.info('layer.0').dtype).toBe('F16');
    expect(Array.from(new BigInt64Array((await ckpt.readBytes('ids')).buffer))).toEqual([7n, 9n]);
    await ckpt.close();
  });

  it('writes a single model.safetensors and no index when everything fits', async () => {
    const dir = fresh();
    const w = await ShardedCheckpointWriter.create(dir, layout.slice(0, 2));
    await w.write('embed', values(12, 1));
    await w.write('layer.0', values(10, 3));
    await w.finish();
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
  });

  it('removes the shards it wrote when aborted or left incomplete', async () => {
    const dir = fresh();
    const w = await ShardedCheckpointWriter.create(dir, layout, { maxShardBytes: 70 });
    await w.write('embed', values(12, 1));
    await w.write('layer.0', values(10, 3)); // completes the first shard
    expect(readdirSync(dir)).toContain('model-00001-of-00004.safetensors');
    await expect(w.write('embed', values(12, 1))).rejects.toThrow(/already written/);
    await expect(w.write('nope', values(1, 1))).rejects.toThrow(/not in the checkpoint layout/);
    await expect(w.finish()).rejects.toThrow(InvalidInputError);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe.skipIf(!haveFixtures)('a real checkpoint', () => {
  it('opens candle-llama (no architectures, dtype instead of torch_dtype) and re-shards it exactly', async () => {
    const src = fixture('checkpoints/candle-llama-synthetic-milkdrift');
    const ckpt = await Checkpoint.open(src);
    expect(ckpt.config.architectures).toBeUndefined();
    expect(ckpt.config.dtype).toBe('float32');
    expect(ckpt.config.torch_dtype).toBeUndefined();
    expect(ckpt.tensorNames).toHaveLength(12);
    expect(ckpt.info('model.layers.0.mlp.down_proj.weight')).toMatchObject({ dtype: 'F32', shape: [8, 16] });

    const out = fresh();
    copyFileSync(path.join(src, 'config.json'), path.join(out, 'config.json'));
    const w = await ShardedCheckpointWriter.create(
      out,
      ckpt.tensorNames.map((name) => ({ name, dtype: ckpt.info(name).dtype, shape: ckpt.info(name).shape })),
      { maxShardBytes: 1024 },
    );
    for (const name of ckpt.tensorNames) await w.write(name, await ckpt.readFloat32(name));
    const { files } = await w.finish();
    expect(files.length).toBeGreaterThan(1);
    const copy = await Checkpoint.open(out);
    for (const name of ckpt.tensorNames) expect(await copy.readFloat32(name)).toEqual(await ckpt.readFloat32(name));
    expect(existsSync(path.join(out, 'model.safetensors.index.json'))).toBe(true);
    await copy.close();
    await ckpt.close();
  });
});
if (!haveFixtures) it.skip(fixturesSkipReason, () => undefined);
