// buildModel: an HF checkpoint dir becomes a model dir the engine can load alone: model.onnx (generate head),
// score.onnx (scoring head), model.onnx.data (weights, when large), manifest.json, config.json and the tokenizer
// files. Cached under DATA_DIR/models/ by checkpoint fingerprint, builder version and options; built in a temp dir
// and renamed, so an interrupted build leaves nothing behind and a finished one is never half-visible.
import { createHash } from 'node:crypto';
import { copyFile, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConflictError, InvalidInputError } from '../../errors.js';
import { writeDirAtomic } from '../../formats/atomic.js';
import { Checkpoint } from '../../formats/checkpoint.js';
import { TOKENIZER_FILES } from '../tokenizer.js';
import { archSpec, modulePath, resolveTargets } from './arch.js';
import { normalizeConfig, projectionFeatures, type ModelConfig } from './config.js';
import { buildDecoderGraph, type HeadKind } from './graph.js';
import { BUILDER_VERSION, MANIFEST_FILE, readManifest, type GraphManifest, type ModelManifest } from './manifest.js';
import { LORA_TARGETS, io, type LoraTarget } from './naming.js';
import { WeightSink, checkTensors, convertWeights, estimateBytes, type WeightDtype } from './weights.js';
import { INT4_BLOCK_SIZE, isInt4BlockSize } from './quantize.js';

export { checkManifest, readManifest, BUILDER_VERSION, type ModelManifest } from './manifest.js';
export type { LoraTarget } from './naming.js';

export interface BuildProgress {
  phase: 'fingerprint' | 'convert' | 'graph' | 'finish';
  done: number;
  total: number;
  /** the tensor or file being worked on */
  detail: string;
}

export interface BuildOptions {
  /** models are cached under `<dataDir>/models/` */
  dataDir: string;
  /** weight storage (default int4: 4-bit MatMulNBits, the fast choice on CPU) */
  dtype?: WeightDtype;
  /** projections that take LoRA inputs (default q, k, v, o), in the architecture's terms (see resolveTargets) */
  targets?: readonly LoraTarget[];
  /** largest adapter rank the engine's pool holds (default 64) */
  maxRank?: number;
  /** adapter slots in the engine's pool, slot 0 included (default 8) */
  slots?: number;
  /** graphs to write (default both: generate and score) */
  heads?: readonly HeadKind[];
  /** rope cache length (default the config's max_position_embeddings) */
  maxPositions?: number;
  /** MatMulNBits accuracy_level for int4 (default 4: int8 activations, as onnxruntime-genai does on CPU) */
  accuracyLevel?: number;
  /** q/k/v and gate/up stored apart (Llama, Mistral, Qwen, Gemma) run as one fused matmul each, LoRA still per
   * projection (default true: fewer, larger kernels; docs/BENCHMARKS.md) */
  fuseProjections?: boolean;
  /** int4 block size along the input dim: 16 to 256, a power of 2 (default 32, llama.cpp's Q4_0 block) */
  int4BlockSize?: number;
  /** weights above this many bytes go to an external data file (default 64 MiB) */
  externalDataThreshold?: number;
  onProgress?: (progress: BuildProgress) => void;
  signal?: AbortSignal;
}

export interface BuildResult {
  dir: string;
  manifest: ModelManifest;
  /** true when an identical build was already there */
  cached: boolean;
  /** builds of this checkpoint by older builder versions, which no longer load, removed after this one was made */
  removed: string[];
}

const GRAPH_FILES: Record<HeadKind, string> = { generate: 'model.onnx', score: 'score.onnx' };
const EXTERNAL_DATA_FILE = 'model.onnx.data';
const SAMPLES_PER_FILE = 16;
const SAMPLE_BYTES = 64 * 1024;

/**
 * A fingerprint of the checkpoint that changes when its content does, without reading every weight byte: config,
 * index and tokenizer files whole, and per weight file its name, size, safetensors header and 16 evenly spaced
 * 64 KiB samples of the data. Fine-tunes of one base share headers, never the sampled bytes.
 */
async function fingerprint(checkpoint: Checkpoint): Promise<string> {
  const hash = createHash('sha256');
  const names = ['config.json', 'model.safetensors.index.json', ...TOKENIZER_FILES];
  for (const name of names) {
    try {
      const bytes = await readFile(path.join(checkpoint.dir, name));
      hash.update(`${name}\0${bytes.length}\0`).update(bytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  for (const shard of checkpoint.shardFiles) {
    const handle = await open(path.join(checkpoint.dir, shard), 'r');
    try {
      const { size } = await handle.stat();
      hash.update(`${shard}\0${size}\0`);
      const lengthBytes = Buffer.alloc(8);
      await handle.read(lengthBytes, 0, 8, 0);
      const headerEnd = Math.min(size, 8 + Number(lengthBytes.readBigUInt64LE(0)));
      const header = Buffer.alloc(headerEnd);
      await handle.read(header, 0, headerEnd, 0);
      hash.update(header);
      const span = size - headerEnd;
      const sample = Buffer.alloc(Math.min(SAMPLE_BYTES, span));
      for (let i = 0; i < SAMPLES_PER_FILE && sample.length > 0; i++) {
        const at = headerEnd + Math.floor(((span - sample.length) * i) / (SAMPLES_PER_FILE - 1));
        const { bytesRead } = await handle.read(sample, 0, sample.length, at);
        hash.update(sample.subarray(0, bytesRead));
      }
    } finally {
      await handle.close();
    }
  }
  return hash.digest('hex');
}

function checkOptions(options: BuildOptions, config: ModelConfig) {
  const dtype = options.dtype ?? 'int4';
  if (dtype !== 'fp32' && dtype !== 'int4') throw new InvalidInputError(`dtype must be fp32 or int4, not ${JSON.stringify(dtype)}`);
  const requested = [...new Set(options.targets ?? (['q', 'k', 'v', 'o'] as LoraTarget[]))];
  for (const t of requested) {
    if (!LORA_TARGETS.includes(t)) throw new InvalidInputError(`unknown LoRA target ${JSON.stringify(t)}: choose from ${LORA_TARGETS.join(', ')}`);
  }
  const targets = resolveTargets(archSpec(config.architecture), requested);
  if (requested.length > 0 && targets.length === 0) {
    throw new InvalidInputError(`LoRA targets ${requested.join(', ')}: a ${config.architecture} model has none of them`);
  }
  targets.sort((a, b) => LORA_TARGETS.indexOf(a) - LORA_TARGETS.indexOf(b));
  const int = (name: string, value: number, min: number, max: number): number => {
    if (!Number.isInteger(value) || value < min || value > max) throw new InvalidInputError(`${name} must be an integer from ${min} to ${max}, not ${value}`);
    return value;
  };
  const maxRank = int('maxRank', options.maxRank ?? 64, 1, 4096);
  const slots = int('slots', options.slots ?? 8, 2, 1024);
  const maxPositions = int('maxPositions', options.maxPositions ?? config.maxPositionEmbeddings, 1, 1 << 22);
  // a learned position table (GPT-2) ends where it ends; rotary caches can be made longer
  if (archSpec(config.architecture).positions === 'learned' && maxPositions > config.maxPositionEmbeddings) {
    throw new InvalidInputError(`maxPositions ${maxPositions} is beyond this ${config.architecture} model's learned positions (${config.maxPositionEmbeddings})`);
  }
  const accuracyLevel = int('accuracyLevel', options.accuracyLevel ?? 4, 0, 4);
  const heads = [...new Set(options.heads ?? (['generate', 'score'] as HeadKind[]))];
  if (!heads.includes('generate')) throw new InvalidInputError('heads must include generate');
  const fuse = options.fuseProjections ?? true;
  const blockSize = options.int4BlockSize ?? INT4_BLOCK_SIZE;
  if (!isInt4BlockSize(blockSize)) throw new InvalidInputError(`int4BlockSize must be a power of 2 from 16 to 256, not ${blockSize}`);
  const int4 = dtype === 'int4';
  return { dtype, targets, maxRank, slots, maxPositions, accuracyLevel: int4 ? accuracyLevel : 0, blockSize: int4 ? blockSize : INT4_BLOCK_SIZE, heads, fuse };
}

async function fileSizes(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of (await readdir(dir)).sort()) out[name] = (await stat(path.join(dir, name))).size;
  return out;
}

/**
 * Removes the builds of the same checkpoint by older builder versions (`<hash>-b<older>-…`): this loraforge refuses to
 * load them, and each holds a copy of the weights (a gigabyte for a 1B model), so an upgrade would otherwise leave one
 * behind per version. Builds by newer versions (a newer loraforge sharing the data dir) are left alone.
 */
async function removeOlderBuilds(models: string, hash: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(models).catch(() => [] as string[])) {
    const version = /^([0-9a-f]+)-b(\d+)-/.exec(name);
    if (!version || version[1] !== hash || Number(version[2]) >= BUILDER_VERSION) continue;
    await rm(path.join(models, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Removes what builds of `target` killed mid-way left: the hidden temp dirs writeDirAtomic names
 * `.<name>.tmp-<pid>-<random>`, when that process is gone. A live build's temp dir is left alone.
 */
async function removeStaleTemps(target: string): Promise<void> {
  const parent = path.dirname(target);
  const prefix = `.${path.basename(target)}.tmp-`;
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return;
  }
  for (const name of entries) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') await rm(path.join(parent, name), { recursive: true, force: true });
    }
  }
}

function baseModelName(raw: Record<string, unknown>, dir: string): string {
  const name = raw._name_or_path;
  return typeof name === 'string' && name.trim() !== '' && !path.isAbsolute(name) ? name : path.basename(dir);
}

/** Builds (or finds in the cache) the ONNX model dir of an HF checkpoint. */
export async function buildModel(checkpointDir: string, options: BuildOptions): Promise<BuildResult> {
  const progress = options.onProgress ?? (() => {});
  const checkpoint = await Checkpoint.open(checkpointDir);
  try {
    const configFile = path.join(checkpoint.dir, 'config.json');
    const config = normalizeConfig(checkpoint.config, configFile);
    checkTensors(config, checkpoint, checkpoint.dir);
    const opts = checkOptions(options, config);

    progress({ phase: 'fingerprint', done: 0, total: 1, detail: checkpoint.dir });
    const checkpointHash = await fingerprint(checkpoint);
    progress({ phase: 'fingerprint', done: 1, total: 1, detail: checkpoint.dir });
    const external = estimateBytes(config, opts.dtype, checkpoint, opts.maxPositions, opts.blockSize) > (options.externalDataThreshold ?? 64 * 1024 ** 2);
    const variant = createHash('sha256').update(JSON.stringify({ ...opts, external })).digest('hex').slice(0, 8);
    const models = path.resolve(options.dataDir, 'models');
    const hash = checkpointHash.slice(0, 16);
    const dir = path.join(models, `${hash}-b${BUILDER_VERSION}-${opts.dtype}-${variant}`);

    const cached = await readManifest(dir).catch(() => null);
    if (cached) return { dir, manifest: cached, cached: true, removed: [] };
    await removeStaleTemps(dir);

    let manifest: ModelManifest | undefined;
    try {
      await writeDirAtomic(dir, async (tmp) => {
        const sink = external ? await WeightSink.external(path.join(tmp, EXTERNAL_DATA_FILE)) : WeightSink.inline();
        try {
          await convertWeights(config, checkpoint, sink, {
            dtype: opts.dtype,
            maxPositions: opts.maxPositions,
            fuse: opts.fuse,
            blockSize: opts.blockSize,
            signal: options.signal,
            onProgress: (p) => progress({ phase: 'convert', done: p.done, total: p.total, detail: p.tensor }),
          });
        } finally {
          await sink.close();
        }

        const graphs: Partial<Record<HeadKind, GraphManifest>> = {};
        for (const [i, head] of opts.heads.entries()) {
          progress({ phase: 'graph', done: i, total: opts.heads.length, detail: GRAPH_FILES[head] });
          const graph = buildDecoderGraph(
            {
              config,
              dtype: opts.dtype,
              targets: opts.targets,
              accuracyLevel: opts.accuracyLevel,
              fuse: opts.fuse,
              blockSize: opts.blockSize,
              head,
              metadata: { 'loraforge.builder_version': String(BUILDER_VERSION), 'loraforge.checkpoint_hash': checkpointHash },
            },
            sink,
          );
          await writeFile(path.join(tmp, GRAPH_FILES[head]), graph.model.encode());
          graphs[head] = { file: GRAPH_FILES[head], inputs: graph.inputs, outputs: graph.outputs };
        }

        progress({ phase: 'finish', done: 0, total: 1, detail: MANIFEST_FILE });
        const tokenizerFiles: string[] = [];
        for (const name of TOKENIZER_FILES) {
          const from = path.join(checkpoint.dir, name);
          try {
            await copyFile(from, path.join(tmp, name));
            tokenizerFiles.push(name);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          }
        }
        await copyFile(configFile, path.join(tmp, 'config.json'));
        const warnings: string[] = [];
        if (!tokenizerFiles.includes('tokenizer.json')) {
          warnings.push('the checkpoint has no tokenizer.json: the model can score and generate token ids, but not serve text');
        }
        const archs = checkpoint.config.architectures;
        manifest = {
          format: 'loraforge-model',
          builderVersion: BUILDER_VERSION,
          checkpointHash,
          baseModel: baseModelName(checkpoint.config, checkpoint.dir),
          sourceArchitecture: Array.isArray(archs) && archs.length > 0 ? String(archs[0]) : String(checkpoint.config.model_type),
          createdAt: new Date().toISOString(),
          config,
          dtype: opts.dtype,
          quantization:
            opts.dtype === 'int4' ? { bits: 4, blockSize: opts.blockSize, accuracyLevel: opts.accuracyLevel, scheme: 'symmetric-rtn' } : null,
          maxPositions: opts.maxPositions,
          lora: {
            targets: opts.targets,
            maxRank: opts.maxRank,
            slots: opts.slots,
            inputs: Array.from({ length: config.numLayers }, (_, layer) =>
              opts.targets.map((target) => ({
                layer,
                target,
                module: modulePath(archSpec(config.architecture), layer, target),
                ...projectionFeatures(config, target),
                a: io.loraA(layer, target),
                b: io.loraB(layer, target),
              })),
            ).flat(),
          },
          kvCache: {
            numLayers: config.numLayers,
            numKvHeads: config.numKvHeads,
            headDim: config.headDim,
            pastKey: 'past_key_values.{layer}.key',
            pastValue: 'past_key_values.{layer}.value',
            newKey: 'kv_new.{layer}.key',
            newValue: 'kv_new.{layer}.value',
          },
          graphs: graphs as ModelManifest['graphs'],
          files: {
            externalData: external ? EXTERNAL_DATA_FILE : null,
            tokenizer: tokenizerFiles,
            config: 'config.json',
            bytes: await fileSizes(tmp),
          },
          warnings,
        };
        await writeFile(path.join(tmp, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
        progress({ phase: 'finish', done: 1, total: 1, detail: MANIFEST_FILE });
      });
    } catch (err) {
      // another process finished the same build first: theirs is as good as ours
      if (err instanceof ConflictError) {
        const theirs = await readManifest(dir).catch(() => null);
        if (theirs) return { dir, manifest: theirs, cached: true, removed: [] };
      }
      throw err;
    }
    return { dir, manifest: manifest!, cached: false, removed: await removeOlderBuilds(models, hash) };
  } finally {
    await checkpoint.close();
  }
}
