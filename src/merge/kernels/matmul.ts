// Matrix products for the merge, run as tiny ONNX Runtime graphs: MLAS on the CPU is tens of times faster than a
// JS loop (bench/matmul.ts measures it), and the same graphs run on CUDA where that provider is installed.
// One graph per list of products (which inputs, transposes) and precision, with symbolic dimensions, built and
// cached on first use.
// ORT reads inputs in place but copies every output into a new JS buffer (~0.5-1 ms/MiB), so callers keep
// outputs small (Grams, projections) except where the dense ΔW itself is the result.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import ort from '../../util/onnxruntime.js';
import { OnnxModel } from '../../formats/onnx.js';

export interface Mat32 {
  data: Float32Array;
  rows: number;
  cols: number;
}

export interface GemmSpec {
  /** use aᵀ */
  transA?: boolean;
  /** use bᵀ */
  transB?: boolean;
}

export type Device = 'cpu' | 'cuda';

/** One product of `MatmulKernel.products`: op(inputs[a])·op(inputs[b]). */
export interface Product extends GemmSpec {
  a: number;
  b: number;
}

/** The subset of a pino logger the merge uses, so callers can pass theirs. */
export interface MergeLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface ComputeOptions {
  /** 'cuda' runs the products on the GPU when onnxruntime's CUDA provider is installed, else falls back to the CPU */
  device?: Device;
  /** intra-op threads (default: the number of physical cores) */
  threads?: number;
  /**
   * worker threads for the dense path (TIES, DARE, magnitude pruning in delta space), each with a one-thread
   * kernel; 0 or 1 runs it in-process (default: the physical cores for a merge of 2^26 ΔW entries or more)
   */
  workers?: number;
  logger?: MergeLogger;
}

/** Physical cores: hyperthreads share one core's FPUs, so more threads than cores only adds contention. */
export function physicalCores(): number {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const cores = new Set<string>();
    for (const block of info.split('\n\n')) {
      const phys = /physical id\s*:\s*(\d+)/.exec(block)?.[1] ?? '0';
      const core = /core id\s*:\s*(\d+)/.exec(block)?.[1];
      if (core !== undefined) cores.add(`${phys}:${core}`);
    }
    if (cores.size > 0) return cores.size;
  } catch {
    // not Linux: fall through
  }
  return os.availableParallelism();
}

export type Precision = 'f32' | 'f64';

export class MatmulKernel {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  private device: Device;
  private readonly threads: number;
  private readonly logger: MergeLogger | undefined;

  constructor(options: ComputeOptions = {}) {
    this.device = options.device ?? 'cpu';
    this.threads = options.threads ?? physicalCores();
    this.logger = options.logger;
  }

  /** The device products actually run on (after any fallback). */
  get activeDevice(): Device {
    return this.device;
  }

  /**
   * op(a)·op(b) in float32 (MLAS sgemm). With `into` (rows×cols values) ORT writes the product there, sparing
   * the allocation and copy of a fresh output: that is most of the cost of a product as wide as a dense ΔW tile.
   */
  async gemm(a: Mat32, b: Mat32, spec: GemmSpec = {}, into?: Float32Array): Promise<Mat32> {
    const { data, rows, cols } = await this.run(a, b, spec, 'f32', into);
    return { data: data as Float32Array, rows, cols };
  }

  /** op(a)·op(b) accumulated in float64 (inputs cast in the graph): for Grams whose small eigenvalues matter. */
  async gemm64(a: Mat32, b: Mat32, spec: GemmSpec = {}): Promise<{ data: Float64Array; rows: number; cols: number }> {
    const { data, rows, cols } = await this.run(a, b, spec, 'f64');
    return { data: data as Float64Array, rows, cols };
  }

  /**
   * Several products of the same inputs in one run, each input cast to float64 once (with 'f64'): a module's two
   * Grams, or the four products that measure its error, cost a third less than as separate runs.
   */
  async products(inputs: Mat32[], products: Product[], precision: Precision): Promise<Array<{ data: Float32Array | Float64Array; rows: number; cols: number }>> {
    const shapes = products.map((p) => productShape(inputs[p.a]!, inputs[p.b]!, p));
    // ORT's Gemm on an empty dimension is not worth a graph variant: products one by one (run gives zeros)
    if (shapes.some((d) => d.m === 0 || d.n === 0 || d.k === 0)) return Promise.all(products.map((p) => this.run(inputs[p.a]!, inputs[p.b]!, p, precision)));
    const session = await this.session(inputs.length, products, precision);
    const out = await session.run(Object.fromEntries(inputs.map((x, i) => [`X${i}`, new ort.Tensor('float32', x.data, [x.rows, x.cols])])));
    return products.map((_, i) => ({ data: out[`C${i}`]!.data as Float32Array | Float64Array, rows: shapes[i]!.m, cols: shapes[i]!.n }));
  }

  async release(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of sessions) await (await s).release();
  }

  private async run(a: Mat32, b: Mat32, spec: GemmSpec, precision: Precision, into?: Float32Array) {
    const { m, n, k } = productShape(a, b, spec);
    if (into && into.length !== m * n) throw new Error(`gemm: the output buffer holds ${into.length} values, not ${m}×${n}`);
    if (m === 0 || n === 0 || k === 0) {
      const data = into?.fill(0) ?? (precision === 'f32' ? new Float32Array(m * n) : new Float64Array(m * n));
      return { data, rows: m, cols: n };
    }
    const session = await this.session(2, [{ a: 0, b: 1, ...spec }], precision);
    const feeds = { X0: new ort.Tensor('float32', a.data, [a.rows, a.cols]), X1: new ort.Tensor('float32', b.data, [b.rows, b.cols]) };
    if (into) {
      await session.run(feeds, { C0: new ort.Tensor('float32', into, [m, n]) });
      return { data: into, rows: m, cols: n };
    }
    const c = (await session.run(feeds)).C0!;
    return { data: c.data as Float32Array | Float64Array, rows: m, cols: n };
  }

  /** The session of a products graph, built and cached on first use. */
  private session(count: number, products: Product[], precision: Precision): Promise<ort.InferenceSession> {
    const key = `${precision}:${count}:${products.map((p) => `${p.a}.${p.b}.${+!!p.transA}${+!!p.transB}`).join(',')}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = this.create(productsGraph(count, products, precision));
      this.sessions.set(key, s);
    }
    return s;
  }

  private async create(model: Uint8Array): Promise<ort.InferenceSession> {
    const base: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: this.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      // ORT's pool threads spin after each run by default; between our runs the JS thread does the elementwise
      // work and needs those cores
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    };
    if (this.device === 'cuda') {
      try {
        return await ort.InferenceSession.create(model, { ...base, executionProviders: ['cuda', 'cpu'] });
      } catch (err) {
        this.device = 'cpu';
        this.logger?.warn(`merge: CUDA execution provider unavailable (${(err as Error).message.split('\n')[0]}); running the matrix products on the CPU`);
      }
    }
    return ort.InferenceSession.create(model, { ...base, executionProviders: ['cpu'] });
  }
}

/** op(a)·op(b)'s m×n, and the inner dimension k; refuses inner dimensions that differ, and data of another size. */
function productShape(a: Mat32, b: Mat32, spec: GemmSpec): { m: number; n: number; k: number } {
  if (a.data.length !== a.rows * a.cols || b.data.length !== b.rows * b.cols) throw new Error('gemm: data length does not match shape');
  const [m, ka] = spec.transA ? [a.cols, a.rows] : [a.rows, a.cols];
  const [kb, n] = spec.transB ? [b.cols, b.rows] : [b.rows, b.cols];
  if (ka !== kb) throw new Error(`gemm: inner dimensions differ (${m}×${ka} · ${kb}×${n})`);
  return { m, n, k: ka };
}

/** One graph for the products of `count` float32 inputs X0…, outputs C0… (float64 with 'f64': inputs cast once). */
function productsGraph(count: number, products: Product[], precision: Precision): Uint8Array {
  const g = new OnnxModel({ opsets: { '': 17 }, graphName: 'merge-products' });
  const used = new Set(products.flatMap((p) => [p.a, p.b]));
  const x: string[] = [];
  for (let i = 0; i < count; i++) {
    const input = g.input(`X${i}`, 'float32', [`x${i}r`, `x${i}c`]);
    x.push(precision === 'f64' && used.has(i) ? g.node('Cast', [input], [`X${i}_64`], { to: 11 }) : input);
  }
  products.forEach((p, i) => {
    g.node('Gemm', [x[p.a]!, x[p.b]!], [`C${i}`], { transA: +!!p.transA, transB: +!!p.transB });
    g.output(`C${i}`, precision === 'f64' ? 'float64' : 'float32', [`c${i}r`, `c${i}c`]);
  });
  return g.encode();
}

/** Plain triple-loop reference of op(a)·op(b), accumulated in float64: what the kernel tests compare against. */
export function gemmReference(a: Mat32, b: Mat32, spec: GemmSpec = {}): { data: Float64Array; rows: number; cols: number } {
  const transA = spec.transA ?? false;
  const transB = spec.transB ?? false;
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const n = transB ? b.rows : b.cols;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a.data[p * a.cols + i]! : a.data[i * a.cols + p]!;
        const bv = transB ? b.data[j * b.cols + p]! : b.data[p * b.cols + j]!;
        s += av * bv;
      }
      out[i * n + j] = s;
    }
  }
  return { data: out, rows: m, cols: n };
}
