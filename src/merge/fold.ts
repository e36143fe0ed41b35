// fold: the last step of the story, "save the final model". Adds an adapter's update s·B·A to the base model's
// weights and writes a complete Hugging Face checkpoint: every tensor streamed from the base shards to the new
// shards one at a time (never the whole model in memory), config and tokenizer files copied, written atomically.
// GPT-2's Conv1D layers (fan_in_fan_out) and embeddings store the weight as in×out, so they get (B·A)ᵀ.
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { CancelledError, InvalidInputError } from '../errors.js';
import { writeDirAtomic } from '../formats/atomic.js';
import { Checkpoint, CONFIG_FILE } from '../formats/checkpoint.js';
import { ShardedCheckpointWriter } from '../formats/checkpoint-writer.js';
import { readAdapter, type LoraAdapter, type LoraModule } from '../formats/peft.js';
import { scaled } from './kernels/lowrank-svd.js';
import { MatmulKernel, type ComputeOptions } from './kernels/matmul.js';
import { transpose } from './kernels/small.js';

export interface FoldHooks {
  onProgress?(p: { phase: 'fold'; done: number; total: number }): void;
  signal?: AbortSignal;
  compute?: ComputeOptions;
  /** largest shard in bytes (default: transformers' 5 GB) */
  maxShardBytes?: number;
  overwrite?: boolean;
}

export interface FoldResult {
  outDir: string;
  /** base tensors that received an update, and modules_to_save tensors that replaced theirs */
  folded: number;
  replaced: number;
  tensors: number;
  files: string[];
  totalBytes: number;
  seconds: number;
}

interface Target {
  module: LoraModule;
  /** the checkpoint stores the weight as in×out */
  transposed: boolean;
}

/** The checkpoint tensor of a LoRA module: "<module>.weight", or the same with leading components dropped
 *  (PEFT names GPT-2's modules "transformer.h.0…", its checkpoint "h.0…"). */
function weightName(ckpt: Checkpoint, module: string): string | null {
  const parts = module.split('.');
  for (let i = 0; i < parts.length; i++) {
    const name = `${parts.slice(i).join('.')}.weight`;
    if (ckpt.has(name)) return name;
  }
  return null;
}

function planTargets(ckpt: Checkpoint, adapter: LoraAdapter): Map<string, Target> {
  const found = new Map<string, LoraModule>();
  const missing: string[] = [];
  for (const m of adapter.modules.values()) {
    const name = weightName(ckpt, m.name);
    if (name) found.set(name, m);
    else missing.push(m.name);
  }
  if (missing.length > 0) {
    throw new InvalidInputError(
      `the checkpoint has no weight for ${missing.length} adapter module(s), e.g. ${missing[0]}.weight: is it the adapter's base model (${adapter.config.baseModel ?? 'not named in adapter_config.json'})?`,
    );
  }
  // orientation: from the shape where it decides; square linear weights follow the model's other linear modules
  // (Conv1D models store them all in×out, whatever fan_in_fan_out says), then the config
  const decided: boolean[] = [];
  const shapes = new Map<string, number[]>();
  for (const [name, m] of found) {
    const shape = ckpt.info(name).shape;
    shapes.set(name, shape);
    const [rows, cols] = shape;
    if (shape.length !== 2 || !((rows === m.outFeatures && cols === m.inFeatures) || (rows === m.inFeatures && cols === m.outFeatures))) {
      throw new InvalidInputError(`${name} has shape [${shape.join(', ')}] but the adapter's ${m.name} needs ${m.outFeatures}×${m.inFeatures}: the adapter belongs to another base model`);
    }
    if (m.kind === 'linear' && m.inFeatures !== m.outFeatures) decided.push(rows === m.inFeatures); // embeddings are always in×out
  }
  const modelTransposed = decided.length > 0 ? decided.some(Boolean) : adapter.config.fanInFanOut;
  const targets = new Map<string, Target>();
  for (const [name, m] of found) {
    const [rows] = shapes.get(name)!;
    const transposed = m.inFeatures !== m.outFeatures ? rows === m.inFeatures : m.kind === 'embedding' || modelTransposed;
    targets.set(name, { module: m, transposed });
  }
  return targets;
}

export async function foldIntoCheckpoint(checkpointDir: string, adapterDir: string, outDir: string, hooks: FoldHooks = {}): Promise<FoldResult> {
  const started = performance.now();
  const adapter = await readAdapter(adapterDir);
  const ckpt = await Checkpoint.open(checkpointDir);
  const kernel = new MatmulKernel(hooks.compute);
  try {
    const targets = planTargets(ckpt, adapter);
    const replacements = new Map<string, Float32Array>();
    for (const s of adapter.savedModules.values()) {
      if (!ckpt.has(s.name)) throw new InvalidInputError(`the adapter replaces ${s.name} (modules_to_save), which the checkpoint does not have`);
      const shape = ckpt.info(s.name).shape;
      if (shape.join() !== s.shape.join()) throw new InvalidInputError(`the adapter's ${s.name} is [${s.shape.join(', ')}], the checkpoint's is [${shape.join(', ')}]`);
      replacements.set(s.name, s.data);
    }
    const names = ckpt.tensorNames;
    const layout = names.map((name) => {
      const info = ckpt.info(name);
      return { name, dtype: info.dtype, shape: info.shape };
    });
    let written: { files: string[]; totalSize: number } = { files: [], totalSize: 0 };
    await writeDirAtomic(
      outDir,
      async (tmp) => {
        const writer = await ShardedCheckpointWriter.create(tmp, layout, { maxShardBytes: hooks.maxShardBytes });
        try {
          for (let i = 0; i < names.length; i++) {
            if (hooks.signal?.aborted) throw new CancelledError('fold cancelled');
            hooks.onProgress?.({ phase: 'fold', done: i, total: names.length });
            const name = names[i]!;
            const target = targets.get(name);
            const replacement = replacements.get(name);
            if (replacement) await writer.write(name, replacement);
            else if (target) await writer.write(name, await foldOne(kernel, await ckpt.readFloat32(name), target));
            else await writer.writeBytes(name, await ckpt.readBytes(name));
          }
          written = await writer.finish();
        } catch (err) {
          await writer.abort();
          throw err;
        }
        await copyFile(path.join(ckpt.dir, CONFIG_FILE), path.join(tmp, CONFIG_FILE));
        for (const [file, from] of Object.entries(ckpt.files)) await copyFile(from, path.join(tmp, file));
      },
      { overwrite: hooks.overwrite ?? false },
    );
    hooks.onProgress?.({ phase: 'fold', done: names.length, total: names.length });
    return {
      outDir: path.resolve(outDir),
      folded: targets.size,
      replaced: replacements.size,
      tensors: names.length,
      files: written.files,
      totalBytes: written.totalSize,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await kernel.release();
    await ckpt.close();
  }
}

const TILE_BYTES = 32 << 20;

/**
 * W += s·B·A, or W += s·(B·A)ᵀ = s·Aᵀ·Bᵀ for in×out storage, in float32, a tile of W's rows at a time so a
 * large embedding never needs a second full-size buffer.
 */
async function foldOne(kernel: MatmulKernel, w: Float32Array, { module: m, transposed }: Target): Promise<Float32Array> {
  const scaledB = scaled(m.B, m.scaling);
  // left factor by rows of W: s·B (out×r), or Aᵀ (in×r); right factor: A (r×in), or s·B used as Bᵀ
  const [left, rows, cols] = transposed ? [transpose(m.A, m.rank, m.inFeatures), m.inFeatures, m.outFeatures] : [scaledB, m.outFeatures, m.inFeatures];
  const right = transposed ? { data: scaledB, rows: m.outFeatures, cols: m.rank } : { data: m.A, rows: m.rank, cols: m.inFeatures };
  const tileRows = Math.max(1, Math.floor(TILE_BYTES / (4 * cols)));
  for (let r0 = 0; r0 < rows; r0 += tileRows) {
    const n = Math.min(tileRows, rows - r0);
    const l = { data: left.subarray(r0 * m.rank, (r0 + n) * m.rank), rows: n, cols: m.rank };
    const d = (await kernel.gemm(l, right, { transB: transposed })).data;
    const base = r0 * cols;
    for (let i = 0; i < d.length; i++) w[base + i] = w[base + i]! + d[i]!;
  }
  return w;
}
