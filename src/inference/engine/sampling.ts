// Token selection from one row of logits: penalties, logit bias, temperature, top-k, top-p, then one draw by
// inverse CDF from a caller-supplied uniform number (see rng.ts), or the argmax when temperature is 0.
//
// The draw is defined precisely so a plain reference can reproduce it: the kept set is the top-k and then the
// smallest top-p prefix of the tokens ordered by (probability desc, token id asc); the draw walks the kept set
// in token-id order. Sums are float64 in token-id order (kept-set cut: in the sorted order).
//
// Logprobs are the model's own (log-softmax of the raw logits, before penalties and temperature), as vLLM
// reports them by default.

export interface SamplingParams {
  /** 0 = greedy */
  temperature: number;
  /** 0 = off */
  topK: number;
  /** 1 = off */
  topP: number;
  /** 1 = off; HF/CTRL style over prompt and generated tokens */
  repetitionPenalty: number;
  /** OpenAI style, over generated tokens: logit -= count·frequency + (count > 0)·presence */
  frequencyPenalty: number;
  presencePenalty: number;
  /** token id → bias added to its logit (OpenAI `logit_bias`) */
  logitBias: ReadonlyMap<number, number> | null;
}

export const GREEDY: SamplingParams = {
  temperature: 0,
  topK: 0,
  topP: 1,
  repetitionPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
  logitBias: null,
};

/** What the penalties need to know about a row: the prompt and the tokens generated so far. */
export class TokenHistory {
  /** prompt and generated tokens (repetition penalty) */
  readonly seen = new Set<number>();
  /** generated tokens and their counts (frequency and presence penalties) */
  readonly counts = new Map<number, number>();

  constructor(prompt: ArrayLike<number>) {
    for (let i = 0; i < prompt.length; i++) this.seen.add(prompt[i]!);
  }

  add(token: number): void {
    this.seen.add(token);
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
  }
}

export interface TokenLogprob {
  token: number;
  logprob: number;
}

/** Applies penalties and logit bias in place (temperature excluded). */
export function applyPenalties(logits: Float32Array, params: SamplingParams, history: TokenHistory): void {
  const rp = params.repetitionPenalty;
  if (rp !== 1) {
    for (const t of history.seen) {
      const l = logits[t]!;
      logits[t] = l < 0 ? l * rp : l / rp;
    }
  }
  if (params.frequencyPenalty !== 0 || params.presencePenalty !== 0) {
    for (const [t, count] of history.counts) logits[t] = logits[t]! - count * params.frequencyPenalty - params.presencePenalty;
  }
  if (params.logitBias) for (const [t, bias] of params.logitBias) if (t < logits.length) logits[t] = logits[t]! + bias;
}

/** Index of the largest value; the lowest index among equal values. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  let max = values[0]!;
  for (let i = 1; i < values.length; i++) {
    if (values[i]! > max) {
      max = values[i]!;
      best = i;
    }
  }
  return best;
}

/**
 * The k largest values' indices ordered by (value desc, index asc). A bounded min-heap: O(n log k), so asking
 * for the top 50 of 128k logits never sorts the vocabulary.
 */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  const n = values.length;
  k = Math.min(k, n);
  if (k <= 0) return [];
  // heap[0] is the worst kept entry: smallest value, and among equal values the largest index
  const heap: number[] = [];
  const worse = (a: number, b: number) => values[a]! < values[b]! || (values[a] === values[b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && worse(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let i = 0; i < n; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let c = heap.length - 1; c > 0; ) {
        const p = (c - 1) >> 1;
        if (!worse(heap[c]!, heap[p]!)) break;
        [heap[c], heap[p]] = [heap[p]!, heap[c]!];
        c = p;
      }
    } else if (worse(heap[0]!, i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => values[b]! - values[a]! || a - b);
}

/** log Σ exp(values), in float64. */
export function logSumExp(values: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i]! > max) max = values[i]!;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.exp(values[i]! - max);
  return max + Math.log(sum);
}

/** The `n` most likely tokens under the raw logits, with their log-probabilities. */
export function topLogprobs(logits: Float32Array, n: number, lse: number): TokenLogprob[] {
  return topIndices(logits, n).map((token) => ({ token, logprob: logits[token]! - lse }));
}

/**
 * Tokens kept by top-k then top-p, ordered by (probability desc, id asc); null when nothing is cut.
 * `probs` are unnormalised probabilities.
 */
export function keptTokens(probs: Float64Array, topK: number, topP: number): number[] | null {
  const n = probs.length;
  const kept: number[] | null = topK > 0 && topK < n ? topIndices(probs, topK) : null;
  if (topP >= 1) return kept;
  if (kept) {
    let mass = 0;
    for (const t of [...kept].sort((a, b) => a - b)) mass += probs[t]!;
    return cutTopP(kept, probs, topP * mass);
  }
  let total = 0;
  let pmax = 0;
  for (let i = 0; i < n; i++) {
    total += probs[i]!;
    if (probs[i]! > pmax) pmax = probs[i]!;
  }
  const target = topP * total;
  // Sort only the head of the distribution: lower a threshold until the tokens above it carry the target mass.
  // They are a prefix of the full order, so the cut is the same as after sorting everything.
  for (let threshold = pmax / 1024; ; threshold /= 32) {
    const head: number[] = [];
    let mass = 0;
    for (let i = 0; i < n; i++) {
      if (probs[i]! >= threshold) {
        head.push(i);
        mass += probs[i]!;
      }
    }
    if (mass >= target || threshold === 0 || head.length === n) {
      head.sort((a, b) => probs[b]! - probs[a]! || a - b);
      return cutTopP(head, probs, target);
    }
    if (threshold < Number.MIN_VALUE * 32) threshold = 0;
  }
}

function cutTopP(sorted: number[], probs: Float64Array, target: number): number[] {
  let cum = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (cum >= target) return sorted.slice(0, Math.max(1, i));
    cum += probs[sorted[i]!]!;
  }
  return sorted;
}

/** Inverse-CDF draw over `kept` (or every token) in token-id order; `u` in [0, 1). */
export function drawToken(probs: Float64Array, kept: number[] | null, u: number): number {
  const order = kept ? [...kept].sort((a, b) => a - b) : null;
  const count = order ? order.length : probs.length;
  const at = (i: number) => (order ? order[i]! : i);
  let mass = 0;
  for (let i = 0; i < count; i++) mass += probs[at(i)]!;
  const target = u * mass;
  let cum = 0;
  let last = at(0);
  for (let i = 0; i < count; i++) {
    const t = at(i);
    const p = probs[t]!;
    if (p === 0) continue;
    cum += p;
    last = t;
    if (cum > target) return t;
  }
  return last;
}

/** Reusable buffers for one row's sampling: avoids two vocabulary-sized allocations per token. */
export class SamplerScratch {
  private logits = new Float32Array(0);
  private probs = new Float64Array(0);

  buffers(vocab: number): { logits: Float32Array; probs: Float64Array } {
    if (this.logits.length !== vocab) {
      this.logits = new Float32Array(vocab);
      this.probs = new Float64Array(vocab);
    }
    return { logits: this.logits, probs: this.probs };
  }
}

/** Picks the next token of a row. `u` is this draw's uniform number (unused when greedy). */
export function sampleToken(
  raw: Float32Array,
  params: SamplingParams,
  history: TokenHistory,
  u: number,
  scratch = new SamplerScratch(),
): number {
  const { logits, probs } = scratch.buffers(raw.length);
  logits.set(raw);
  applyPenalties(logits, params, history);
  if (params.temperature === 0) return argmax(logits);
  const invT = 1 / params.temperature;
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  for (let i = 0; i < logits.length; i++) probs[i] = Math.exp((logits[i]! - max) * invT);
  return drawToken(probs, keptTokens(probs, params.topK, params.topP), u);
}
