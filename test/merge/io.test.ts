// Round trips through files: merged adapters reload as written, folded checkpoints equal W + ΔW, and the two real
// SmolLM adapters written by PEFT merge end to end.
import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAdapter, writeAdapter, type LoraAdapter } from '../../src/formats/peft.js';
import { Checkpoint } from '../../src/formats/checkpoint.js';
import { ShardedCheckpointWriter } from '../../src/formats/checkpoint-writer.js';
import { sha256File } from '../../src/formats/file-hash.js';
import { mergeAdapters, mergeToDirectory, REPORT_FILE, type MergeReport } from '../../src/merge/index.js';
import { foldIntoCheckpoint } from '../../src/merge/fold.js';
import { ConflictError, InvalidInputError } from '../../src/errors.js';
import { fixture, haveFixtures } from '../helpers/fixtures.js';
import { denseDelta, makeAdapter } from './adapters.js';
import { randn, relError } from './reference.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'loraforge-merge-io-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

const Q = 'model.layers.0.self_attn.q_proj';
const V = 'model.layers.0.self_attn.v_proj';

async function writeInputs(adapters: LoraAdapter[], prefix: string): Promise<string[]> {
  const dirs: string[] = [];
  for (const [i, a] of adapters.entries()) {
    const dir = path.join(tmp, `${prefix}-${i}`);
    await writeAdapter(dir, a);
    dirs.push(dir);
  }
  return dirs;
}

describe('mergeToDirectory', () => {
  it('writes a PEFT directory that reloads exactly as merged, with the report beside it', async () => {
    const inputs = [0, 1].map((i) => makeAdapter([{ name: Q, out: 12, inn: 10, r: 2 + i, alpha: 8, seed: 40 + i }, { name: V, out: 6, inn: 10, r: 2 + i, alpha: 8, seed: 50 + i }]));
    const dirs = await writeInputs(inputs, 'rt');
    for (const [method, dtype] of [['svd', 'F32'], ['ties', 'BF16'], ['cat', 'F16']] as const) {
      const out = path.join(tmp, `rt-out-${method}`);
      const options = { method, weights: [0.6, 0.4], density: method === 'ties' ? 0.5 : undefined, rank: method === 'svd' ? 3 : undefined, dtype };
      const report = await mergeToDirectory(dirs, out, options);
      const back = await readAdapter(out);
      const { adapter } = await mergeAdapters(await Promise.all(dirs.map((d) => readAdapter(d))), options);
      expect(back.dtype).toBe(dtype);
      for (const [name, m] of adapter.modules) {
        const r = back.modules.get(name)!;
        expect(r.rank).toBe(m.rank);
        expect(r.scaling).toBeCloseTo(1, 12);
        expect(r.A).toEqual(m.A); // the merge already rounded to the output dtype
        expect(r.B).toEqual(m.B);
      }
      const onDisk = JSON.parse(await readFile(path.join(out, REPORT_FILE), 'utf8')) as MergeReport;
      expect(onDisk.inputs.map((x) => x.sha256)).toEqual(await Promise.all(dirs.map((d) => sha256File(path.join(d, 'adapter_model.safetensors')))));
      expect(onDisk.recipe.method).toBe(method);
      expect(report.diagnostics.overall.relError).toBe(onDisk.diagnostics.overall.relError);
      const config = JSON.parse(await readFile(path.join(out, 'adapter_config.json'), 'utf8'));
      expect(config.use_rslora).toBe(false);
      expect(config.use_dora).toBe(false);
    }
  });

  it('refuses an existing output directory unless told to overwrite, and leaves nothing on failure', async () => {
    const dirs = await writeInputs([makeAdapter([{ name: Q, out: 4, inn: 4, r: 1, seed: 1 }])], 'exist');
    const out = path.join(tmp, 'exist-out');
    await mergeToDirectory(dirs, out, { method: 'linear', weights: [1] });
    await expect(mergeToDirectory(dirs, out, { method: 'linear', weights: [1] })).rejects.toThrow(ConflictError);
    await mergeToDirectory(dirs, out, { method: 'linear', weights: [0.5] }, { overwrite: true });
    const bad = path.join(tmp, 'never');
    await expect(mergeToDirectory([...dirs, dirs[0]!], bad, { method: 'linear', weights: [1] })).rejects.toThrow(InvalidInputError);
    expect((await readdir(tmp)).filter((f) => f.startsWith('never'))).toEqual([]);
  });
});

/** A tiny checkpoint: weights from randn, one extra int tensor, config + tokenizer files, several shards. */
async function makeCheckpoint(dir: string, tensors: Record<string, number[]>): Promise<Map<string, Float32Array>> {
  const values = new Map<string, Float32Array>();
  const layout = Object.entries(tensors).map(([name, shape], i) => {
    values.set(name, randn(shape[0]! * shape[1]!, 100 + i, 0.2));
    return { name, dtype: 'F32' as const, shape };
  });
  const writer = await ShardedCheckpointWriter.create(dir, layout, { maxShardBytes: 600 });
  for (const [name, data] of values) await writer.write(name, data);
  await writer.finish();
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'test' }));
  await writeFile(path.join(dir, 'tokenizer.json'), '{"model":{}}');
  return values;
}

describe('fold', () => {
  it('writes W + ΔW for linear and embedding LoRA, streaming into shards with an index, copying config and tokenizer', async () => {
    const base = path.join(tmp, 'ckpt-llama');
    const w = await makeCheckpoint(base, {
      'model.embed_tokens.weight': [16, 8],
      'model.layers.0.self_attn.q_proj.weight': [8, 8],
      'model.layers.0.mlp.gate_proj.weight': [16, 8],
      'model.norm.weight': [1, 8],
    });
    const adapter = makeAdapter([
      { name: 'model.layers.0.self_attn.q_proj', out: 8, inn: 8, r: 2, alpha: 4, seed: 1 },
      { name: 'model.layers.0.mlp.gate_proj', out: 16, inn: 8, r: 3, alpha: 3, seed: 2 },
      { name: 'model.embed_tokens', kind: 'embedding', out: 8, inn: 16, r: 2, alpha: 2, seed: 3 },
    ]);
    const adapterDir = path.join(tmp, 'fold-adapter');
    await writeAdapter(adapterDir, adapter);
    const out = path.join(tmp, 'folded-llama');
    const result = await foldIntoCheckpoint(base, adapterDir, out, { maxShardBytes: 600 });
    expect(result.folded).toBe(3);
    expect(result.files.length).toBeGreaterThan(1);
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['config.json', 'tokenizer.json', 'model.safetensors.index.json']));
    const ckpt = await Checkpoint.open(out);
    try {
      const reloaded = await readAdapter(adapterDir);
      const q = reloaded.modules.get('model.layers.0.self_attn.q_proj')!;
      const expectQ = denseDelta(q).map((d, i) => d + w.get('model.layers.0.self_attn.q_proj.weight')![i]!);
      expect(relError(await ckpt.readFloat32('model.layers.0.self_attn.q_proj.weight'), expectQ)).toBeLessThan(1e-6);
      const g = reloaded.modules.get('model.layers.0.mlp.gate_proj')!;
      const expectG = denseDelta(g).map((d, i) => d + w.get('model.layers.0.mlp.gate_proj.weight')![i]!);
      expect(relError(await ckpt.readFloat32('model.layers.0.mlp.gate_proj.weight'), expectG)).toBeLessThan(1e-6);
      // embedding: ΔW = (s·B·A)ᵀ, [num_embeddings, dim]
      const e = reloaded.modules.get('model.embed_tokens')!;
      const de = denseDelta(e); // 8×16
      const we = w.get('model.embed_tokens.weight')!;
      const expectE = new Float64Array(16 * 8).map((_, idx) => we[idx]! + de[(idx % 8) * 16 + Math.floor(idx / 8)]!);
      expect(relError(await ckpt.readFloat32('model.embed_tokens.weight'), expectE)).toBeLessThan(1e-6);
      expect(await ckpt.readFloat32('model.norm.weight')).toEqual(w.get('model.norm.weight'));
    } finally {
      await ckpt.close();
    }
  });

  it('adds (B·A)ᵀ to GPT-2 Conv1D weights (in×out), square ones too, even when the config says fan_in_fan_out false', async () => {
    const base = path.join(tmp, 'ckpt-gpt2');
    const w = await makeCheckpoint(base, { 'h.0.attn.c_attn.weight': [8, 24], 'h.0.attn.c_proj.weight': [8, 8] });
    const adapter = makeAdapter([
      { name: 'transformer.h.0.attn.c_attn', out: 24, inn: 8, r: 2, seed: 5 },
      { name: 'transformer.h.0.attn.c_proj', out: 8, inn: 8, r: 2, seed: 6 },
    ]);
    const adapterDir = path.join(tmp, 'gpt2-adapter');
    await writeAdapter(adapterDir, adapter);
    const out = path.join(tmp, 'folded-gpt2');
    await foldIntoCheckpoint(base, adapterDir, out);
    const ckpt = await Checkpoint.open(out);
    try {
      for (const [mod, tensor, rows, cols] of [['transformer.h.0.attn.c_attn', 'h.0.attn.c_attn.weight', 8, 24], ['transformer.h.0.attn.c_proj', 'h.0.attn.c_proj.weight', 8, 8]] as const) {
        const d = denseDelta((await readAdapter(adapterDir)).modules.get(mod)!); // out×in = cols×rows
        const expected = new Float64Array(rows * cols).map((_, idx) => w.get(tensor)![idx]! + d[(idx % cols) * rows + Math.floor(idx / cols)]!);
        expect(relError(await ckpt.readFloat32(tensor), expected)).toBeLessThan(1e-6);
      }
    } finally {
      await ckpt.close();
    }
  });

  it('refuses an adapter of another model, naming the module', async () => {
    const base = path.join(tmp, 'ckpt-llama');
    const adapterDir = path.join(tmp, 'wrong-adapter');
    await writeAdapter(adapterDir, makeAdapter([{ name: 'model.layers.0.self_attn.q_proj', out: 8, inn: 12, r: 1 }]));
    await expect(foldIntoCheckpoint(base, adapterDir, path.join(tmp, 'never-folded'))).rejects.toThrow(/q_proj.*another base model/);
    const missing = path.join(tmp, 'missing-adapter');
    await writeAdapter(missing, makeAdapter([{ name: 'model.layers.7.self_attn.q_proj', out: 8, inn: 8, r: 1 }]));
    await expect(foldIntoCheckpoint(base, missing, path.join(tmp, 'never-folded'))).rejects.toThrow(/layers\.7\.self_attn\.q_proj\.weight/);
    expect((await readdir(tmp)).some((f) => f.startsWith('never-folded'))).toBe(false);
  });
});

describe.skipIf(!haveFixtures)('the real SmolLM adapters (written by PEFT)', () => {
  it.skipIf(!haveFixtures)('merge exactly in delta space and by PEFT rules in factors space', async () => {
    const dirs = ['tfm-hitesh-medai-5epochs', 'tfm-hitesh-medai-100epochs'].map((d) => fixture(`peft/SmolLM-135M-Instruct/${d}`));
    const adapters = await Promise.all(dirs.map((d) => readAdapter(d)));
    const exact = await mergeAdapters(adapters, { method: 'svd', weights: [0.5, 0.5] }, { labels: dirs });
    expect(exact.report.diagnostics.overall.relError!).toBeLessThan(1e-5);
    expect(exact.report.output.rank).toBe(32);
    const peft = await mergeAdapters(adapters, { method: 'ties', space: 'factors', weights: [1, 1], density: 0.2 });
    expect(peft.report.output.rank).toBe(16);
    expect(peft.report.diagnostics.overall.relError!).toBeGreaterThan(0.05);
    const cos = exact.report.diagnostics.overall.interference[0]![1]!;
    expect(cos).toBeGreaterThan(-1);
    expect(cos).toBeLessThan(1);
  });
});

