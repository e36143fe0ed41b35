// Teacher-forced scoring on the builder's score graph (`score.onnx`): each row is a token sequence whose tail is
// the text being scored; one run returns log p(token t+1 | tokens ≤ t) at every position as [batch, seq] floats, so
// only those numbers are copied out of ONNX Runtime, never [batch, seq, vocab] logits.
//
// Rows of one run are right-padded to the longest; each row is fed its slot's LoRA factors, so the base model,
// adapters and merges are scored side by side in one pass. The caller plans the passes (planScorePasses) and feeds
// the engine's LoRA pool; this module only builds feeds and reduces the output.
import ort from '../../util/onnxruntime.js';
import { InvalidInputError } from '../../errors.js';
import path from 'node:path';
import { checkManifest, type ModelManifest } from '../builder/manifest.js';
import { io } from '../builder/naming.js';
import type { LoraPool } from './lora-pool.js';
import { LoraFeedCache, openSession, type SessionSettings } from './ort-runner.js';

export interface ScoreRowInput {
  /** the whole sequence: context, then the scored continuation */
  ids: readonly number[];
  /** index in `ids` of the first scored token (>= 1: the first token has no prediction) */
  targetStart: number;
  /** LoRA pool slot (0 = the base model) */
  slot: number;
}

export interface ScoreRowResult {
  /** Σ log p over the scored tokens, in nats (float64 accumulation) */
  logprobSum: number;
  /** scored tokens: ids.length − targetStart */
  tokens: number;
}

export interface ScorePassLimits {
  /** rows per run */
  maxBatch: number;
  /** rows × padded length per run: bounds the [rows·seq, vocab] logits the graph holds internally */
  maxTokens: number;
}

/** Padded tokens per run such that the graph's internal logits and log-softmax ([tokens, vocab] float32, twice) fit in `bytes`. */
export function tokensForLogitBudget(vocabSize: number, bytes: number): number {
  return Math.max(1, Math.floor(bytes / (vocabSize * 4 * 2)));
}

/**
 * Groups rows into runs: longest first (so rows of similar length share a run and padding stays small), each run
 * within the limits. A row longer than `maxTokens` runs alone. With `adapters` (a key per row, null = the base
 * model), a run holds rows of at most `maxAdapters` distinct adapters, and when the rows use more adapters than
 * that, they are planned in groups of `maxAdapters` adapters (first seen first) so each group loads once.
 * Deterministic: the same rows give the same runs, which is what makes scores repeat to the last bit (padding
 * changes the order of floating-point sums). Returns row indices per run.
 */
export function planScorePasses(
  lengths: readonly number[],
  limits: ScorePassLimits,
  adapters?: { keys: ReadonlyArray<string | null>; maxAdapters: number },
): number[][] {
  const all = lengths.map((_, i) => i);
  if (!adapters) return packByLength(all, lengths, limits, null, Infinity);
  const distinct = [...new Set(adapters.keys.filter((k): k is string => k !== null))];
  const groupOf = new Map(distinct.map((k, i) => [k, Math.floor(i / adapters.maxAdapters)]));
  const groups = Math.max(1, Math.ceil(distinct.length / adapters.maxAdapters));
  const passes: number[][] = [];
  for (let g = 0; g < groups; g++) {
    const rows = all.filter((i) => {
      const key = adapters.keys[i]!;
      return key === null ? g === 0 : groupOf.get(key) === g;
    });
    passes.push(...packByLength(rows, lengths, limits, adapters.keys, adapters.maxAdapters));
  }
  return passes;
}

function packByLength(rows: number[], lengths: readonly number[], limits: ScorePassLimits, keys: ReadonlyArray<string | null> | null, maxAdapters: number): number[][] {
  const order = [...rows].sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const passes: number[][] = [];
  let current: number[] = [];
  let width = 0;
  let used = new Set<string>();
  for (const i of order) {
    const w = Math.max(width, lengths[i]!);
    const key = keys?.[i] ?? null;
    const moreAdapters = key !== null && !used.has(key) && used.size + 1 > maxAdapters;
    if (current.length > 0 && (current.length + 1 > limits.maxBatch || (current.length + 1) * w > limits.maxTokens || moreAdapters)) {
      passes.push(current);
      current = [];
      width = 0;
      used = new Set();
    }
    current.push(i);
    width = Math.max(width, lengths[i]!);
    if (key !== null) used.add(key);
  }
  if (current.length > 0) passes.push(current);
  return passes;
}

export function checkScoreRow(row: ScoreRowInput, maxPositions: number): void {
  if (row.targetStart < 1 || row.targetStart >= row.ids.length) {
    throw new InvalidInputError(`a scored row needs at least one context token and one scored token (got ${row.targetStart} context tokens of ${row.ids.length})`);
  }
  if (row.ids.length > maxPositions) {
    throw new InvalidInputError(`a scored row has ${row.ids.length} tokens, more than the model's ${maxPositions} positions: shorten the prompt or the reference`);
  }
}

/** The feeds of one scoring run, and the reduction of its output. */
export class ScoreRunner {
  private readonly lora = new LoraFeedCache();

  private readonly names: {
    inputIds: string;
    positionIds: string;
    seqlensK: string;
    totalSeqLen: string;
    targetIds: string;
    pastKey: string[];
    pastValue: string[];
    output: string;
  };

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly manifest: ModelManifest,
  ) {
    const graph = manifest.graphs.score;
    if (!graph) throw new InvalidInputError('this model was built without a score graph: rebuild it with the score head');
    const { numLayers } = manifest.kvCache;
    const layerName = (template: string, l: number) => template.replace('{layer}', String(l));
    this.names = {
      inputIds: io.inputIds,
      positionIds: io.positionIds,
      seqlensK: io.seqlensK,
      totalSeqLen: io.totalSeqLen,
      targetIds: io.targetIds,
      pastKey: Array.from({ length: numLayers }, (_, l) => layerName(manifest.kvCache.pastKey, l)),
      pastValue: Array.from({ length: numLayers }, (_, l) => layerName(manifest.kvCache.pastValue, l)),
      output: graph.outputs[0]!.name,
    };
  }

  /** One forward pass over `rows` (planned by planScorePasses). `lora` are the pool's A/B feeds. */
  async run(rows: readonly ScoreRowInput[], lora: Record<string, ort.Tensor>): Promise<ScoreRowResult[]> {
    const b = rows.length;
    const s = Math.max(...rows.map((r) => r.ids.length));
    const inputIds = new BigInt64Array(b * s);
    const positionIds = new BigInt64Array(b * s);
    const targetIds = new BigInt64Array(b * s);
    const seqlensK = new Int32Array(b);
    rows.forEach((row, r) => {
      const { ids } = row;
      const n = ids.length;
      const at = r * s;
      for (let t = 0; t < s; t++) {
        // padding repeats the last position and predicts token 0: both are ignored below
        inputIds[at + t] = BigInt(t < n ? ids[t]! : 0);
        positionIds[at + t] = BigInt(Math.min(t, n - 1));
        if (t + 1 < n) targetIds[at + t] = BigInt(ids[t + 1]!);
      }
      seqlensK[r] = n - 1;
    });
    const n = this.names;
    const feeds: Record<string, ort.Tensor> = {
      ...lora,
      [n.inputIds]: new ort.Tensor('int64', inputIds, [b, s]),
      [n.positionIds]: new ort.Tensor('int64', positionIds, [b, s]),
      [n.targetIds]: new ort.Tensor('int64', targetIds, [b, s]),
      [n.seqlensK]: new ort.Tensor('int32', seqlensK, [b]),
      [n.totalSeqLen]: new ort.Tensor('int32', Int32Array.of(s), []),
    };
    const { numKvHeads, headDim } = this.manifest.kvCache;
    const empty = new ort.Tensor('float32', new Float32Array(0), [b, numKvHeads, 0, headDim]);
    for (let l = 0; l < n.pastKey.length; l++) {
      feeds[n.pastKey[l]!] = empty;
      feeds[n.pastValue[l]!] = empty;
    }
    const out = await this.session.run(feeds, [n.output]);
    const logprobs = out[n.output]!.data as Float32Array;
    return rows.map((row, r) => {
      // position t predicts token t+1: the scored tokens targetStart..len-1 are predicted at targetStart-1..len-2
      let sum = 0;
      for (let t = row.targetStart - 1; t < row.ids.length - 1; t++) sum += logprobs[r * s + t]!;
      return { logprobSum: sum, tokens: row.ids.length - row.targetStart };
    });
  }

  /** One pass with the engine's LoRA pool as the adapters (the rows' factors, see RowFeeds). */
  runOnPool(rows: readonly ScoreRowInput[], pool: LoraPool): Promise<ScoreRowResult[]> {
    return this.run(rows, this.lora.feeds(pool, rows.map((r) => r.slot)));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Opens the score graph of a model dir with the engine's session settings. */
export async function openScoreRunner(modelDir: string, manifest: ModelManifest, settings: SessionSettings): Promise<ScoreRunner> {
  const graph = manifest.graphs.score;
  if (!graph) throw new InvalidInputError('this model was built without a score graph: rebuild it with the score head');
  const { session } = await openSession(path.join(modelDir, graph.file), settings);
  checkManifest(session, manifest, 'score');
  return new ScoreRunner(session, manifest);
}
