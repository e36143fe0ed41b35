// The LoRA slot pool the graph's adapters come from: for every LoRA site (a layer's target projection) one A array
// [slots, in, rank] and one B array [slots, rank, out], with PEFT's scaling folded into B. A row of a batch is on
// one slot; slot 0 stays zero ("no adapter"). Each run is fed its rows' factors (`RowFeeds`).
//
// The fed rank is the largest rank among the loaded adapters (not the graph's max rank): the graph multiplies by
// the padding too, so padding rank-8 adapters to 64 would multiply that work by 8. When no row uses an adapter
// the graph is fed rank 0 and the LoRA matmuls cost nothing.
import type { LoraAdapter } from '../../formats/peft.js';
import { UnsupportedError } from '../../errors.js';

/** One LoRA input pair of the graph. */
export interface LoraSite {
  /** base-model module path, e.g. "model.layers.3.self_attn.q_proj" */
  module: string;
  inFeatures: number;
  outFeatures: number;
  /** graph input names */
  inputA: string;
  inputB: string;
}

export interface SiteFactors {
  /** [in, rank]: PEFT's lora_A transposed */
  A: Float32Array;
  /** [rank, out]: PEFT's lora_B transposed, times the scaling */
  B: Float32Array;
  rank: number;
}

/** An adapter laid out for the pool: factors by site index, null where the adapter leaves a site alone. */
export interface PreparedAdapter {
  rank: number;
  sites: (SiteFactors | null)[];
}

export interface PrepareLimits {
  /** the graph's max rank (`--max-rank` at build time) */
  maxRank: number;
  /** the LoRA targets the graph was built with, for the message when an adapter needs more */
  targets: readonly string[];
  /** the target a module path is in the served architecture (GPT-2's mlp.c_proj is `down`), for that message */
  targetOf?: (module: string) => string | undefined;
}

/** Checks an adapter against the graph's LoRA sites and lays its factors out for the pool. */
export function prepareAdapter(adapter: LoraAdapter, sites: readonly LoraSite[], limits: PrepareLimits, label: string): PreparedAdapter {
  const byModule = new Map(sites.map((s, i) => [s.module, i]));
  if (adapter.savedModules.size > 0) {
    throw new UnsupportedError(
      `adapter ${label} carries full weights for ${[...adapter.savedModules.keys()].join(', ')} (modules_to_save); ` +
        'only LoRA factors can be served from the shared base model: fold it into a checkpoint instead (loraforge fold)',
    );
  }
  const prepared: PreparedAdapter = { rank: 0, sites: sites.map(() => null) };
  for (const mod of adapter.modules.values()) {
    if (mod.kind !== 'linear') {
      throw new UnsupportedError(`adapter ${label}: LoRA on the embedding ${mod.name} cannot be served (only linear projections)`);
    }
    const index = byModule.get(mod.name);
    if (index === undefined) {
      const target = limits.targetOf?.(mod.name) ?? (mod.name.split('.').pop() ?? mod.name).replace(/_proj$/, '');
      if (limits.targets.includes(target)) {
        throw new UnsupportedError(`adapter ${label} has LoRA on ${mod.name}, which the served model does not have: it was trained for another base model`);
      }
      throw new UnsupportedError(
        `adapter ${label} has LoRA on ${mod.name}, which this model's graph has no LoRA input for ` +
          `(built with targets ${limits.targets.join(',')}): rebuild the model with --targets including ${target}, ` +
          'or check that the adapter was trained for this base model',
      );
    }
    const site = sites[index]!;
    if (mod.inFeatures !== site.inFeatures || mod.outFeatures !== site.outFeatures) {
      throw new UnsupportedError(
        `adapter ${label} was trained for another base model: ${mod.name} is ${mod.inFeatures}→${mod.outFeatures} in the adapter ` +
          `but ${site.inFeatures}→${site.outFeatures} in the served model; serve its base model, or use an adapter of this one`,
      );
    }
    if (mod.rank > limits.maxRank) {
      throw new UnsupportedError(
        `adapter ${label} has rank ${mod.rank} on ${mod.name}, above the served graph's max rank ${limits.maxRank}: ` +
          rebuildFor(mod.rank),
      );
    }
    prepared.sites[index] = transposeFactors(mod.A, mod.B, mod.rank, mod.inFeatures, mod.outFeatures, mod.scaling);
    prepared.rank = Math.max(prepared.rank, mod.rank);
  }
  return prepared;
}

/**
 * A router's blend of prepared adapters: Σ weight·ΔW_i exactly, as one adapter whose factors are the parts'
 * concatenated along the rank (A' side by side, B' stacked and scaled), so its rank per site is the sum of theirs.
 */
export function blendPrepared(parts: readonly PreparedAdapter[], weight: number, maxRank: number, label: string): PreparedAdapter {
  const sites = parts[0]!.sites.map((_, s) => {
    const here = parts.map((p) => p.sites[s]).filter((f): f is SiteFactors => f !== null && f !== undefined);
    if (here.length === 0) return null;
    const rank = here.reduce((sum, f) => sum + f.rank, 0);
    if (rank > maxRank) {
      throw new UnsupportedError(
        `the blend ${label} has rank ${rank}, above the served graph's max rank ${maxRank}: ${rebuildFor(rank)}, ` +
          'or give the router a fallback instead of a blend',
      );
    }
    const inF = here[0]!.A.length / here[0]!.rank;
    const outF = here[0]!.B.length / here[0]!.rank;
    const A = new Float32Array(inF * rank);
    const B = new Float32Array(rank * outF);
    let offset = 0;
    for (const f of here) {
      for (let k = 0; k < inF; k++) A.set(f.A.subarray(k * f.rank, (k + 1) * f.rank), k * rank + offset);
      for (let j = 0; j < f.rank * outF; j++) B[offset * outF + j] = f.B[j]! * weight;
      offset += f.rank;
    }
    return { A, B, rank };
  });
  return { rank: Math.max(0, ...sites.map((f) => f?.rank ?? 0)), sites };
}

/** What to do about an adapter (or a blend) of `rank` above the served graph's max rank. */
export function rebuildFor(rank: number): string {
  return `rebuild the model with --max-rank ${rank} or more (loraforge build-model <checkpoint> --max-rank ${2 ** Math.ceil(Math.log2(rank))})`;
}

/** PEFT's A [r, in] and B [out, r] → A' [in, r] and B' [r, out]·scaling. */
export function transposeFactors(A: Float32Array, B: Float32Array, rank: number, inF: number, outF: number, scaling: number): SiteFactors {
  const At = new Float32Array(inF * rank);
  for (let j = 0; j < rank; j++) for (let k = 0; k < inF; k++) At[k * rank + j] = A[j * inF + k]!;
  const Bt = new Float32Array(rank * outF);
  for (let n = 0; n < outF; n++) for (let j = 0; j < rank; j++) Bt[j * outF + n] = B[n * rank + j]! * scaling;
  return { A: At, B: Bt, rank };
}

export interface PoolFeed {
  name: string;
  data: Float32Array;
  dims: number[];
}

export class LoraPool {
  private As: Float32Array[];
  private Bs: Float32Array[];
  private readonly slotRanks: number[];
  private currentRank = 0;
  /** bumped whenever the pool's contents or layout change, so callers can cache tensors built over it */
  version = 0;

  constructor(
    readonly sites: readonly LoraSite[],
    readonly slots: number,
    readonly maxRank: number,
  ) {
    this.slotRanks = new Array<number>(slots).fill(0);
    this.As = sites.map(() => new Float32Array(0));
    this.Bs = sites.map(() => new Float32Array(0));
  }

  /** the rank fed to the graph while any row uses an adapter */
  get rank(): number {
    return this.currentRank;
  }

  get bytes(): number {
    let n = 0;
    for (let i = 0; i < this.sites.length; i++) n += this.As[i]!.byteLength + this.Bs[i]!.byteLength;
    return n;
  }

  /** Writes an adapter into `slot` (1..slots-1), growing the pool's rank when needed. */
  write(slot: number, adapter: PreparedAdapter): void {
    if (slot < 1 || slot >= this.slots) throw new RangeError(`no adapter slot ${slot}`);
    if (adapter.rank > this.maxRank) throw new RangeError(`rank ${adapter.rank} exceeds the pool's ${this.maxRank}`);
    this.slotRanks[slot] = adapter.rank;
    if (adapter.rank > this.currentRank) this.resize(adapter.rank);
    const R = this.currentRank;
    this.sites.forEach((site, i) => {
      const A = this.As[i]!;
      const B = this.Bs[i]!;
      const aBase = slot * site.inFeatures * R;
      const bBase = slot * R * site.outFeatures;
      A.fill(0, aBase, aBase + site.inFeatures * R);
      B.fill(0, bBase, bBase + R * site.outFeatures);
      const f = adapter.sites[i];
      if (!f) return;
      for (let k = 0; k < site.inFeatures; k++) A.set(f.A.subarray(k * f.rank, (k + 1) * f.rank), aBase + k * R);
      B.set(f.B, bBase); // rows 0..rank-1 of [R, out]; the rest stay zero
    });
    this.version++;
  }

  /** Empties a slot; the pool's rank shrinks when the largest adapter left. */
  clear(slot: number): void {
    this.slotRanks[slot] = 0;
    const needed = Math.max(0, ...this.slotRanks);
    if (needed < this.currentRank) this.resize(needed);
    else {
      const R = this.currentRank;
      this.sites.forEach((site, i) => {
        this.As[i]!.fill(0, slot * site.inFeatures * R, (slot + 1) * site.inFeatures * R);
        this.Bs[i]!.fill(0, slot * R * site.outFeatures, (slot + 1) * R * site.outFeatures);
      });
    }
    this.version++;
  }

  /** Site `site`'s A and B of one slot, at the pool's rank (views, nothing copied). */
  slotFactors(site: number, slot: number): { A: Float32Array; B: Float32Array } {
    const { inFeatures, outFeatures } = this.sites[site]!;
    const a = inFeatures * this.currentRank;
    const b = this.currentRank * outFeatures;
    return { A: this.As[site]!.subarray(slot * a, (slot + 1) * a), B: this.Bs[site]!.subarray(slot * b, (slot + 1) * b) };
  }

  /** Re-lays every slot at rank `next`, keeping the first min(old, next) rank columns (the rest are zero padding). */
  private resize(next: number): void {
    const prev = this.currentRank;
    const keep = Math.min(prev, next);
    this.sites.forEach((site, i) => {
      const oldA = this.As[i]!;
      const oldB = this.Bs[i]!;
      const A = new Float32Array(this.slots * site.inFeatures * next);
      const B = new Float32Array(this.slots * next * site.outFeatures);
      if (keep > 0) {
        for (let s = 0; s < this.slots; s++) {
          for (let k = 0; k < site.inFeatures; k++) {
            const from = (s * site.inFeatures + k) * prev;
            A.set(oldA.subarray(from, from + keep), (s * site.inFeatures + k) * next);
          }
          B.set(oldB.subarray(s * prev * site.outFeatures, (s * prev + keep) * site.outFeatures), s * next * site.outFeatures);
        }
      }
      this.As[i] = A;
      this.Bs[i] = B;
    });
    this.currentRank = next;
  }
}

/**
 * The LoRA inputs of runs whose rows are on `slots` (one per row), for one runner. When every row is on one adapter:
 * views of its slot, [1, in, R], which the graph broadcasts over the rows (nothing copied); on several: each row's
 * factors in [rows, in, R] buffers kept between runs and copied again only for rows whose slot changed, so steady
 * decoding, which repeats its batch's slots, copies nothing; on none: rank 0, and the LoRA math vanishes. `key`
 * names the arrays and shapes fed (not their contents): equal keys, equal arrays, so a caller that kept what `build`
 * gave for a key need not call it again (a decode step would otherwise make two views per site).
 */
export class RowFeeds {
  private version = -1;
  private rank = -1;
  private generation = 0;
  private capacity = 0;
  /** the slot each buffer row holds (none: stale) */
  private held: number[] = [];
  private A: Float32Array[] = [];
  private B: Float32Array[] = [];

  constructor(readonly pool: LoraPool) {}

  feeds(slots: readonly number[]): { key: string; build: () => PoolFeed[] } {
    const { pool } = this;
    const sites = pool.sites;
    const R = pool.rank;
    const feed = (site: LoraSite, rows: number, rank: number, A: Float32Array, B: Float32Array): PoolFeed[] => [
      { name: site.inputA, data: A, dims: [rows, site.inFeatures, rank] },
      { name: site.inputB, data: B, dims: [rows, rank, site.outFeatures] },
    ];
    if (slots.every((s) => s === 0) || R === 0) {
      return { key: 'none', build: () => sites.flatMap((site) => feed(site, 1, 0, new Float32Array(0), new Float32Array(0))) };
    }
    if (slots.every((s) => s === slots[0])) {
      const slot = slots[0]!;
      return {
        key: `slot:${pool.version}:${slot}`,
        build: () => sites.flatMap((site, i) => {
          const { A, B } = pool.slotFactors(i, slot);
          return feed(site, 1, R, A, B);
        }),
      };
    }
    if (pool.version !== this.version || R !== this.rank || slots.length > this.capacity) {
      if (R !== this.rank || slots.length > this.capacity) {
        this.capacity = Math.max(slots.length, this.capacity);
        this.A = sites.map((site) => new Float32Array(this.capacity * site.inFeatures * R));
        this.B = sites.map((site) => new Float32Array(this.capacity * R * site.outFeatures));
        this.generation++;
      }
      this.version = pool.version;
      this.rank = R;
      this.held = [];
    }
    slots.forEach((slot, r) => {
      if (this.held[r] === slot) return;
      sites.forEach((_, i) => {
        const { A, B } = pool.slotFactors(i, slot);
        this.A[i]!.set(A, r * A.length);
        this.B[i]!.set(B, r * B.length);
      });
      this.held[r] = slot;
    });
    const rows = slots.length;
    return {
      key: `rows:${this.generation}:${rows}`,
      build: () => sites.flatMap((site, i) => feed(site, rows, R, this.A[i]!.subarray(0, rows * site.inFeatures * R), this.B[i]!.subarray(0, rows * R * site.outFeatures))),
    };
  }
}
