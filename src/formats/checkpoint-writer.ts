// Writes a checkpoint's weights as transformers does: shards of at most `maxShardBytes` named
// model-00001-of-00003.safetensors with model.safetensors.index.json, or a single model.safetensors. The shard plan
// comes from the layout up front, so tensors stream straight to disk and a 7B model never sits in memory.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInputError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { DTYPE_SIZE } from './dtype.js';
import { elementCount } from './safetensors-header.js';
import { SafetensorsWriter, type TensorLayout } from './safetensors-writer.js';

/** transformers' default `max_shard_size` ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

export interface ShardedWriterOptions {
  maxShardBytes?: number;
  /** safetensors metadata of every shard; transformers refuses files without `format: "pt"`, the default. */
  metadata?: Record<string, string>;
}

interface ShardPlan {
  file: string;
  layout: TensorLayout[];
  pending: Set<string>;
  writer?: SafetensorsWriter;
  done: boolean;
}

export interface WrittenCheckpoint {
  /** Shard file names, in order. */
  files: string[];
  /** Sum of the tensors' bytes, as the index's metadata.total_size. */
  totalSize: number;
}

export class ShardedCheckpointWriter {
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly shards: ShardPlan[],
    private readonly shardOf: Map<string, ShardPlan>,
    private readonly totalSize: number,
    private readonly metadata: Record<string, string>,
  ) {}

  /** Plans the shards (greedy in layout order, as huggingface_hub does) and creates `dir` if needed. */
  static async create(dir: string, layout: TensorLayout[], options: ShardedWriterOptions = {}): Promise<ShardedCheckpointWriter> {
    const max = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
    if (!(max > 0)) throw new InvalidInputError(`maxShardBytes must be positive, got ${max}`);
    const groups: TensorLayout[][] = [];
    let current: TensorLayout[] = [];
    let currentBytes = 0;
    let totalSize = 0;
    for (const t of layout) {
      const bytes = elementCount(t.shape) * DTYPE_SIZE[t.dtype];
      if (current.length > 0 && currentBytes + bytes > max) {
        groups.push(current);
        current = [];
        currentBytes = 0;
      }
      current.push(t);
      currentBytes += bytes;
      totalSize += bytes;
    }
    if (current.length > 0 || groups.length === 0) groups.push(current);
    const names = groups.length === 1 ? ['model.safetensors'] : groups.map((_, i) => shardName(i, groups.length));
    const shards = groups.map((g, i) => ({ file: names[i]!, layout: g, pending: new Set(g.map((t) => t.name)), done: false }));
    const shardOf = new Map<string, ShardPlan>();
    for (const shard of shards) {
      for (const t of shard.layout) {
        if (shardOf.has(t.name)) throw new InvalidInputError(`tensor ${JSON.stringify(t.name)} appears twice in the layout`);
        shardOf.set(t.name, shard);
      }
    }
    await mkdir(dir, { recursive: true });
    return new ShardedCheckpointWriter(path.resolve(dir), shards, shardOf, totalSize, options.metadata ?? { format: 'pt' });
  }

  /** Shard file names the layout was split into. */
  get files(): string[] {
    return this.shards.map((s) => s.file);
  }

  /** Writes a float tensor, converted to its layout dtype. */
  async write(name: string, data: Float32Array): Promise<void> {
    await this.put(name, (w) => w.write(name, data));
  }

  /** Writes a tensor's raw little-endian bytes in its layout dtype (e.g. copied unchanged from the base model). */
  async writeBytes(name: string, bytes: Uint8Array): Promise<void> {
    await this.put(name, (w) => w.writeBytes(name, bytes));
  }

  /** Checks that every tensor was written and writes the index (only when there is more than one shard). */
  async finish(): Promise<WrittenCheckpoint> {
    const missing = this.shards.flatMap((s) => [...s.pending]);
    if (missing.length > 0) {
      await this.abort();
      throw new InvalidInputError(`${this.dir}: ${missing.length} tensor(s) never written: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
    }
    for (const shard of this.shards) if (!shard.done) await this.finishShard(shard); // empty shards
    this.closed = true;
    if (this.shards.length > 1) {
      const weightMap: Record<string, string> = {};
      for (const name of [...this.shardOf.keys()].sort()) weightMap[name] = this.shardOf.get(name)!.file;
      const index = { metadata: { total_size: this.totalSize }, weight_map: weightMap };
      await writeFileAtomic(path.join(this.dir, 'model.safetensors.index.json'), `${JSON.stringify(index, null, 2)}\n`);
    }
    return { files: this.files, totalSize: this.totalSize };
  }

  /** Removes every shard written so far. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const shard of this.shards) {
      await shard.writer?.abort();
      if (shard.done) await rm(path.join(this.dir, shard.file), { force: true });
    }
  }

  private async put(name: string, write: (w: SafetensorsWriter) => Promise<void>): Promise<void> {
    if (this.closed) throw new InvalidInputError(`${this.dir}: the checkpoint writer is already finished or aborted`);
    const shard = this.shardOf.get(name);
    if (!shard) throw new InvalidInputError(`tensor ${JSON.stringify(name)} is not in the checkpoint layout`);
    if (!shard.pending.has(name)) throw new InvalidInputError(`tensor ${JSON.stringify(name)} was already written`);
    try {
      shard.writer ??= await SafetensorsWriter.create(path.join(this.dir, shard.file), shard.layout, this.metadata);
      await write(shard.writer);
      shard.pending.delete(name);
      if (shard.pending.size === 0) await this.finishShard(shard);
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  private async finishShard(shard: ShardPlan): Promise<void> {
    shard.writer ??= await SafetensorsWriter.create(path.join(this.dir, shard.file), shard.layout, this.metadata);
    await shard.writer.finish();
    shard.writer = undefined;
    shard.done = true;
  }
}

function shardName(i: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(i + 1)}-of-${pad(count)}.safetensors`;
}
