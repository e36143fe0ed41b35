import { describe, expect, it } from 'vitest';
import { counterUniform } from '../../../src/inference/engine/rng.js';
import {
  GREEDY,
  TokenHistory,
  logSumExp,
  sampleToken,
  topIndices,
  topLogprobs,
  type SamplingParams,
} from '../../../src/inference/engine/sampling.js';

// A plain reference of the documented draw: full sort of the vocabulary, then the same rules, naively.
function referenceSample(raw: Float32Array, p: SamplingParams, prompt: number[], generated: number[], u: number): number {
  const logits = Array.from(raw);
  if (p.repetitionPenalty !== 1) {
    for (const t of new Set([...prompt, ...generated])) logits[t] = logits[t]! < 0 ? logits[t]! * p.repetitionPenalty : logits[t]! / p.repetitionPenalty;
  }
  const counts = new Map<number, number>();
  for (const t of generated) counts.set(t, (counts.get(t) ?? 0) + 1);
  for (const [t, c] of counts) logits[t] = logits[t]! - c * p.frequencyPenalty - p.presencePenalty;
  for (const [t, b] of p.logitBias ?? []) logits[t] = logits[t]! + b;
  // penalties are applied in float32 by the engine
  const f32 = Float32Array.from(logits);
  if (p.temperature === 0) {
    let best = 0;
    for (let i = 1; i < f32.length; i++) if (f32[i]! > f32[best]!) best = i;
    return best;
  }
  const max = Math.max(...f32);
  const probs = Array.from(f32, (l) => Math.exp((l - max) * (1 / p.temperature)));
  const order = probs.map((_, i) => i).sort((a, b) => probs[b]! - probs[a]! || a - b);
  let kept = p.topK > 0 && p.topK < order.length ? order.slice(0, p.topK) : order;
  if (p.topP < 1) {
    let mass = 0;
    for (const t of [...kept].sort((a, b) => a - b)) mass += probs[t]!;
    const cut: number[] = [];
    let cum = 0;
    for (const t of kept) {
      if (cum >= p.topP * mass && cut.length > 0) break;
      cut.push(t);
      cum += probs[t]!;
    }
    kept = cut;
  }
  const byId = [...kept].sort((a, b) => a - b);
  let total = 0;
  for (const t of byId) total += probs[t]!;
  let cum = 0;
  let last = byId[0]!;
  for (const t of byId) {
    if (probs[t] === 0) continue;
    cum += probs[t]!;
    last = t;
    if (cum > u * total) return t;
  }
  return last;
}

function randomLogits(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (counterUniform(seed, 0, i) - 0.5) * 12;
  return out;
}

const base: SamplingParams = { ...GREEDY, temperature: 1 };

describe('sampling', () => {
  const settings: Array<[string, Partial<SamplingParams>]> = [
    ['greedy', { temperature: 0 }],
    ['greedy with penalties and bias', { temperature: 0, repetitionPenalty: 1.3, frequencyPenalty: 0.5, presencePenalty: 0.2, logitBias: new Map([[7, 5]]) }],
    ['temperature 1', {}],
    ['temperature 0.6', { temperature: 0.6 }],
    ['top-k 5', { topK: 5 }],
    ['top-p 0.9', { topP: 0.9 }],
    ['top-p 0.3 at temperature 0.5', { topP: 0.3, temperature: 0.5 }],
    ['top-k 40 + top-p 0.8', { topK: 40, topP: 0.8 }],
    ['everything', { temperature: 1.3, topK: 50, topP: 0.95, repetitionPenalty: 1.2, frequencyPenalty: 0.3, presencePenalty: 0.4, logitBias: new Map([[3, -100], [11, 2]]) }],
  ];
  for (const [label, override] of settings) {
    it(`matches the plain reference: ${label}`, () => {
      const params = { ...base, ...override };
      for (let trial = 0; trial < 40; trial++) {
        const logits = randomLogits(500, trial);
        const prompt = [1, 2, 3, 40 + trial];
        const generated = [5, 5, 9, trial % 17];
        const history = new TokenHistory(prompt);
        for (const t of generated) history.add(t);
        const u = counterUniform(99, 0, trial);
        expect(sampleToken(logits, params, history, u)).toBe(referenceSample(logits, params, prompt, generated, u));
      }
    });
  }

  it('draws in proportion to the probabilities', () => {
    const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
    const counts = [0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, base, new TokenHistory([]), counterUniform(1, 0, i))]!++;
    expect(counts[0]! / n).toBeCloseTo(0.5, 1);
    expect(counts[1]! / n).toBeCloseTo(0.3, 1);
    expect(counts[2]! / n).toBeCloseTo(0.2, 1);
  });

  it('top-p keeps the smallest head with the mass and never less than one token', () => {
    const logits = Float32Array.from([Math.log(0.6), Math.log(0.25), Math.log(0.15)]);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { ...base, topP: 0.7 }, new TokenHistory([]), counterUniform(2, 0, i)));
    expect([...seen].sort()).toEqual([0, 1]);
    const only = new Set<number>();
    for (let i = 0; i < 200; i++) only.add(sampleToken(logits, { ...base, topP: 0.01 }, new TokenHistory([]), counterUniform(3, 0, i)));
    expect([...only]).toEqual([0]);
  });

  it('repetition penalty divides positive and multiplies negative logits (HF semantics)', () => {
    const logits = Float32Array.from([2, 1.9, -1, -1.1]);
    expect(sampleToken(logits, { ...GREEDY, repetitionPenalty: 1.1 }, new TokenHistory([0]), 0)).toBe(1);
    // token 2 penalised: -1·2 = -2 is below -1.1
    expect(sampleToken(Float32Array.from([-1, -1.1]), { ...GREEDY, repetitionPenalty: 2 }, new TokenHistory([0]), 0)).toBe(1);
  });

  it('top indices and logprobs agree with a full sort', () => {
    const logits = randomLogits(1000, 5);
    const order = Array.from(logits, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
    expect(topIndices(logits, 20)).toEqual(order.slice(0, 20));
    const lse = logSumExp(logits);
    let total = 0;
    for (const l of logits) total += Math.exp(l - lse);
    expect(total).toBeCloseTo(1, 10);
    const top = topLogprobs(logits, 3, lse);
    expect(top.map((t) => t.token)).toEqual(order.slice(0, 3));
    expect(top[0]!.logprob).toBeCloseTo(logits[order[0]!]! - lse, 10);
  });

  it('ties go to the lowest token id', () => {
    expect(topIndices(Float32Array.from([1, 3, 3, 2]), 2)).toEqual([1, 2]);
    expect(sampleToken(Float32Array.from([1, 3, 3, 2]), GREEDY, new TokenHistory([]), 0)).toBe(1);
  });
});

describe('counter-based random numbers', () => {
  it('depend only on (seed, stream, counter)', () => {
    expect(counterUniform(42, 0, 7)).toBe(counterUniform(42, 0, 7));
    expect(counterUniform(42, 0, 7)).not.toBe(counterUniform(42, 0, 8));
    expect(counterUniform(42, 0, 7)).not.toBe(counterUniform(43, 0, 7));
    expect(counterUniform(42, 1, 7)).not.toBe(counterUniform(42, 0, 7));
    expect(counterUniform(-1, 0, 0)).not.toBe(counterUniform(1, 0, 0));
  });

  it('look uniform', () => {
    const n = 50000;
    const bins = new Array(10).fill(0);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const u = counterUniform(7, 0, i);
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      bins[Math.floor(u * 10)]++;
      sum += u;
    }
    expect(sum / n).toBeCloseTo(0.5, 2);
    for (const b of bins) expect(Math.abs(b / n - 0.1)).toBeLessThan(0.01);
  });
});
