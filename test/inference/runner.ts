// A minimal driver of the generate graph for tests: right-padded batched prefill, cached decode steps with a
// JS-owned cache that scatters `kv_new` rows, a LoRA slot pool whose rows' factors are fed per run. The real engine
// (inference/engine) does the same with a scheduler; this one exists so the builder's graph is tested on its own.
import ort from '../../src/util/onnxruntime.js';
import type { LoraPool } from '../../src/inference/engine/lora-pool.js';
import type { ReferenceLora } from './reference.js';

export interface RunnerShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  lora: { layer: number; target: string; module: string; inFeatures: number; outFeatures: number; a: string; b: string }[];
}

/** Slot pool feeds: slot 0 zeros, slot i+1 = adapters[i], A transposed to [in, r], B to [r, out] with scaling. */
export function loraPool(shape: RunnerShape, adapters: ReferenceLora[], rank: number): Record<string, ort.Tensor> {
  const slots = adapters.length + 1;
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of shape.lora) {
    const { inFeatures: n, outFeatures: o } = spec;
    const A = new Float32Array(slots * n * rank);
    const B = new Float32Array(slots * rank * o);
    adapters.forEach((adapter, i) => {
      const mod = adapter.get(spec.module);
      if (!mod) return;
      const s = i + 1;
      for (let r = 0; r < mod.rank; r++) {
        for (let k = 0; k < n; k++) A[s * n * rank + k * rank + r] = mod.A[r * n + k]!;
        for (let j = 0; j < o; j++) B[s * rank * o + r * o + j] = mod.scaling * mod.B[j * mod.rank + r]!;
      }
    });
    feeds[spec.a] = new ort.Tensor('float32', A, [slots, n, rank]);
    feeds[spec.b] = new ort.Tensor('float32', B, [slots, rank, o]);
  }
  return feeds;
}

/** The engine's LoRA pool as slot-pool tensors, [slots, in, r] per input (what loraPool builds). */
export function poolTensors(pool: LoraPool): Record<string, ort.Tensor> {
  const slots = Array.from({ length: pool.slots }, (_, s) => s);
  return Object.fromEntries(
    pool.sites.flatMap((site, i) => {
      const A = slots.map((s) => pool.slotFactors(i, s).A);
      const B = slots.map((s) => pool.slotFactors(i, s).B);
      const concat = (parts: Float32Array[]) => Float32Array.from(parts.flatMap((p) => Array.from(p)));
      return [
        [site.inputA, new ort.Tensor('float32', concat(A), [pool.slots, site.inFeatures, pool.rank])],
        [site.inputB, new ort.Tensor('float32', concat(B), [pool.slots, pool.rank, site.outFeatures])],
      ];
    }),
  );
}

/**
 * The LoRA inputs of rows on `slots`, picked from a slot pool in plain JS: [rows, in, r] each, or with `shared` the
 * first row's slot once, [1, in, r], which the graph broadcasts (what the engine feeds when every row shares a slot).
 */
export function rowFactors(pool: Record<string, ort.Tensor>, slots: readonly number[], shared = false): Record<string, ort.Tensor> {
  const picked = shared ? slots.slice(0, 1) : slots;
  return Object.fromEntries(
    Object.entries(pool).map(([name, t]) => {
      const [, x, y] = t.dims as [number, number, number];
      const rows = new Float32Array(picked.length * x * y);
      picked.forEach((slot, r) => rows.set((t.data as Float32Array).subarray(slot * x * y, (slot + 1) * x * y), r * x * y));
      return [name, new ort.Tensor('float32', rows, [picked.length, x, y])];
    }),
  );
}

export class GraphRunner {
  private readonly keys: Float32Array[];
  private readonly values: Float32Array[];
  private lengths: number[] = [];
  private slots: number[] = [];

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly shape: RunnerShape,
    private readonly pool: Record<string, ort.Tensor>,
    private readonly batch: number,
    private readonly capacity: number,
    /** feed the first row's factors once for every row (all rows on one slot), as the engine does */
    private readonly shared = false,
  ) {
    const size = batch * shape.numKvHeads * capacity * shape.headDim;
    this.keys = Array.from({ length: shape.numLayers }, () => new Float32Array(size));
    this.values = Array.from({ length: shape.numLayers }, () => new Float32Array(size));
  }

  private async run(tokens: number[][], positions: number[][], newTotals: number[], logitRows: number[]): Promise<ort.InferenceSession.OnnxValueMapType> {
    const { numLayers, numKvHeads, headDim } = this.shape;
    const b = tokens.length;
    const s = tokens[0]!.length;
    const feeds: Record<string, ort.Tensor> = rowFactors(this.pool, this.slots, this.shared);
    feeds.input_ids = new ort.Tensor('int64', BigInt64Array.from(tokens.flat().map(BigInt)), [b, s]);
    feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from(positions.flat().map(BigInt)), [b, s]);
    feeds.seqlens_k = new ort.Tensor('int32', Int32Array.from(newTotals.map((t) => t - 1)), [b]);
    feeds.total_seq_len = new ort.Tensor('int32', Int32Array.from([Math.max(...newTotals)]), []);
    feeds.logits_index = new ort.Tensor('int64', BigInt64Array.from(logitRows.map(BigInt)), [b]);
    const dims = [b, numKvHeads, this.capacity, headDim];
    const rowSize = numKvHeads * this.capacity * headDim;
    for (let l = 0; l < numLayers; l++) {
      feeds[`past_key_values.${l}.key`] = new ort.Tensor('float32', this.keys[l]!.subarray(0, b * rowSize), dims);
      feeds[`past_key_values.${l}.value`] = new ort.Tensor('float32', this.values[l]!.subarray(0, b * rowSize), dims);
    }
    return this.session.run(feeds);
  }

  private scatter(out: ort.InferenceSession.OnnxValueMapType, seq: number, starts: number[], counts: number[]): void {
    const { numLayers, numKvHeads: kvh, headDim: hd } = this.shape;
    for (let l = 0; l < numLayers; l++) {
      const k = out[`kv_new.${l}.key`]!.data as Float32Array;
      const v = out[`kv_new.${l}.value`]!.data as Float32Array;
      for (let b = 0; b < counts.length; b++) {
        for (let t = 0; t < counts[b]!; t++) {
          for (let h = 0; h < kvh; h++) {
            const src = (b * seq + t) * kvh * hd + h * hd;
            const dst = ((b * kvh + h) * this.capacity + starts[b]! + t) * hd;
            this.keys[l]!.set(k.subarray(src, src + hd), dst);
            this.values[l]!.set(v.subarray(src, src + hd), dst);
          }
        }
      }
    }
  }

  private split(logits: ort.Tensor): Float32Array[] {
    const data = logits.data as Float32Array;
    const V = this.shape.vocabSize;
    return Array.from({ length: data.length / V }, (_, i) => data.slice(i * V, (i + 1) * V));
  }

  /** Fresh prompts, one per row (right-padded), each on its adapter slot; returns each row's last-token logits. */
  async prefill(prompts: number[][], slots: number[]): Promise<Float32Array[]> {
    if (prompts.length > this.batch) throw new Error('too many rows');
    this.slots = slots;
    this.lengths = prompts.map((p) => p.length);
    const s = Math.max(...this.lengths);
    const tokens = prompts.map((p) => [...p, ...new Array<number>(s - p.length).fill(0)]);
    const positions = prompts.map((p) => Array.from({ length: s }, (_, i) => Math.min(i, p.length - 1)));
    const out = await this.run(tokens, positions, this.lengths, prompts.map((p, b) => b * s + p.length - 1));
    this.scatter(out, s, prompts.map(() => 0), this.lengths);
    return this.split(out.logits!);
  }

  /** One more prompt chunk for a single row that already has a cache (chunked prefill). */
  async extend(tokens: number[]): Promise<Float32Array> {
    if (this.lengths.length !== 1) throw new Error('chunked prefill is single-row');
    const start = this.lengths[0]!;
    const out = await this.run([tokens], [tokens.map((_, i) => start + i)], [start + tokens.length], [tokens.length - 1]);
    this.scatter(out, tokens.length, [start], [tokens.length]);
    this.lengths[0] = start + tokens.length;
    return this.split(out.logits!)[0]!;
  }

  /** One decode step: one token per row. */
  async decode(tokens: number[]): Promise<Float32Array[]> {
    const starts = [...this.lengths];
    const out = await this.run(tokens.map((t) => [t]), starts.map((p) => [p]), starts.map((p) => p + 1), tokens.map((_, b) => b));
    this.scatter(out, 1, starts, tokens.map(() => 1));
    this.lengths = starts.map((p) => p + 1);
    return this.split(out.logits!);
  }
}
