// Checkpoint tensors → graph initializers, one tensor at a time: read (any float dtype → f32), convert (transpose
// for fp32 MatMul, or 4-bit quantize), hand to the sink, drop. The sink either keeps the bytes for inline
// initializers (small models) or appends them to the external data file, so converting a 7B checkpoint holds one
// tensor in memory at a time, not the model.
import { BYTES_PER_ELEMENT, ExternalDataFile, type ExternalTensorRef, type OnnxDtype, type OnnxModel } from '../../formats/onnx.js';
import { CancelledError, InvalidFileError } from '../../errors.js';
import type { ModelConfig } from './config.js';
import { EMBED, FINAL_NORM, LM_HEAD, LORA_TARGETS, ROPE_COS, ROPE_SIN, layerNorm, modulePath, weightName } from './naming.js';
import { quantizeInt4 } from './quantize.js';
import { ropeCaches } from './rope.js';

export type WeightDtype = 'fp32' | 'int4';

export const INT4_BLOCK_SIZE = 32;

/** What the converter needs of a checkpoint (formats/checkpoint's `Checkpoint` has it). */
export interface TensorSource {
  readonly tensorNames: Iterable<string>;
  has(name: string): boolean;
  info(name: string): { shape: number[] };
  readFloat32(name: string): Promise<Float32Array>;
}

export interface WeightRef {
  name: string;
  dtype: OnnxDtype;
  dims: number[];
  inline?: ArrayBufferView;
  external?: ExternalTensorRef;
}

/** Where converted tensors go: kept in memory for inline initializers, or appended to an external data file. */
export class WeightSink {
  readonly refs = new Map<string, WeightRef>();
  private bytes = 0;

  private constructor(private readonly file: ExternalDataFile | null) {}

  static inline(): WeightSink {
    return new WeightSink(null);
  }

  static async external(dataPath: string): Promise<WeightSink> {
    return new WeightSink(await ExternalDataFile.create(dataPath));
  }

  get externalFile(): string | null {
    return this.file?.path ?? null;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  async add(name: string, dtype: OnnxDtype, dims: number[], data: ArrayBufferView): Promise<void> {
    if (this.refs.has(name)) throw new Error(`weight ${name} written twice`);
    this.bytes += data.byteLength;
    if (this.file) this.refs.set(name, { name, dtype, dims, external: await this.file.append(name, dtype, dims, data) });
    else this.refs.set(name, { name, dtype, dims, inline: data });
  }

  /** Declares every weight as an initializer of `model` (inline bytes or external references). */
  declareIn(model: OnnxModel): void {
    for (const ref of this.refs.values()) {
      if (ref.external) model.externalInitializer(ref.external);
      else model.initializer(ref.name, ref.dtype, ref.dims, ref.inline!);
    }
  }

  async close(): Promise<void> {
    await this.file?.close();
  }
}

function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c]!;
  return t;
}

export interface ConvertProgress {
  done: number;
  total: number;
  tensor: string;
}

interface Task {
  name: string;
  run(): Promise<void>;
}

/**
 * The checkpoint's tensors this config needs, checked for presence and shape before anything is converted, so a
 * wrong or truncated checkpoint fails at once with the tensor's name.
 */
function expectedShapes(config: ModelConfig, tied: boolean): Map<string, number[]> {
  const { hiddenSize: d, intermediateSize: im, numHeads, numKvHeads, headDim, vocabSize } = config;
  const shapes = new Map<string, number[]>();
  shapes.set(`${EMBED}.weight`, [vocabSize, d]);
  const dims: Record<(typeof LORA_TARGETS)[number], [number, number]> = {
    q: [numHeads * headDim, d],
    k: [numKvHeads * headDim, d],
    v: [numKvHeads * headDim, d],
    o: [d, numHeads * headDim],
    gate: [im, d],
    up: [im, d],
    down: [d, im],
  };
  for (let l = 0; l < config.numLayers; l++) {
    shapes.set(layerNorm(l, 'input'), [d]);
    shapes.set(layerNorm(l, 'post_attention'), [d]);
    for (const t of LORA_TARGETS) shapes.set(`${modulePath(l, t)}.weight`, dims[t]);
  }
  shapes.set(FINAL_NORM, [d]);
  if (!tied) shapes.set(`${LM_HEAD}.weight`, [vocabSize, d]);
  return shapes;
}

/** Whether the output head reuses the embedding table: stated in the config, or no lm_head.weight in the files. */
export function isTied(config: ModelConfig, source: TensorSource): boolean {
  return config.tieWordEmbeddings || !source.has(`${LM_HEAD}.weight`);
}

export function checkTensors(config: ModelConfig, source: TensorSource, file: string): void {
  for (const [name, shape] of expectedShapes(config, isTied(config, source))) {
    if (!source.has(name)) throw new InvalidFileError(file, `tensor ${name} is missing: is this a complete ${config.architecture} checkpoint?`);
    const info = source.info(name);
    if (info.shape.join(',') !== shape.join(',')) {
      throw new InvalidFileError(file, `tensor ${name} has shape [${info.shape.join(', ')}], config.json implies [${shape.join(', ')}]`);
    }
  }
}

/** Output bytes of the converted weights, to decide between inline and external data before converting. */
export function estimateBytes(config: ModelConfig, dtype: WeightDtype, source: TensorSource, maxPositions: number): number {
  let total = 2 * maxPositions * (config.headDim / 2) * 4;
  const tied = isTied(config, source);
  for (const shape of expectedShapes(config, tied).values()) {
    const n = shape.reduce((a, b) => a * b, 1);
    total += shape.length === 2 && dtype === 'int4' ? n / 2 + (n / INT4_BLOCK_SIZE) * 4 : n * 4;
  }
  for (const name of source.tensorNames) if (name.endsWith('_proj.bias')) total += (source.info(name).shape[0] ?? 0) * 4;
  return total;
}

/**
 * Converts every tensor the graph needs into `sink`, in a fixed order. Names follow `weightName`; `graph.ts` reads
 * them back from `sink.refs`.
 */
export async function convertWeights(
  config: ModelConfig,
  source: TensorSource,
  sink: WeightSink,
  options: { dtype: WeightDtype; maxPositions: number; onProgress?: (p: ConvertProgress) => void; signal?: AbortSignal },
): Promise<void> {
  const { dtype } = options;
  const tied = isTied(config, source);
  const d = config.hiddenSize;
  const tasks: Task[] = [];
  const read = async (name: string): Promise<Float32Array> => source.readFloat32(name);
  const add = (name: string, onnxDtype: OnnxDtype, dims: number[], data: ArrayBufferView): Promise<void> => {
    if (data.byteLength !== dims.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[onnxDtype]) throw new Error(`size mismatch converting ${name}`);
    return sink.add(name, onnxDtype, dims, data);
  };
  const int4Embedding = dtype === 'int4' && d % INT4_BLOCK_SIZE === 0;

  tasks.push({
    name: `${EMBED}.weight`,
    run: async () => {
      const w = await read(`${EMBED}.weight`);
      if (int4Embedding) {
        const q = quantizeInt4(w, config.vocabSize, d, INT4_BLOCK_SIZE);
        await add(weightName.qweight(EMBED), 'uint8', [config.vocabSize, q.blocksPerRow, INT4_BLOCK_SIZE / 2], q.qweight);
        // GatherBlockQuantized wants scales of the data's rank
        await add(weightName.scales(EMBED), 'float32', [config.vocabSize, q.blocksPerRow, 1], q.scales);
        // MatMulNBits cannot read [V, blocks, 1] scales: the tied head gets its own flat copy (1/8 of the table)
        if (tied) await add(weightName.scales(LM_HEAD), 'float32', [config.vocabSize * q.blocksPerRow], q.scales);
      } else {
        await add(weightName.plain(EMBED), 'float32', [config.vocabSize, d], w);
      }
      // fp32 tied head: Gemm(transB=1) reads the embedding table as it is, no copy
      if (tied && dtype === 'int4' && !int4Embedding) {
        const q = quantizeInt4(w, config.vocabSize, d, INT4_BLOCK_SIZE);
        await add(weightName.qweight(LM_HEAD), 'uint8', [config.vocabSize, q.blocksPerRow, INT4_BLOCK_SIZE / 2], q.qweight);
        await add(weightName.scales(LM_HEAD), 'float32', [config.vocabSize * q.blocksPerRow], q.scales);
      }
    },
  });

  const linear = (module: string): Task => ({
    name: `${module}.weight`,
    run: async () => {
      const info = source.info(`${module}.weight`);
      const [n, k] = info.shape as [number, number];
      const w = await read(`${module}.weight`);
      if (dtype === 'int4') {
        const q = quantizeInt4(w, n, k, INT4_BLOCK_SIZE);
        await add(weightName.qweight(module), 'uint8', [n, q.blocksPerRow, INT4_BLOCK_SIZE / 2], q.qweight);
        await add(weightName.scales(module), 'float32', [n * q.blocksPerRow], q.scales);
      } else {
        await add(weightName.transposed(module), 'float32', [k, n], transpose(w, n, k));
      }
      if (source.has(`${module}.bias`)) {
        const bias = source.info(`${module}.bias`);
        if (bias.shape.join(',') !== String(n)) {
          throw new InvalidFileError('checkpoint', `tensor ${module}.bias has shape [${bias.shape.join(', ')}], expected [${n}]`);
        }
        await add(weightName.bias(module), 'float32', [n], await read(`${module}.bias`));
      }
    },
  });
  const vector = (name: string): Task => ({ name, run: async () => add(name, 'float32', [d], await read(name)) });

  for (let l = 0; l < config.numLayers; l++) {
    tasks.push(vector(layerNorm(l, 'input')));
    for (const t of ['q', 'k', 'v', 'o'] as const) tasks.push(linear(modulePath(l, t)));
    tasks.push(vector(layerNorm(l, 'post_attention')));
    for (const t of ['gate', 'up', 'down'] as const) tasks.push(linear(modulePath(l, t)));
  }
  tasks.push(vector(FINAL_NORM));
  if (!tied) {
    tasks.push({
      name: `${LM_HEAD}.weight`,
      run: async () => {
        const w = await read(`${LM_HEAD}.weight`);
        if (dtype === 'int4') {
          const q = quantizeInt4(w, config.vocabSize, d, INT4_BLOCK_SIZE);
          await add(weightName.qweight(LM_HEAD), 'uint8', [config.vocabSize, q.blocksPerRow, INT4_BLOCK_SIZE / 2], q.qweight);
          await add(weightName.scales(LM_HEAD), 'float32', [config.vocabSize * q.blocksPerRow], q.scales);
        } else {
          await add(weightName.plain(LM_HEAD), 'float32', [config.vocabSize, d], w);
        }
      },
    });
  }
  tasks.push({
    name: 'rope caches',
    run: async () => {
      const { cos, sin } = ropeCaches(config, options.maxPositions);
      await add(ROPE_COS, 'float32', [options.maxPositions, config.headDim / 2], cos);
      await add(ROPE_SIN, 'float32', [options.maxPositions, config.headDim / 2], sin);
    },
  });

  for (let i = 0; i < tasks.length; i++) {
    if (options.signal?.aborted) throw new CancelledError('model build cancelled');
    const task = tasks[i]!;
    options.onProgress?.({ done: i, total: tasks.length, tensor: task.name });
    await task.run();
  }
  options.onProgress?.({ done: tasks.length, total: tasks.length, tensor: '' });
}
