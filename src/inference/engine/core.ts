// The engine's core: one model runner, one KV cache, one LoRA pool, and the scheduler that drives them.
// It runs in the worker thread (worker.ts relays messages) and can also be driven in-process by tests.
//
// Scheduling follows GroupQueryAttention's constraint (several new tokens on top of a cache only at batch 1):
//  - decode: every decoding row, one token each (continuous batching: rows join and leave between steps);
//  - prefill: a batch of fresh prompts (no past, right-padded), or one chunk of one long prompt on top of its past;
//  never both in one run. Prefill and decode alternate while both have work, so a long prompt never stalls the
//  streams already running for more than one chunk.
// Rows are kept in KV order: decoding rows in 0..d-1 (one contiguous view for the decode batch), prefilling
// rows after them.
// Scoring jobs (teacher forcing on the score graph, for evals) take turns with generation: while both have work, a
// scoring pass runs between two generation steps, so streams stall for at most one pass.
import { CancelledError, LoraforgeError, UnsupportedError } from '../../errors.js';
import type { StreamDecoder } from '../tokenizer.js';
import type { GraphSpec } from './graph-spec.js';
import { KvCache } from './kv-cache.js';
import { LoraPool, type PreparedAdapter } from './lora-pool.js';
import { counterUniform } from './rng.js';
import { logSumExp, SamplerScratch, sampleToken, TokenHistory, topLogprobs } from './sampling.js';
import { SlotTable } from './slot-table.js';
import { StopMatcher } from './stop.js';
import { planScorePasses, type ScorePassLimits, type ScoreRowInput } from './scorer.js';
import type { AdapterRef, EngineStats, FinishEvent, FinishReason, GroupRequest, ScoreJobRequest, ScoreJobResult, TokenEvent } from './types.js';

export interface RunInput {
  batch: number;
  seq: number;
  inputIds: BigInt64Array;
  positionIds: BigInt64Array;
  seqlensK: Int32Array;
  totalSeqLen: number;
  logitsIndex: BigInt64Array;
  /** each row's adapter slot (0: none) */
  slots: number[];
  /** first cache row of the batch (rows start..start+batch-1 are the past), or null for fresh prompts (empty past) */
  pastStart: number | null;
}

export interface RunOutput {
  /** [batch, vocab] */
  logits: Float32Array;
  /** per layer, [batch, seq, kv_heads·head_dim] */
  newKeys: Float32Array[];
  newValues: Float32Array[];
}

export interface Runner {
  run(input: RunInput, kv: KvCache, pool: LoraPool): Promise<RunOutput>;
}

/** What the core needs from the tokenizer. */
export interface CoreTokenizer {
  eosTokenIds: readonly number[];
  streamDecoder(options: { context?: readonly number[] }): Pick<StreamDecoder, 'push' | 'flush'>;
}

export interface CoreSink {
  tokens(events: TokenEvent[]): void;
  finished(event: FinishEvent): void;
  failed(id: string, error: unknown): void;
  scored(result: ScoreJobResult): void;
}

/** Runs one scoring pass over rows whose adapters are in the pool (ScoreRunner over the score graph). */
export interface ScorePassRunner {
  runOnPool(rows: readonly ScoreRowInput[], pool: LoraPool): Promise<Array<{ logprobSum: number; tokens: number }>>;
}

/** The score graph's runner, opened on first use (a model that is never scored never loads it), and its limits. */
export interface ScoringSetup {
  open(): Promise<ScorePassRunner>;
  limits: ScorePassLimits;
}

export interface CoreOptions {
  maxBatch: number;
  /** longest piece of one prompt prefilled per run */
  prefillChunk: number;
  /** most tokens (rows × padded length) in one batched prefill */
  prefillTokenBudget: number;
  /** KV capacity grows in multiples of this */
  kvChunk: number;
}

export type AdapterLoader = (ref: AdapterRef) => Promise<PreparedAdapter>;

interface Group {
  req: GroupRequest;
  rows: Row[];
  /** rows not finished yet */
  open: number;
  /** pool slots this group holds pinned, by adapter key */
  slots: Map<string, number>;
  cancelled: boolean;
  admitted: boolean;
}

interface Row {
  group: Group;
  index: number;
  slot: number;
  prompt: number[];
  /** prompt tokens already in the cache */
  prefilled: number;
  /** the sampled token not yet in the cache (input of the next decode step) */
  next: number;
  generated: number;
  history: TokenHistory;
  decoder: Pick<StreamDecoder, 'push' | 'flush'>;
  stop: StopMatcher;
  scratch: SamplerScratch;
  finished: FinishReason | null;
  pendingText: string;
  /** routing pass only: Σ over the prompt's positions of each requested layer's value row, float64 */
  valueSums: Float64Array[] | null;
  /** routing pass only: log-softmax at the prompt's last position */
  lastLogprobs: Float32Array | null;
}

interface ScoreJob {
  req: ScoreJobRequest;
  results: Array<{ logprobSum: number; tokens: number } | null>;
  /** the runs, planned once when the job arrives (row indices), and the next one to run */
  plan: number[][];
  next: number;
  cancelled: boolean;
  passes: number;
  runSeconds: number;
}

type Plan =
  | { kind: 'decode'; rows: number }
  | { kind: 'prefill'; rows: number[] }
  | { kind: 'chunk'; row: number; length: number };

export class EngineCore {
  readonly kv: KvCache;
  readonly pool: LoraPool;
  readonly slotTable: SlotTable;
  private readonly waiting: Group[] = [];
  private readonly groups = new Map<string, Group>();
  /** rows by KV row index */
  private rows: Row[] = [];
  /** rows 0..decoding-1 are decoding */
  private decoding = 0;
  private lastWasDecode = false;
  /** adapters being read from disk, and read ones waiting for a free slot */
  private readonly loading = new Map<string, Promise<void>>();
  private readonly prepared = new Map<string, PreparedAdapter>();
  private wake: (() => void) | null = null;
  private stopped = false;
  private loopDone: Promise<void> | null = null;
  private readonly eos: Set<number>;
  private readonly stats = { steps: 0, prefillTokens: 0, decodeTokens: 0, scoreTokens: 0, runSeconds: 0, stepSeconds: 0 };
  private readonly scoreJobs: ScoreJob[] = [];
  private scorer: Promise<ScorePassRunner> | null = null;
  private lastWasScore = false;
  private readonly kvDim: number;

  constructor(
    readonly spec: GraphSpec,
    private readonly runner: Runner,
    private readonly tokenizer: CoreTokenizer,
    private readonly loadAdapter: AdapterLoader,
    private readonly sink: CoreSink,
    readonly options: CoreOptions,
    private readonly scoring: ScoringSetup | null = null,
  ) {
    this.kv = new KvCache(spec, { maxRows: options.maxBatch, chunk: options.kvChunk, maxPositions: spec.maxPositions });
    this.pool = new LoraPool(spec.sites, spec.slots, spec.maxRank);
    this.slotTable = new SlotTable(spec.slots);
    this.eos = new Set(tokenizer.eosTokenIds);
    this.kvDim = spec.kvHeads * spec.headDim;
  }

  start(): void {
    this.loopDone ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.poke();
    await this.loopDone;
    for (const group of [...this.groups.values()]) this.failGroup(group, new CancelledError('the engine is shutting down'));
    for (const job of this.scoreJobs.splice(0)) this.sink.failed(job.req.id, new CancelledError('the engine is shutting down'));
  }

  submit(req: GroupRequest): void {
    const distinct = new Set(req.rows.flatMap((r) => (r.adapter ? [r.adapter.key] : [])));
    if (req.rows.length > this.options.maxBatch) {
      this.sink.failed(req.id, new UnsupportedError(`${req.rows.length} rows in one request, but the engine batches at most ${this.options.maxBatch}`));
      return;
    }
    if (distinct.size > this.spec.slots - 1) {
      this.sink.failed(
        req.id,
        new UnsupportedError(`${distinct.size} different adapters in one request, but the pool has ${this.spec.slots - 1} slots: rebuild the model with more --slots`),
      );
      return;
    }
    const badLayer = req.features?.layers.find((l) => !Number.isInteger(l) || l < 0 || l >= this.spec.layers);
    if (badLayer !== undefined) {
      this.sink.failed(req.id, new UnsupportedError(`feature layer ${badLayer} does not exist: the model has layers 0..${this.spec.layers - 1}`));
      return;
    }
    const group: Group = { req, rows: [], open: req.rows.length, slots: new Map(), cancelled: false, admitted: false };
    this.groups.set(req.id, group);
    this.waiting.push(group);
    this.poke();
  }

  /** Queues a scoring job; its result goes to the sink's `scored` when every row has been scored. */
  submitScore(req: ScoreJobRequest): void {
    if (!this.scoring) {
      this.sink.failed(req.id, new UnsupportedError('this model has no score graph: rebuild it with loraforge build-model to score'));
      return;
    }
    if (req.rows.length === 0) {
      this.sink.scored({ id: req.id, rows: [], passes: 0, runSeconds: 0 });
      return;
    }
    const plan = planScorePasses(
      req.rows.map((r) => r.ids.length),
      this.scoring.limits,
      { keys: req.rows.map((r) => r.adapter?.key ?? null), maxAdapters: this.spec.slots - 1 },
    );
    this.scoreJobs.push({ req, results: req.rows.map(() => null), plan, next: 0, cancelled: false, passes: 0, runSeconds: 0 });
    // every adapter of the job starts loading now, in the background of whatever runs
    const refs = new Map(req.rows.flatMap((r) => (r.adapter ? [[r.adapter.key, r.adapter] as const] : [])));
    for (const ref of refs.values()) {
      if (!this.slotTable.loaded().includes(ref.key) && !this.prepared.has(ref.key)) this.startLoad(ref);
    }
    this.poke();
  }

  /** Stops a request or a scoring job; its rows are freed before the next step. */
  cancel(id: string): void {
    const job = this.scoreJobs.find((j) => j.req.id === id);
    if (job) job.cancelled = true;
    const group = this.groups.get(id);
    if (group) group.cancelled = true;
    this.poke();
  }

  snapshot(): EngineStats {
    return {
      activeRows: this.rows.length,
      waitingGroups: this.waiting.length,
      kvCapacity: this.kv.capacity,
      kvBytes: this.kv.bytes,
      poolRank: this.pool.rank,
      loadedAdapters: this.slotTable.loaded(),
      ...this.stats,
    };
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.reap();
      this.admit();
      if (this.scoreJobs.length > 0 && (this.rows.length === 0 || !this.lastWasScore)) {
        this.lastWasScore = await this.scoreStep();
        if (this.lastWasScore) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
      }
      this.lastWasScore = false;
      const plan = this.plan();
      if (!plan) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const involved = this.involvedGroups(plan);
      try {
        await this.execute(plan);
      } catch (err) {
        // a failed run (out of memory, a bad feed) fails the requests in it, not the engine
        for (const group of involved) this.failGroup(group, err);
      }
      // let messages (new requests, cancellations) in between steps
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private involvedGroups(plan: Plan): Set<Group> {
    const rows = plan.kind === 'decode' ? this.rows.slice(0, plan.rows) : plan.kind === 'chunk' ? [this.rows[plan.row]!] : plan.rows.map((r) => this.rows[r]!);
    return new Set(rows.map((r) => r.group));
  }

  // ---- admission -------------------------------------------------------------------------------------------

  private admit(): void {
    for (const group of this.waiting.filter((g) => g.cancelled)) {
      this.waiting.splice(this.waiting.indexOf(group), 1);
      this.finishGroupCancelled(group);
    }
    for (let i = 0; i < this.waiting.length; ) {
      const group = this.waiting[i]!;
      if (!this.adaptersReady(group)) {
        i++;
        continue;
      }
      if (this.rows.length + group.req.rows.length > this.options.maxBatch) break; // keep arrival order for rows
      this.waiting.splice(i, 1);
      this.place(group);
    }
    // adapters read for requests that were cancelled meanwhile (scoring jobs keep theirs)
    for (const key of this.prepared.keys()) {
      const needed =
        this.waiting.some((g) => g.req.rows.some((r) => r.adapter?.key === key)) ||
        this.scoreJobs.some((j) => j.req.rows.some((r) => r.adapter?.key === key));
      if (!needed) this.prepared.delete(key);
    }
  }

  /** Pins the group's adapters into slots, starting loads as needed; true when all are in the pool. */
  private adaptersReady(group: Group): boolean {
    let ready = true;
    for (const { adapter } of group.req.rows) {
      if (!adapter || group.slots.has(adapter.key)) continue;
      const slot = this.acquireSlot(adapter);
      if (slot === null) {
        ready = false;
        continue;
      }
      this.slotTable.pin(slot);
      group.slots.set(adapter.key, slot);
    }
    return ready;
  }

  /**
   * The slot holding `ref`, writing it into a free or least recently used unpinned slot when it has been read;
   * null while it is loading (a load is started) or while every slot is pinned. The caller pins what it gets.
   */
  private acquireSlot(ref: AdapterRef): number | null {
    let slot = this.slotTable.lookup(ref.key);
    if (slot !== null) return slot;
    const prepared = this.prepared.get(ref.key);
    if (!prepared) {
      this.startLoad(ref);
      return null;
    }
    slot = this.slotTable.victim();
    if (slot === null) return null; // every slot is in use by running rows: wait for one to finish
    if (this.slotTable.keyOf(slot) !== null) this.pool.clear(slot);
    this.pool.write(slot, prepared);
    this.slotTable.assign(slot, ref.key);
    this.prepared.delete(ref.key);
    return slot;
  }

  private startLoad(ref: AdapterRef): void {
    if (this.loading.has(ref.key)) return;
    const done = this.loadAdapter(ref).then(
      (prepared) => {
        this.prepared.set(ref.key, prepared);
      },
      (err: unknown) => {
        for (const group of this.waiting.filter((g) => g.req.rows.some((r) => r.adapter?.key === ref.key))) {
          this.waiting.splice(this.waiting.indexOf(group), 1);
          this.failGroup(group, err);
        }
        for (const job of this.scoreJobs.filter((j) => j.plan.slice(j.next).some((pass) => pass.some((i) => j.req.rows[i]!.adapter?.key === ref.key)))) {
          this.scoreJobs.splice(this.scoreJobs.indexOf(job), 1);
          this.sink.failed(job.req.id, err);
        }
      },
    );
    this.loading.set(
      ref.key,
      done.finally(() => {
        this.loading.delete(ref.key);
        this.poke();
      }),
    );
  }

  private place(group: Group): void {
    group.admitted = true;
    const { req } = group;
    req.rows.forEach((r, index) => {
      const row: Row = {
        group,
        index,
        slot: r.adapter ? group.slots.get(r.adapter.key)! : 0,
        prompt: r.promptIds,
        prefilled: 0,
        next: -1,
        generated: 0,
        history: new TokenHistory(r.promptIds),
        decoder: this.tokenizer.streamDecoder({ context: r.promptIds }),
        stop: new StopMatcher(req.stop),
        scratch: new SamplerScratch(),
        finished: null,
        pendingText: '',
        valueSums: req.features ? req.features.layers.map(() => new Float64Array(this.kvDim)) : null,
        lastLogprobs: null,
      };
      group.rows.push(row);
      this.kv.addRow();
      this.rows.push(row);
    });
  }

  // ---- scoring -------------------------------------------------------------------------------------------------

  /**
   * The next planned pass of the oldest scoring job, once every adapter it needs is in the pool (their slots are
   * pinned for the pass only). False when it cannot run yet: adapters still loading, or slots held by generation.
   */
  private async scoreStep(): Promise<boolean> {
    const job = this.scoreJobs[0]!;
    if (job.cancelled) {
      this.scoreJobs.shift();
      this.sink.failed(job.req.id, new CancelledError('the scoring job was cancelled'));
      return true;
    }
    const pass = job.plan[job.next]!;
    const pinned: number[] = [];
    const slotOf = new Map<string, number>();
    try {
      for (const i of pass) {
        const ref = job.req.rows[i]!.adapter;
        if (!ref || slotOf.has(ref.key)) continue;
        const slot = this.acquireSlot(ref);
        if (slot === null) return false;
        this.slotTable.pin(slot);
        pinned.push(slot);
        slotOf.set(ref.key, slot);
      }
      const rows: ScoreRowInput[] = pass.map((i) => {
        const row = job.req.rows[i]!;
        return { ids: row.ids, targetStart: row.targetStart, slot: row.adapter ? slotOf.get(row.adapter.key)! : 0 };
      });
      let runner: ScorePassRunner;
      try {
        runner = await (this.scorer ??= this.scoring!.open());
      } catch (err) {
        this.scorer = null; // the next job tries again
        throw err;
      }
      const t0 = performance.now();
      const results = await runner.runOnPool(rows, this.pool);
      job.runSeconds += (performance.now() - t0) / 1000;
      job.passes++;
      this.stats.scoreTokens += rows.reduce((n, r) => n + r.ids.length, 0);
      pass.forEach((i, k) => (job.results[i] = results[k]!));
      if (++job.next === job.plan.length) {
        this.scoreJobs.shift();
        this.sink.scored({ id: job.req.id, rows: job.results.map((r) => r!), passes: job.passes, runSeconds: job.runSeconds });
      }
    } catch (err) {
      // a failed pass (a bad row, out of memory) fails its job, not the engine
      if (this.scoreJobs[0] === job) this.scoreJobs.shift();
      this.sink.failed(job.req.id, err);
    } finally {
      for (const slot of pinned) this.slotTable.unpin(slot);
    }
    return true;
  }

  // ---- planning ------------------------------------------------------------------------------------------------

  private plan(): Plan | null {
    const prefilling = this.rows.length - this.decoding;
    if (prefilling > 0 && (this.decoding === 0 || this.lastWasDecode)) {
      this.lastWasDecode = false;
      return this.planPrefill();
    }
    if (this.decoding > 0) {
      this.lastWasDecode = true;
      return { kind: 'decode', rows: this.decoding };
    }
    return null;
  }

  private planPrefill(): Plan {
    const { prefillChunk, prefillTokenBudget } = this.options;
    const fresh: number[] = [];
    let longest = 0;
    for (let r = this.decoding; r < this.rows.length; r++) {
      const row = this.rows[r]!;
      if (row.prefilled > 0 || row.prompt.length > prefillChunk) continue;
      const len = Math.max(longest, row.prompt.length);
      if (fresh.length > 0 && (fresh.length + 1) * len > prefillTokenBudget) continue;
      fresh.push(r);
      longest = len;
    }
    if (fresh.length > 0) return { kind: 'prefill', rows: fresh };
    const row = this.decoding; // a long prompt: one chunk of the first one
    const r = this.rows[row]!;
    return { kind: 'chunk', row, length: Math.min(prefillChunk, r.prompt.length - r.prefilled) };
  }

  // ---- running -------------------------------------------------------------------------------------------------

  private async execute(plan: Plan): Promise<void> {
    const started = performance.now();
    if (plan.kind === 'decode') await this.decodeStep(plan.rows);
    else if (plan.kind === 'prefill') await this.prefillFresh(plan.rows);
    else await this.prefillChunk(plan.row, plan.length);
    this.stats.steps++;
    this.stats.stepSeconds += (performance.now() - started) / 1000;
    this.reap(); // finished rows leave now, so the next admission sees their room
  }

  private async decodeStep(batch: number): Promise<void> {
    let maxLen = 0;
    for (let r = 0; r < batch; r++) maxLen = Math.max(maxLen, this.kv.length(r));
    this.kv.reserve(maxLen + 1);
    const inputIds = new BigInt64Array(batch);
    const positionIds = new BigInt64Array(batch);
    const seqlensK = new Int32Array(batch);
    const logitsIndex = new BigInt64Array(batch);
    const slots: number[] = [];
    for (let r = 0; r < batch; r++) {
      const row = this.rows[r]!;
      const len = this.kv.length(r);
      inputIds[r] = BigInt(row.next);
      positionIds[r] = BigInt(len);
      seqlensK[r] = len;
      logitsIndex[r] = BigInt(r);
      slots.push(row.slot);
    }
    const out = await this.run(
      { batch, seq: 1, inputIds, positionIds, seqlensK, totalSeqLen: maxLen + 1, logitsIndex, slots, pastStart: 0 },
      this.kv,
      this.pool,
    );
    const rows = Array.from({ length: batch }, (_, r) => r);
    const starts = rows.map((r) => this.kv.length(r));
    const ones = rows.map(() => 1);
    for (let l = 0; l < this.spec.layers; l++) this.kv.scatter(l, out.newKeys[l]!, out.newValues[l]!, 1, rows, starts, ones);
    for (let r = 0; r < batch; r++) this.kv.setLength(r, starts[r]! + 1);
    this.stats.decodeTokens += batch;
    this.emit(rows, out.logits);
  }

  private async prefillFresh(rowIds: number[]): Promise<void> {
    const batch = rowIds.length;
    const seq = Math.max(...rowIds.map((r) => this.rows[r]!.prompt.length));
    this.kv.reserve(seq + 1);
    const inputIds = new BigInt64Array(batch * seq);
    const positionIds = new BigInt64Array(batch * seq);
    const seqlensK = new Int32Array(batch);
    const logitsIndex = new BigInt64Array(batch);
    const slots = rowIds.map((r) => this.rows[r]!.slot);
    rowIds.forEach((r, j) => {
      const row = this.rows[r]!;
      const len = row.prompt.length;
      for (let s = 0; s < seq; s++) {
        // right padding: pad positions repeat the last token and position; their outputs are never read
        inputIds[j * seq + s] = BigInt(row.prompt[Math.min(s, len - 1)]!);
        positionIds[j * seq + s] = BigInt(Math.min(s, len - 1));
      }
      seqlensK[j] = len - 1;
      logitsIndex[j] = BigInt(j * seq + len - 1);
    });
    const out = await this.run(
      { batch, seq, inputIds, positionIds, seqlensK, totalSeqLen: seq, logitsIndex, slots, pastStart: null },
      this.kv,
      this.pool,
    );
    const counts = rowIds.map((r) => this.rows[r]!.prompt.length);
    const starts = rowIds.map(() => 0);
    for (let l = 0; l < this.spec.layers; l++) this.kv.scatter(l, out.newKeys[l]!, out.newValues[l]!, seq, rowIds, starts, counts);
    rowIds.forEach((r, j) => this.addValues(this.rows[r]!, out.newValues, j * seq, counts[j]!));
    rowIds.forEach((r, j) => {
      this.kv.setLength(r, counts[j]!);
      this.rows[r]!.prefilled = counts[j]!;
    });
    this.stats.prefillTokens += counts.reduce((a, b) => a + b, 0);
    this.emit(rowIds, out.logits);
    this.promote(rowIds);
  }

  private async prefillChunk(r: number, length: number): Promise<void> {
    const row = this.rows[r]!;
    const past = row.prefilled;
    this.kv.reserve(past + length + 1);
    const inputIds = new BigInt64Array(length);
    const positionIds = new BigInt64Array(length);
    for (let s = 0; s < length; s++) {
      inputIds[s] = BigInt(row.prompt[past + s]!);
      positionIds[s] = BigInt(past + s);
    }
    const out = await this.run(
      {
        batch: 1,
        seq: length,
        inputIds,
        positionIds,
        seqlensK: Int32Array.of(past + length - 1),
        totalSeqLen: past + length,
        logitsIndex: BigInt64Array.of(BigInt(length - 1)),
        slots: [row.slot],
        pastStart: past > 0 ? r : null,
      },
      this.kv,
      this.pool,
    );
    for (let l = 0; l < this.spec.layers; l++) this.kv.scatter(l, out.newKeys[l]!, out.newValues[l]!, length, [r], [past], [length]);
    this.addValues(row, out.newValues, 0, length);
    row.prefilled = past + length;
    this.kv.setLength(r, row.prefilled);
    this.stats.prefillTokens += length;
    if (row.prefilled === row.prompt.length) {
      this.emit([r], out.logits);
      this.promote([r]);
    }
  }

  private async run(input: RunInput, kv: KvCache, pool: LoraPool): Promise<RunOutput> {
    const started = performance.now();
    try {
      return await this.runner.run(input, kv, pool);
    } finally {
      this.stats.runSeconds += (performance.now() - started) / 1000;
    }
  }

  /** Adds a routing row's value rows (positions first..first+count-1 of the run's output) to its per-layer sums. */
  private addValues(row: Row, newValues: Float32Array[], first: number, count: number): void {
    if (!row.valueSums) return;
    const d = this.kvDim;
    row.group.req.features!.layers.forEach((l, i) => {
      const values = newValues[l]!;
      const sum = row.valueSums![i]!;
      for (let p = first; p < first + count; p++) for (let k = 0; k < d; k++) sum[k]! += values[p * d + k]!;
    });
  }

  /** Moves rows whose prompt is now fully cached into the decoding block. */
  private promote(rowIds: number[]): void {
    // rows of one prefill were found in increasing order; swapping each into the block start keeps the others valid
    for (const r of [...rowIds].sort((a, b) => a - b)) this.swapRows(r, this.decoding++);
  }

  private swapRows(a: number, b: number): void {
    if (a === b) return;
    this.kv.swapRows(a, b);
    [this.rows[a], this.rows[b]] = [this.rows[b]!, this.rows[a]!];
  }

  // ---- sampling and emitting -----------------------------------------------------------------------------------

  /** Samples the next token of each row from its logits row and sends the tokens out. */
  private emit(rowIds: readonly number[], logits: Float32Array): void {
    const vocab = logits.length / rowIds.length;
    const events: TokenEvent[] = [];
    rowIds.forEach((r, j) => {
      const row = this.rows[r]!;
      if (row.finished || row.group.cancelled) return;
      const { req } = row.group;
      const raw = logits.subarray(j * vocab, (j + 1) * vocab);
      if (req.features?.logprobs && row.generated === 0) {
        const lse = logSumExp(raw);
        row.lastLogprobs = raw.map((v) => v - lse);
      }
      const u = req.sampling.temperature === 0 ? 0 : counterUniform(req.seed, req.rows[row.index]!.stream, row.generated);
      const token = sampleToken(raw, req.sampling, row.history, u, row.scratch);
      row.history.add(token);
      row.generated++;
      row.next = token;
      const event: TokenEvent = { id: req.id, index: row.index, token, text: '' };
      if (req.logprobs !== null) {
        const lse = logSumExp(raw);
        event.logprob = raw[token]! - lse;
        if (req.logprobs > 0) event.top = topLogprobs(raw, req.logprobs, lse);
      }
      if (this.eos.has(token) && !req.ignoreEos) {
        row.finished = 'stop';
      } else {
        const { text, stopped } = row.stop.push(row.decoder.push(token));
        event.text = text;
        if (stopped) row.finished = 'stop';
      }
      if (!row.finished && (row.generated >= req.maxTokens || row.prompt.length + row.generated >= this.spec.maxPositions)) {
        row.finished = 'length';
      }
      if (row.finished === 'length' || (row.finished === 'stop' && this.eos.has(token))) {
        row.pendingText = row.stop.push(row.decoder.flush()).text + row.stop.flush();
      }
      events.push(event);
    });
    if (events.length > 0) this.sink.tokens(events);
    for (const r of rowIds) {
      const row = this.rows[r]!;
      if (row.finished) this.sink.finished(this.finishEvent(row, row.finished));
    }
  }

  private finishEvent(row: Row, reason: FinishReason): FinishEvent {
    const event: FinishEvent = {
      id: row.group.req.id,
      index: row.index,
      reason,
      text: row.pendingText,
      promptTokens: row.prompt.length,
      completionTokens: row.generated,
    };
    if (row.valueSums && reason !== 'cancelled') event.features = rowFeatures(row);
    return event;
  }

  // ---- freeing rows ----------------------------------------------------------------------------------------------

  /** Frees the rows of finished and cancelled requests. */
  private reap(): void {
    let removed = false;
    for (let r = this.rows.length - 1; r >= 0; r--) {
      const row = this.rows[r]!;
      if (!row.finished && !row.group.cancelled) continue;
      if (!row.finished) {
        row.finished = 'cancelled';
        this.sink.finished(this.finishEvent(row, 'cancelled'));
      }
      this.removeRow(r);
      removed = true;
      const group = row.group;
      if (--group.open === 0) this.releaseGroup(group);
    }
    if (removed) this.kv.trim();
  }

  private removeRow(r: number): void {
    if (r < this.decoding) {
      // the last decoding row takes r's place; its old place is then the one removed (kept compact either way)
      const lastDecoding = --this.decoding;
      if (r !== lastDecoding) {
        this.kv.moveRow(lastDecoding, r);
        this.rows[r] = this.rows[lastDecoding]!;
      }
      r = lastDecoding;
    }
    const moved = this.kv.removeRow(r);
    if (moved !== null) this.rows[r] = this.rows[moved]!;
    this.rows.pop();
  }

  private releaseGroup(group: Group): void {
    for (const slot of group.slots.values()) this.slotTable.unpin(slot);
    group.slots.clear();
    this.groups.delete(group.req.id);
  }

  private finishGroupCancelled(group: Group): void {
    group.req.rows.forEach((r, index) =>
      this.sink.finished({ id: group.req.id, index, reason: 'cancelled', text: '', promptTokens: r.promptIds.length, completionTokens: 0 }),
    );
    this.releaseGroup(group);
  }

  /** Ends a request with an error: its rows leave the cache, its pins are released. */
  private failGroup(group: Group, err: unknown): void {
    if (!this.groups.has(group.req.id)) return;
    for (let r = this.rows.length - 1; r >= 0; r--) if (this.rows[r]!.group === group) this.removeRow(r);
    const w = this.waiting.indexOf(group);
    if (w !== -1) this.waiting.splice(w, 1);
    this.releaseGroup(group);
    this.sink.failed(group.req.id, err instanceof LoraforgeError || err instanceof Error ? err : new Error(String(err)));
  }
}

/** A routing row's features: each layer's mean value row over the prompt, then the last position's log-probs. */
function rowFeatures(row: Row): Float32Array {
  const sums = row.valueSums!;
  const d = sums[0]?.length ?? 0;
  const out = new Float32Array(sums.length * d + (row.lastLogprobs?.length ?? 0));
  sums.forEach((sum, i) => {
    for (let k = 0; k < d; k++) out[i * d + k] = sum[k]! / row.prompt.length;
  });
  if (row.lastLogprobs) out.set(row.lastLogprobs, sums.length * d);
  return out;
}
