// Checkpoint tensors → graph initializers, one tensor at a time: read (any float dtype → f32), convert (transpose
// for fp32 MatMul, or 4-bit quantize; GPT-2's Conv1D weights are already [in, out]; Gemma's norms get their 1 + w),
// hand to the sink, drop. Projections that share an input (q/k/v, gate/up) may be fused: their output rows
// concatenated into one weight, exact because 4-bit blocks run along the input dim. The sink either keeps the
// bytes for inline initializers (small models) or appends them to the external data file, so converting a 7B
// checkpoint holds one tensor (or one fused group) in memory at a time, not the model.
import { BYTES_PER_ELEMENT, ExternalDataFile, type ExternalTensorRef, type OnnxDtype, type OnnxModel } from '../../formats/onnx.js';
import { CancelledError, InvalidFileError } from '../../errors.js';
import { FUSE_GROUPS, archSpec, archTargets, fusableGroups, modulePath, type ArchSpec } from './arch.js';
import { projectionFeatures, type ModelConfig } from './config.js';
import { LM_HEAD, fusedModule, rope, weightName, type LoraTarget } from './naming.js';
import { INT4_BLOCK_SIZE, quantizeInt4, type Int4Weight } from './quantize.js';
import { ropeCaches } from './rope.js';

export type WeightDtype = 'fp32' | 'int4';

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

/** `w` ([rows, cols]) transposed into columns `column`.. of `out` ([cols, width]). */
function transposeInto(out: Float32Array, width: number, column: number, w: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * width + column + r] = w[r * cols + c]!;
}

/** `parts` one after another into `out` (sized to hold them all). */
function concat<T extends Uint8Array | Float32Array>(out: T, parts: readonly T[]): T {
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
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

/** The norm modules of layer `l`, prefixed (qk norms last: they are [head_dim], the others [hidden]). */
export function layerNorms(arch: ArchSpec, l: number): { hidden: string[]; head: string[] } {
  const n = arch.names;
  const p = arch.names.layer(l);
  const hidden = [n.inputNorm, n.postAttentionNorm, n.preFeedforwardNorm, n.postFeedforwardNorm].filter((x): x is string => !!x);
  const head = arch.qkNorm ? [n.qNorm!, n.kNorm!] : [];
  return { hidden: hidden.map((x) => `${p}.${x}`), head: head.map((x) => `${p}.${x}`) };
}

/** The name a canonical tensor name has in the files (GPT-2 checkpoints may lack the `transformer.` prefix). */
function storedName(arch: ArchSpec, source: TensorSource, name: string): string {
  if (source.has(name)) return name;
  return arch.aliases?.(name).find((a) => source.has(a)) ?? name;
}

/**
 * The checkpoint's tensors this config needs (canonical names), checked for presence and shape before anything is
 * converted, so a wrong or truncated checkpoint fails at once with the tensor's name.
 */
function expectedShapes(config: ModelConfig, tied: boolean): Map<string, number[]> {
  const arch = archSpec(config.architecture);
  const { hiddenSize: d, headDim, vocabSize } = config;
  const shapes = new Map<string, number[]>();
  const norm = (module: string, size: number) => {
    shapes.set(`${module}.weight`, [size]);
    if (arch.norm === 'layernorm') shapes.set(`${module}.bias`, [size]);
  };
  shapes.set(`${arch.names.embed}.weight`, [vocabSize, d]);
  if (arch.names.positionTable) shapes.set(`${arch.names.positionTable}.weight`, [config.maxPositionEmbeddings, d]);
  for (let l = 0; l < config.numLayers; l++) {
    const { hidden, head } = layerNorms(arch, l);
    for (const n of hidden) norm(n, d);
    for (const n of head) norm(n, headDim);
    for (const t of archTargets(arch)) {
      const { inFeatures, outFeatures } = projectionFeatures(config, t);
      shapes.set(`${modulePath(arch, l, t)}.weight`, arch.conv1d ? [inFeatures, outFeatures] : [outFeatures, inFeatures]);
    }
  }
  norm(arch.names.finalNorm, d);
  if (!tied) shapes.set(`${LM_HEAD}.weight`, [vocabSize, d]);
  return shapes;
}

/** Whether the output head reuses the embedding table: stated (or implied) by the config, or no lm_head.weight. */
export function isTied(config: ModelConfig, source: TensorSource): boolean {
  return config.tieWordEmbeddings || !source.has(`${LM_HEAD}.weight`);
}

export function checkTensors(config: ModelConfig, source: TensorSource, file: string): void {
  const arch = archSpec(config.architecture);
  for (const [name, shape] of expectedShapes(config, isTied(config, source))) {
    const stored = storedName(arch, source, name);
    if (!source.has(stored)) throw new InvalidFileError(file, `tensor ${name} is missing: is this a complete ${config.architecture} checkpoint?`);
    const info = source.info(stored);
    if (info.shape.join(',') !== shape.join(',')) {
      throw new InvalidFileError(file, `tensor ${name} has shape [${info.shape.join(', ')}], config.json implies [${shape.join(', ')}]`);
    }
  }
}

/** Output bytes of the converted weights, to decide between inline and external data before converting. */
export function estimateBytes(config: ModelConfig, dtype: WeightDtype, source: TensorSource, maxPositions: number, blockSize = INT4_BLOCK_SIZE): number {
  let total = (config.localRopeTheta === null ? 2 : 4) * maxPositions * (config.headDim / 2) * 4;
  const tied = isTied(config, source);
  for (const shape of expectedShapes(config, tied).values()) {
    const n = shape.reduce((a, b) => a * b, 1);
    total += shape.length === 2 && dtype === 'int4' ? n / 2 + (n / blockSize) * 4 : n * 4;
  }
  return total;
}

/**
 * Converts every tensor the graph needs into `sink`, in a fixed order. Names follow `weightName` over the canonical
 * module paths of arch.ts; `graph.ts` reads them back from `sink.refs`.
 */
export async function convertWeights(
  config: ModelConfig,
  source: TensorSource,
  sink: WeightSink,
  options: {
    dtype: WeightDtype;
    maxPositions: number;
    /** write q/k/v and gate/up as one fused weight each where the checkpoint stores them apart */
    fuse?: boolean;
    /** int4 block size along the input dim (default INT4_BLOCK_SIZE) */
    blockSize?: number;
    onProgress?: (p: ConvertProgress) => void;
    signal?: AbortSignal;
  },
): Promise<void> {
  const { dtype } = options;
  const blockSize = options.blockSize ?? INT4_BLOCK_SIZE;
  const arch = archSpec(config.architecture);
  const tied = isTied(config, source);
  const d = config.hiddenSize;
  const embed = arch.names.embed;
  const tasks: Task[] = [];
  const read = async (name: string): Promise<Float32Array> => source.readFloat32(storedName(arch, source, name));
  const has = (name: string) => source.has(storedName(arch, source, name));
  const add = (name: string, onnxDtype: OnnxDtype, dims: number[], data: ArrayBufferView): Promise<void> => {
    if (data.byteLength !== dims.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[onnxDtype]) throw new Error(`size mismatch converting ${name}`);
    return sink.add(name, onnxDtype, dims, data);
  };
  const addQuantized = async (module: string, q: Int4Weight, scalesDims?: number[]) => {
    await add(weightName.qweight(module), 'uint8', [q.n, q.blocksPerRow, blockSize / 2], q.qweight);
    await add(weightName.scales(module), 'float32', scalesDims ?? [q.n * q.blocksPerRow], q.scales);
    return q;
  };
  const addInt4 = (module: string, w: Float32Array, n: number, k: number, scalesDims?: number[]) =>
    addQuantized(module, quantizeInt4(w, n, k, blockSize), scalesDims);
  const int4Embedding = dtype === 'int4' && d % blockSize === 0;

  tasks.push({
    name: `${embed}.weight`,
    run: async () => {
      const w = await read(`${embed}.weight`);
      if (int4Embedding) {
        // GatherBlockQuantized wants scales of the data's rank
        const q = await addInt4(embed, w, config.vocabSize, d, [config.vocabSize, Math.ceil(d / blockSize), 1]);
        // MatMulNBits cannot read [V, blocks, 1] scales: the tied head gets its own flat copy (1/8 of the table)
        if (tied) await add(weightName.scales(LM_HEAD), 'float32', [config.vocabSize * q.blocksPerRow], q.scales);
      } else {
        await add(weightName.plain(embed), 'float32', [config.vocabSize, d], w);
      }
      // fp32 tied head: Gemm(transB=1) reads the embedding table as it is, no copy
      if (tied && dtype === 'int4' && !int4Embedding) await addInt4(LM_HEAD, w, config.vocabSize, d);
    },
  });
  if (arch.names.positionTable) {
    const table = `${arch.names.positionTable}.weight`;
    tasks.push({ name: table, run: async () => add(weightName.plain(arch.names.positionTable!), 'float32', [config.maxPositionEmbeddings, d], await read(table)) });
  }

  const linear = (module: string, target: LoraTarget): Task => ({
    name: `${module}.weight`,
    run: async () => {
      const { inFeatures: k, outFeatures: n } = projectionFeatures(config, target);
      const w = await read(`${module}.weight`);
      // Conv1D stores [in, out], which is what MatMul reads; MatMulNBits wants [out, in]
      if (dtype === 'int4') await addInt4(module, arch.conv1d ? transpose(w, k, n) : w, n, k);
      else await add(weightName.transposed(module), 'float32', [k, n], arch.conv1d ? w : transpose(w, n, k));
      if (has(`${module}.bias`)) {
        checkBias(module, n);
        await add(weightName.bias(module), 'float32', [n], await read(`${module}.bias`));
      }
    },
  });
  const checkBias = (module: string, n: number) => {
    const bias = source.info(storedName(arch, source, `${module}.bias`));
    if (bias.shape.join(',') !== String(n)) {
      throw new InvalidFileError('checkpoint', `tensor ${module}.bias has shape [${bias.shape.join(', ')}], expected [${n}]`);
    }
  };
  // The parts' weights as [out, in] rows, one part at a time, so only one part is ever held in fp32 beside the
  // result: int4 quantizes each part as it is read (the row blocks are the same as the fused tensor's), fp32 writes
  // each part's transpose into its columns of the fused [in, out] weight.
  const fused = (l: number, parts: readonly LoraTarget[], module: string): Task => ({
    name: `${module}.weight`,
    run: async () => {
      const k = projectionFeatures(config, parts[0]!).inFeatures;
      const outs = parts.map((t) => projectionFeatures(config, t).outFeatures);
      const n = outs.reduce((a, b) => a + b, 0);
      const quantized: Int4Weight[] = [];
      const transposed = dtype === 'int4' ? null : new Float32Array(k * n);
      let column = 0;
      for (const [i, t] of parts.entries()) {
        const w = await read(`${modulePath(arch, l, t)}.weight`);
        const r = arch.conv1d ? transpose(w, k, outs[i]!) : w;
        if (transposed) transposeInto(transposed, n, column, r, outs[i]!, k);
        else quantized.push(quantizeInt4(r, outs[i]!, k, blockSize));
        column += outs[i]!;
      }
      if (transposed) {
        await add(weightName.transposed(module), 'float32', [k, n], transposed);
      } else {
        const qweight = concat(new Uint8Array(n * quantized[0]!.qweight.length / outs[0]!), quantized.map((q) => q.qweight));
        const scales = concat(new Float32Array(n * quantized[0]!.blocksPerRow), quantized.map((q) => q.scales));
        await addQuantized(module, { n, k, blockSize, blocksPerRow: quantized[0]!.blocksPerRow, qweight, scales });
      }
      // one bias for the fused output, zeros for a part without one
      const biased = parts.map((t) => has(`${modulePath(arch, l, t)}.bias`));
      if (biased.some(Boolean)) {
        const bias = new Float32Array(n);
        let at = 0;
        for (const [i, t] of parts.entries()) {
          const part = modulePath(arch, l, t);
          if (biased[i]) {
            checkBias(part, outs[i]!);
            bias.set(await read(`${part}.bias`), at);
          }
          at += outs[i]!;
        }
        await add(weightName.bias(module), 'float32', [n], bias);
      }
    },
  });
  const norm = (module: string, size: number): Task => ({
    name: `${module}.weight`,
    run: async () => {
      const w = await read(`${module}.weight`);
      // Gemma's RMSNorm multiplies by (1 + w), computed in float32 as transformers does
      await add(weightName.plain(module), 'float32', [size], arch.norm === 'rms_one_plus' ? w.map((v) => Math.fround(1 + v)) : w);
      if (arch.norm === 'layernorm') await add(weightName.bias(module), 'float32', [size], await read(`${module}.bias`));
    },
  });

  for (let l = 0; l < config.numLayers; l++) {
    const { hidden, head } = layerNorms(arch, l);
    for (const n of hidden) tasks.push(norm(n, d));
    for (const n of head) tasks.push(norm(n, config.headDim));
    const groups = options.fuse ? fusableGroups(arch) : [];
    const fusedParts = new Set<LoraTarget>(groups.flatMap((g) => FUSE_GROUPS[g]));
    for (const g of groups) tasks.push(fused(l, FUSE_GROUPS[g], fusedModule(arch.names.layer(l), g)));
    for (const t of archTargets(arch)) if (!fusedParts.has(t)) tasks.push(linear(modulePath(arch, l, t), t));
  }
  tasks.push(norm(arch.names.finalNorm, d));
  if (!tied) {
    tasks.push({
      name: `${LM_HEAD}.weight`,
      run: async () => {
        const w = await read(`${LM_HEAD}.weight`);
        if (dtype === 'int4') await addInt4(LM_HEAD, w, config.vocabSize, d);
        else await add(weightName.plain(LM_HEAD), 'float32', [config.vocabSize, d], w);
      },
    });
  }
  if (arch.positions === 'rope') {
    tasks.push({
      name: 'rope caches',
      run: async () => {
        const caches: [boolean, number, ModelConfig['ropeScaling']][] = [[false, config.ropeTheta, config.ropeScaling]];
        if (config.localRopeTheta !== null) caches.push([true, config.localRopeTheta, null]);
        for (const [local, ropeTheta, ropeScaling] of caches) {
          const { cos, sin } = ropeCaches({ headDim: config.headDim, ropeTheta, ropeScaling }, options.maxPositions);
          await add(rope.cos(local), 'float32', [options.maxPositions, config.headDim / 2], cos);
          await add(rope.sin(local), 'float32', [options.maxPositions, config.headDim / 2], sin);
        }
      },
    });
  }

  for (let i = 0; i < tasks.length; i++) {
    if (options.signal?.aborted) throw new CancelledError('model build cancelled');
    const task = tasks[i]!;
    options.onProgress?.({ done: i, total: tasks.length, tensor: task.name });
    await task.run();
  }
  options.onProgress?.({ done: tasks.length, total: tasks.length, tensor: '' });
}
