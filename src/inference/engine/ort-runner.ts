// The ONNX Runtime session of a built model and the feeds of one run. Inputs are zero-copy views of the JS-owned
// KV cache and LoRA pool (a batch on several adapters gets its rows' factors copied once, while it lasts); only the
// outputs we read are fetched, because every fetched output is copied.
import os from 'node:os';
import ort from '../../util/onnxruntime.js';
import type { RunInput, RunOutput, Runner } from './core.js';
import { requiredOutputs, type GraphSpec } from './graph-spec.js';
import type { KvCache } from './kv-cache.js';
import { RowFeeds, type LoraPool } from './lora-pool.js';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface SessionSettings {
  /** intra-op threads; 0 = the machine's available parallelism */
  threads: number;
  executionProvider: ExecutionProvider;
  /**
   * let ORT's threads spin between the kernels of a run instead of sleeping and being woken for each of them; they
   * stop spinning as soon as the run returns (session.force_spinning_stop), so an idle engine leaves the cores free
   */
  spinning: boolean;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  provider: ExecutionProvider;
  threads: number;
  /** set when CUDA was asked for but could not be used */
  fallbackReason: string | null;
}

export function resolveThreads(threads: number): number {
  return threads > 0 ? threads : Math.max(1, os.availableParallelism());
}

/** `extra` adds session options (benchmarks turn on profiling with it). */
export async function openSession(modelPath: string, settings: SessionSettings, extra: ort.InferenceSession.SessionOptions = {}): Promise<OpenedSession> {
  const threads = resolveThreads(settings.threads);
  const options = (providers: ort.InferenceSession.ExecutionProviderConfig[]): ort.InferenceSession.SessionOptions => ({
    executionProviders: providers,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: settings.spinning ? '1' : '0' }, force_spinning_stop: '1' } },
    ...extra,
  });
  if (settings.executionProvider === 'cuda') {
    try {
      const session = await ort.InferenceSession.create(modelPath, options(['cuda', 'cpu']));
      return { session, provider: 'cuda', threads, fallbackReason: null };
    } catch (err) {
      // onnxruntime-node throws instead of falling back when the CUDA libraries are missing
      const session = await ort.InferenceSession.create(modelPath, options(['cpu']));
      return { session, provider: 'cpu', threads, fallbackReason: (err as Error).message };
    }
  }
  const session = await ort.InferenceSession.create(modelPath, options(['cpu']));
  return { session, provider: 'cpu', threads, fallbackReason: null };
}

/** A runner's LoRA feeds (RowFeeds) as tensors, wrapped once per array and shape. */
export class LoraFeedCache {
  private rows: RowFeeds | null = null;
  private version = -1;
  private readonly wrapped = new Map<string, Record<string, ort.Tensor>>();

  feeds(pool: LoraPool, slots: readonly number[]): Record<string, ort.Tensor> {
    if (this.rows?.pool !== pool) this.rows = new RowFeeds(pool);
    // a changed pool may have new arrays: wrappers of the old ones would keep them alive
    if (pool.version !== this.version) this.wrapped.clear();
    this.version = pool.version;
    const { key, build } = this.rows.feeds(slots);
    let tensors = this.wrapped.get(key);
    if (!tensors) {
      // a few keys are live at once (the decoding batch's rows, slots being prefilled)
      if (this.wrapped.size >= 16) this.wrapped.clear();
      tensors = Object.fromEntries(build().map((f) => [f.name, new ort.Tensor('float32', f.data, f.dims)]));
      this.wrapped.set(key, tensors);
    }
    return tensors;
  }
}

export class OrtRunner implements Runner {
  private readonly fetches: string[];
  private readonly lora = new LoraFeedCache();

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly spec: GraphSpec,
    /** inputs beyond the serving contract that the graph declares, fed empty (e.g. scoring targets) */
    private readonly extraFeeds: Record<string, ort.Tensor> = {},
  ) {
    this.fetches = requiredOutputs(spec);
  }

  async run(input: RunInput, kv: KvCache, pool: LoraPool): Promise<RunOutput> {
    const { spec } = this;
    const { batch, seq } = input;
    const names = spec.inputs;
    const feeds: Record<string, ort.Tensor> = {
      ...this.extraFeeds,
      ...this.lora.feeds(pool, input.slots),
      [names.inputIds]: new ort.Tensor('int64', input.inputIds, [batch, seq]),
      [names.positionIds]: new ort.Tensor('int64', input.positionIds, [batch, seq]),
      [names.seqlensK]: new ort.Tensor('int32', input.seqlensK, [batch]),
      [names.totalSeqLen]: new ort.Tensor('int32', Int32Array.of(input.totalSeqLen), []),
      [names.logitsIndex]: new ort.Tensor('int64', input.logitsIndex, [batch]),
    };
    const { kvHeads, headDim } = spec;
    const cap = input.pastStart === null ? 0 : kv.capacity;
    const empty = new Float32Array(0);
    for (let l = 0; l < spec.layers; l++) {
      const key = input.pastStart === null ? empty : kv.past(l, 'key', input.pastStart, batch);
      const value = input.pastStart === null ? empty : kv.past(l, 'value', input.pastStart, batch);
      feeds[names.pastKey[l]!] = new ort.Tensor('float32', key, [batch, kvHeads, cap, headDim]);
      feeds[names.pastValue[l]!] = new ort.Tensor('float32', value, [batch, kvHeads, cap, headDim]);
    }
    const out = await this.session.run(feeds, this.fetches);
    const data = (name: string) => out[name]!.data as Float32Array;
    return {
      logits: data(spec.outputs.logits),
      newKeys: spec.outputs.newKey.map(data),
      newValues: spec.outputs.newValue.map(data),
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
