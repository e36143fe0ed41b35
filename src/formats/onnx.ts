// A small typed writer of ONNX models over `onnx-proto` (protobufjs static code of the ONNX 1.10 schema).
// Generic: nodes with attributes, initializers (inline raw data or in an external data file), graph inputs and
// outputs with symbolic dims, value infos, opset imports and metadata. No model knowledge lives here.
//
// Large weights go to an external data file through `ExternalDataFile`, which appends one tensor at a time so a
// caller can stream a checkpoint through it without holding the weights in memory; the .onnx itself then only
// holds the graph and the (location, offset, length) of each tensor.
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type AttributeProto = onnxProto.onnx.IAttributeProto;

/** ONNX element types, named as onnxruntime-node names them. */
export type OnnxDtype =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool';

const DATA_TYPE: Record<OnnxDtype, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
  bfloat16: 16,
};

export const BYTES_PER_ELEMENT: Record<OnnxDtype, number> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  float64: 8,
  uint32: 4,
  uint64: 8,
  bfloat16: 2,
};

/** A dimension: a fixed size, or a symbolic name such as 'batch' (same name = same size across the graph). */
export type Dim = number | string;

/** A float attribute even when the value is integral (`epsilon: float(1)` must not become an INT attribute). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export class FloatsAttr {
  constructor(readonly values: readonly number[]) {}
}
export const float = (value: number): FloatAttr => new FloatAttr(value);
export const floats = (values: readonly number[]): FloatsAttr => new FloatsAttr(values);

/**
 * Attribute values: an integral number is INT and any other number FLOAT (use `float()` to force FLOAT), string,
 * number[] is INTS (use `floats()` for FLOATS), string[] is STRINGS.
 */
export type AttrValue = number | string | readonly number[] | readonly string[] | FloatAttr | FloatsAttr;

export interface NodeOptions {
  /** operator domain: '' (ai.onnx, the default) or e.g. 'com.microsoft' */
  domain?: string;
  /** node name; defaults to `<op>:<first output>` */
  name?: string;
}

function attribute(name: string, value: AttrValue): AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (value instanceof FloatAttr) return { name, type: T.FLOAT, f: value.value };
  if (value instanceof FloatsAttr) return { name, type: T.FLOATS, floats: [...value.values] };
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: Buffer.from(value, 'utf8') };
  if (value.every((v): v is number => typeof v === 'number')) {
    if (!value.every((v) => Number.isInteger(v))) throw new TypeError(`attribute ${name}: use floats() for a list of floats`);
    return { name, type: T.INTS, ints: [...value] };
  }
  if (value.every((v): v is string => typeof v === 'string')) {
    return { name, type: T.STRINGS, strings: value.map((v) => Buffer.from(v, 'utf8')) };
  }
  throw new TypeError(`attribute ${name}: a list must hold only numbers or only strings`);
}

function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function checkDims(name: string, dims: readonly number[]): void {
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new TypeError(`tensor ${name}: bad dimension ${d} in [${dims.join(', ')}]`);
  }
}

function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function valueInfo(name: string, dtype: OnnxDtype, dims: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[dtype],
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

/** A tensor stored in an external data file, as written by `ExternalDataFile.append`. */
export interface ExternalTensorRef {
  name: string;
  dtype: OnnxDtype;
  dims: number[];
  /** file name relative to the .onnx file */
  location: string;
  offset: number;
  length: number;
}

export interface OnnxModelOptions {
  /** opset per domain, e.g. `{ '': 21, 'com.microsoft': 1 }` */
  opsets: Record<string, number>;
  graphName?: string;
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
}

/**
 * Builds one ONNX model in memory. Nodes must be added in topological order (each input defined before use);
 * `encode()` checks that and the uniqueness of every value name, so a wiring mistake fails here with the name of
 * the value instead of deep inside ONNX Runtime.
 */
export class OnnxModel {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly valueInfos: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly metadata: onnxProto.onnx.IStringStringEntryProto[] = [];
  /** every defined value name: graph inputs, initializers, node outputs */
  private readonly defined = new Set<string>();
  private inlineBytes = 0;

  constructor(readonly options: OnnxModelOptions) {}

  private define(name: string, what: string): void {
    if (!name) throw new TypeError(`${what}: empty value name`);
    if (this.defined.has(name)) throw new TypeError(`${what}: value name "${name}" is already defined`);
    this.defined.add(name);
  }

  has(name: string): boolean {
    return this.defined.has(name);
  }

  input(name: string, dtype: OnnxDtype, dims: readonly Dim[]): string {
    this.define(name, 'graph input');
    this.inputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  /** Declares a graph output; the value must be produced by a node or be an input/initializer. */
  output(name: string, dtype: OnnxDtype, dims: readonly Dim[]): string {
    this.outputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  /** Type and shape of an intermediate value (optional; helps tools and shape inference). */
  valueInfo(name: string, dtype: OnnxDtype, dims: readonly Dim[]): void {
    this.valueInfos.push(valueInfo(name, dtype, dims));
  }

  /**
   * Appends a node. An empty string in `inputs` is an omitted optional input; in `outputs`, an unused optional
   * output. Returns the first output's name.
   */
  node(op: string, inputs: readonly string[], outputs: readonly string[], attrs: Record<string, AttrValue> = {}, options: NodeOptions = {}): string {
    const label = `node ${options.name ?? `${op}:${outputs[0] ?? ''}`}`;
    for (const name of inputs) {
      if (name !== '' && !this.defined.has(name)) throw new TypeError(`${label}: input "${name}" is not defined yet`);
    }
    if (outputs.length === 0) throw new TypeError(`${label}: a node needs at least one output`);
    for (const name of outputs) if (name !== '') this.define(name, label);
    this.nodes.push({
      opType: op,
      domain: options.domain ?? '',
      name: options.name ?? `${op}:${outputs[0]}`,
      input: [...inputs],
      output: [...outputs],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs[0]!;
  }

  /**
   * An initializer whose bytes are stored inside the .onnx (little-endian raw data). Named like a graph input, it
   * is that input's default value (ONNX allows it; note onnxruntime-node then hides the input from `inputNames`).
   */
  initializer(name: string, dtype: OnnxDtype, dims: readonly number[], data: ArrayBufferView): string {
    checkDims(name, dims);
    const expected = elementCount(dims) * BYTES_PER_ELEMENT[dtype];
    if (data.byteLength !== expected) {
      throw new TypeError(`initializer ${name}: ${data.byteLength} bytes given, [${dims.join(', ')}] ${dtype} needs ${expected}`);
    }
    if (!this.inputs.some((i) => i.name === name)) this.define(name, 'initializer');
    this.initializers.push({ name, dataType: DATA_TYPE[dtype], dims: [...dims], rawData: bytesOf(data) });
    this.inlineBytes += expected;
    return name;
  }

  /** An initializer whose bytes live in an external data file (see `ExternalDataFile`). */
  externalInitializer(ref: ExternalTensorRef): string {
    checkDims(ref.name, ref.dims);
    this.define(ref.name, 'initializer');
    this.initializers.push({
      name: ref.name,
      dataType: DATA_TYPE[ref.dtype],
      dims: [...ref.dims],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: ref.location },
        { key: 'offset', value: String(ref.offset) },
        { key: 'length', value: String(ref.length) },
      ],
    });
    return ref.name;
  }

  metadataProp(key: string, value: string): void {
    this.metadata.push({ key, value });
  }

  /** Bytes of initializer data held inline so far (protobuf caps a model at 2 GiB). */
  get inlineDataBytes(): number {
    return this.inlineBytes;
  }

  encode(): Uint8Array {
    for (const out of this.outputs) {
      if (!this.defined.has(out.name!)) throw new TypeError(`graph output "${out.name}" is not produced by any node`);
    }
    // protobuf's hard limit; onnxruntime refuses bigger models anyway
    if (this.inlineBytes > 2 ** 31 - 2 ** 24) {
      throw new RangeError(`model holds ${this.inlineBytes} bytes of inline weights: store them in an external data file`);
    }
    const { opsets, graphName = 'graph', irVersion = 10, producerName = 'loraforge', producerVersion, docString } = this.options;
    const model = onnx.ModelProto.create({
      irVersion,
      producerName,
      producerVersion: producerVersion ?? '',
      docString: docString ?? '',
      opsetImport: Object.entries(opsets).map(([domain, version]) => ({ domain, version })),
      metadataProps: this.metadata,
      graph: {
        name: graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
        valueInfo: this.valueInfos,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

export interface ExternalDataOptions {
  /**
   * Tensors of at least this many bytes start at a multiple of `alignment`, so ONNX Runtime can memory-map them
   * (the same rule as onnx's `convert_model_to_external_data(align_offset=True)`).
   */
  alignThreshold?: number;
  alignment?: number;
}

/**
 * Appends tensors to one external data file, one at a time, and hands back the reference to put in the model.
 * The file name recorded in each reference is the base name, so the file must sit next to the .onnx.
 */
export class ExternalDataFile {
  private offset = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly alignThreshold: number,
    private readonly alignment: number,
  ) {}

  static async create(filePath: string, options: ExternalDataOptions = {}): Promise<ExternalDataFile> {
    const handle = await open(filePath, 'w');
    return new ExternalDataFile(filePath, handle, options.alignThreshold ?? 1024 * 1024, options.alignment ?? 64 * 1024);
  }

  get bytesWritten(): number {
    return this.offset;
  }

  async append(name: string, dtype: OnnxDtype, dims: readonly number[], data: ArrayBufferView): Promise<ExternalTensorRef> {
    if (this.closed) throw new Error(`external data file ${this.path} is closed`);
    checkDims(name, dims);
    const length = elementCount(dims) * BYTES_PER_ELEMENT[dtype];
    if (data.byteLength !== length) {
      throw new TypeError(`tensor ${name}: ${data.byteLength} bytes given, [${dims.join(', ')}] ${dtype} needs ${length}`);
    }
    if (length >= this.alignThreshold && this.offset % this.alignment !== 0) {
      this.offset += this.alignment - (this.offset % this.alignment);
    }
    const offset = this.offset;
    const bytes = bytesOf(data);
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, offset + done);
      done += bytesWritten;
    }
    this.offset += length;
    return { name, dtype, dims: [...dims], location: path.basename(this.path), offset, length };
  }

  /** Flushes to disk and closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.handle.sync();
    } finally {
      await this.handle.close();
    }
  }
}
