// Hugging Face checkpoint directories: config.json, weights in one or more *.safetensors shards (with or without
// model.safetensors.index.json), and the tokenizer and generation files that travel with them. Tensors are read
// lazily from whichever shard holds them. The config is exposed raw: normalizing it per architecture is the
// builder's job, not this module's.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidFileError, NotFoundError, UnsupportedError } from '../errors.js';
import { readJsonObject } from './json-file.js';
import { SafetensorsFile, type OpenOptions, type TensorInfo } from './safetensors.js';

export {
  DEFAULT_MAX_SHARD_BYTES,
  ShardedCheckpointWriter,
  type ShardedWriterOptions,
  type WrittenCheckpoint,
} from './checkpoint-writer.js';

export const CONFIG_FILE = 'config.json';
export const INDEX_FILE = 'model.safetensors.index.json';

/** Files besides the weights that a model needs and that a fold copies to its output. */
export const AUXILIARY_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'chat_template.jinja',
  'chat_template.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
] as const;

const PICKLE_HINT =
  'convert it with Python: `from transformers import AutoModelForCausalLM; ' +
  'AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)`';

export interface CheckpointTensorInfo extends TensorInfo {
  /** The shard file (name within the checkpoint directory) holding the tensor. */
  file: string;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** A shard name from an index must be a plain file name inside the checkpoint directory. */
function checkShardName(indexPath: string, name: unknown, tensor: string): string {
  if (typeof name !== 'string' || name === '' || name !== path.basename(name) || name === '.' || name === '..') {
    throw new InvalidFileError(indexPath, `weight_map entry for tensor ${JSON.stringify(tensor)} must name a file in the same directory, not ${JSON.stringify(name)}`, { tensor });
  }
  return name;
}

export class Checkpoint {
  private constructor(
    readonly dir: string,
    /** config.json as written, unnormalized. */
    readonly config: Record<string, unknown>,
    /** Auxiliary file name → absolute path, for those of AUXILIARY_FILES present. */
    readonly files: Readonly<Record<string, string>>,
    private readonly shards: ReadonlyMap<string, SafetensorsFile>,
    private readonly where: ReadonlyMap<string, string>,
  ) {}

  static async open(dir: string, options: OpenOptions = {}): Promise<Checkpoint> {
    const root = path.resolve(dir);
    let entries: string[];
    try {
      entries = await readdir(root);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new NotFoundError(`${root}: no such directory`);
      if (code === 'ENOTDIR') throw new InvalidFileError(root, 'is a file: a checkpoint is a directory holding config.json and *.safetensors');
      throw err;
    }
    if (!entries.includes(CONFIG_FILE)) {
      throw new InvalidFileError(root, `no ${CONFIG_FILE}: a Hugging Face checkpoint directory holds config.json next to its weights`);
    }
    const config = await readJsonObject(path.join(root, CONFIG_FILE));

    const files: Record<string, string> = {};
    for (const name of AUXILIARY_FILES) {
      if (entries.includes(name) && (await isFile(path.join(root, name)))) files[name] = path.join(root, name);
    }

    const where = new Map<string, string>(); // tensor → shard file name
    let shardNames: string[];
    if (entries.includes(INDEX_FILE)) {
      const indexPath = path.join(root, INDEX_FILE);
      const index = await readJsonObject(indexPath);
      const weightMap = index.weight_map;
      if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
        throw new InvalidFileError(indexPath, 'has no "weight_map" object (tensor name → shard file)');
      }
      for (const [tensor, shard] of Object.entries(weightMap)) where.set(tensor, checkShardName(indexPath, shard, tensor));
      shardNames = [...new Set(where.values())].sort();
      for (const shard of shardNames) {
        if (!entries.includes(shard)) {
          throw new InvalidFileError(indexPath, `names shard ${shard}, which is not in ${root}: the download is incomplete`);
        }
      }
    } else {
      shardNames = entries.filter((e) => e.endsWith('.safetensors')).sort();
      if (shardNames.length === 0) {
        if (entries.some((e) => /^pytorch_model.*\.bin$/.test(e))) {
          throw new UnsupportedError(`${root}: the weights are PyTorch pickles (pytorch_model*.bin), which loraforge does not load; ${PICKLE_HINT.replaceAll('DIR', JSON.stringify(root))}`);
        }
        throw new InvalidFileError(root, 'holds no *.safetensors weights');
      }
    }

    const shards = new Map<string, SafetensorsFile>();
    try {
      for (const name of shardNames) shards.set(name, await SafetensorsFile.open(path.join(root, name), options));
      if (where.size > 0) {
        for (const [tensor, shard] of where) {
          if (!shards.get(shard)!.tensors.has(tensor)) {
            throw new InvalidFileError(path.join(root, INDEX_FILE), `maps tensor ${JSON.stringify(tensor)} to ${shard}, which does not hold it`, { tensor });
          }
        }
      } else {
        for (const [name, shard] of shards) {
          for (const tensor of shard.tensors.keys()) {
            const other = where.get(tensor);
            if (other !== undefined) {
              throw new InvalidFileError(root, `tensor ${JSON.stringify(tensor)} is in both ${other} and ${name}, and there is no ${INDEX_FILE} to say which counts`, { tensor });
            }
            where.set(tensor, name);
          }
        }
      }
    } catch (err) {
      await Promise.all([...shards.values()].map((s) => s.close()));
      throw err;
    }
    return new Checkpoint(root, config, files, shards, where);
  }

  /** Tensor names in a stable order (sorted). */
  get tensorNames(): string[] {
    return [...this.where.keys()].sort();
  }

  /** Shard file names, sorted. */
  get shardFiles(): string[] {
    return [...this.shards.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  info(name: string): CheckpointTensorInfo {
    return { ...this.shard(name).info(name), file: this.where.get(name)! };
  }

  async readFloat32(name: string): Promise<Float32Array> {
    return this.shard(name).readFloat32(name);
  }

  async readBytes(name: string): Promise<Uint8Array> {
    return this.shard(name).readBytes(name);
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((s) => s.close()));
  }

  private shard(name: string): SafetensorsFile {
    const file = this.where.get(name);
    if (file === undefined) throw new NotFoundError(`${this.dir}: the checkpoint has no tensor named ${JSON.stringify(name)}`);
    return this.shards.get(file)!;
  }
}
