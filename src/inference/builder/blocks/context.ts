// What every block of the decoder graph shares: the model being written, the architecture's switches, the
// converted weights, constant helpers, and the projections every block uses (base weight, bias, the rows' LoRA
// factors), alone or as a group fused at build time (one matmul, split, each part's LoRA on its slice).
import { OnnxModel, type Dim, type OnnxDtype } from '../../../formats/onnx.js';
import { FUSE_GROUPS, archSpec, fusableGroups, modulePath, type ArchSpec, type FuseGroup } from '../arch.js';
import { projectionFeatures, type ModelConfig } from '../config.js';
import { fusedModule, io, weightName, type LoraTarget } from '../naming.js';
import type { WeightDtype, WeightSink } from '../weights.js';

export type HeadKind = 'generate' | 'score';

export interface IoSpec {
  name: string;
  dtype: OnnxDtype;
  /** numbers are fixed sizes; strings are symbolic dims, equal names meaning equal sizes */
  shape: Dim[];
}

export interface GraphSpec {
  config: ModelConfig;
  dtype: WeightDtype;
  targets: readonly LoraTarget[];
  /** MatMulNBits accuracy_level: 0 = fp32 activations, 4 = int8 activations (fastest on CPU) */
  accuracyLevel: number;
  /** int4 block size along the input dim */
  blockSize: number;
  /** q/k/v and gate/up were converted as one fused weight each where the checkpoint stores them apart */
  fuse?: boolean;
  head: HeadKind;
  /** written into the model's metadata */
  metadata?: Record<string, string>;
}

export const MS = { domain: 'com.microsoft' };

export class GraphContext {
  readonly m: OnnxModel;
  readonly arch: ArchSpec;
  readonly config: ModelConfig;
  readonly inputs: IoSpec[] = [];
  readonly outputs: IoSpec[] = [];

  constructor(
    readonly spec: GraphSpec,
    readonly weights: WeightSink,
  ) {
    this.config = spec.config;
    this.arch = archSpec(spec.config.architecture);
    this.m = new OnnxModel({
      opsets: { '': 21, 'com.microsoft': 1 },
      graphName: `loraforge_${spec.config.architecture}_${spec.head}`,
      producerName: 'loraforge',
    });
    for (const [k, v] of Object.entries(spec.metadata ?? {})) this.m.metadataProp(k, v);
    weights.declareIn(this.m);
  }

  input(name: string, dtype: OnnxDtype, shape: Dim[]): string {
    this.inputs.push({ name, dtype, shape });
    return this.m.input(name, dtype, shape);
  }

  output(name: string, dtype: OnnxDtype, shape: Dim[]): void {
    this.outputs.push({ name, dtype, shape });
    this.m.output(name, dtype, shape);
  }

  has(name: string): boolean {
    return this.weights.refs.has(name);
  }

  /** A converted weight by initializer name; a name the converter did not write is a builder bug. */
  weight(name: string): string {
    if (!this.has(name)) throw new Error(`builder: weight ${name} was not converted`);
    return name;
  }

  /** An int64 constant, [n] (or a scalar with `scalar`), written once per name. */
  int64(name: string, values: number[], scalar = false): string {
    if (this.m.has(name)) return name;
    return this.m.initializer(name, 'int64', scalar ? [] : [values.length], BigInt64Array.from(values.map(BigInt)));
  }

  /** A float32 scalar constant, written once per name. */
  f32(name: string, value: number): string {
    if (this.m.has(name)) return name;
    return this.m.initializer(name, 'float32', [], Float32Array.of(value));
  }

  node(op: string, inputs: readonly string[], output: string, attrs: Parameters<OnnxModel['node']>[3] = {}, ms = false): string {
    return this.m.node(op, inputs, [output], attrs, ms ? MS : {});
  }

  /** x @ W (+ bias) for the weights of `module`, [.., k] → [.., n]. */
  private linear(module: string, k: number, n: number, src: string, p: string): string {
    const { m, spec } = this;
    const out =
      spec.dtype === 'int4'
        ? m.node(
            'MatMulNBits',
            [src, this.weight(weightName.qweight(module)), this.weight(weightName.scales(module))],
            [`${p}/base`],
            { K: k, N: n, bits: 4, block_size: spec.blockSize, accuracy_level: spec.accuracyLevel },
            MS,
          )
        : m.node('MatMul', [src, this.weight(weightName.transposed(module))], [`${p}/base`]);
    return this.has(weightName.bias(module)) ? m.node('Add', [out, weightName.bias(module)], [`${p}/biased`]) : out;
  }

  /** `base` plus the rows' adapter on `target`, when the graph takes one there. */
  private lora(l: number, target: LoraTarget, src: string, base: string): string {
    if (!this.spec.targets.includes(target)) return base;
    const { m } = this;
    const p = `/L${l}/${target}`;
    // Two batched MatMuls, [b,s,in]@[rows,in,r]@[rows,r,out], on factors fed per row (rows = b), or once for every
    // row (rows = 1, broadcast): no copy in the graph, the engine feeds each batch's factors. On a module the
    // checkpoint stores fused (qkv, gate_up) the delta lands on the fused output, before the split, as PEFT
    // applies it; on parts fused at build time, on each part's slice.
    m.node('MatMul', [src, io.loraA(l, target)], [`${p}/lora_xa`]);
    m.node('MatMul', [`${p}/lora_xa`, io.loraB(l, target)], [`${p}/lora_delta`]);
    return m.node('Add', [base, `${p}/lora_delta`], [`${p}/out`]);
  }

  /** One projection: base weight (+ bias) (+ the rows' adapter). */
  projection(l: number, target: LoraTarget, src: string): string {
    const { inFeatures: k, outFeatures: n } = projectionFeatures(this.config, target);
    return this.lora(l, target, src, this.linear(modulePath(this.arch, l, target), k, n, src, `/L${l}/${target}`));
  }

  /**
   * The parts of a group of projections on one input (q, k, v or gate, up), in order: one matmul over the weight
   * fused at build time, split, and each part's own adapter added to its slice, where the build fused them;
   * else one projection each.
   */
  projections(l: number, group: FuseGroup, src: string): string[] {
    const parts = FUSE_GROUPS[group];
    if (!this.spec.fuse || !fusableGroups(this.arch).includes(group)) return parts.map((t) => this.projection(l, t, src));
    const k = projectionFeatures(this.config, parts[0]).inFeatures;
    const sizes = parts.map((t) => projectionFeatures(this.config, t).outFeatures);
    const fused = this.linear(fusedModule(this.arch.names.layer(l), group), k, sizes.reduce((a, b) => a + b, 0), src, `/L${l}/${group}_fused`);
    const slices = this.split(fused, sizes, parts.map((t) => `/L${l}/${t}/base_slice`));
    return parts.map((t, i) => this.lora(l, t, src, slices[i]!));
  }

  /** Splits the last axis of `x` into parts of these sizes. */
  split(x: string, sizes: number[], names: string[]): string[] {
    this.m.node('Split', [x, this.int64(`/const/split_${sizes.join('_')}`, sizes)], names, { axis: -1 });
    return names;
  }
}
