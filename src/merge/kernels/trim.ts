// The pruning methods' elementwise kernels on WebAssembly SIMD (trim.wat): the top-k threshold of one tensor, DARE's
// random drop, and the fused trim + combine of many same-shaped inputs (TIES' elect and disjoint mean, or a trimmed
// weighted sum).
// In JS these took 1–2 ns per value for the select's two passes and 18–30 ns per element of four inputs for the
// combination, most of a factor-space TIES merge. Inputs are copied into the module's memory a chunk at a time,
// so any Float32Array can be an input; calls are synchronous and never interleave, so they share that memory.
import type { Threshold } from './select.js';
import { WASM_BASE64 } from './trim-wasm.js';

export type CombineRule = 'total' | 'frequency' | 'sum';

export interface CombineCounts {
  /** entries that reach the combination */
  kept: number;
  /** elements where at least two inputs are kept (elect rules) */
  contested: number;
  /** contested elements whose kept inputs disagree in sign (elect rules) */
  conflicts: number;
}

/** Elements per input and call: small enough for n inputs to stay in cache, large enough that calls cost nothing. */
const CHUNK = 1 << 14;
/** Values per select pass over the module's copy: a factor of 4096 × 16 is one piece. */
const SELECT_CHUNK = 1 << 16;
/** A bucket of at most this many values is sorted rather than histogrammed (on a factor it holds a few hundred). */
const CANDIDATES = 1 << 14;
const HIGH = 1 << 15;
const LOW = 1 << 16;
const PAGE = 1 << 16;
const INT32_MAX = 0x7fffffff;

// @types/node 20 does not declare WebAssembly, a global of every Node release: what this module uses of it
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: object };
};

interface Exports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  histogram(src: number, len: number, hist: number): number;
  bucket(hist: number, top: number, k: number, above: number): number;
  collect(src: number, len: number, bucket: number, dst: number, cap: number, found: number): number;
  lowHistogram(src: number, len: number, bucket: number, hist: number): void;
  dare(at: number, len: number, offset: number, k0: number, k1: number, cut: number, scale: number): void;
  elect(n: number, len: number, byFrequency: number, params: number, input: number, out: number, stats: number): void;
  sum(n: number, len: number, params: number, input: number, out: number, stats: number): void;
}

let exportsOnce: Exports | null = null;

/** The module (compiled once per thread, synchronously: it is 2 KB) with at least `bytes` of memory. */
function kernel(bytes: number): Exports {
  exportsOnce ??= new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(WASM_BASE64, 'base64'))).exports as unknown as Exports;
  const { memory } = exportsOnce;
  if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
  return exportsOnce;
}

/**
 * The threshold keeping exactly the k largest |x| of values, 0 < k < values.length: every value above `bits`, and
 * the first `ties` equal to it (what MagnitudeSelector finds when fed the whole array).
 */
export function topKThreshold(values: Float32Array, k: number): Threshold {
  const total = values.length;
  const slot = 0; // one i32 result of `bucket`
  const hist = 16; // HIGH counts, later LOW counts
  const candidates = hist + 4 * LOW;
  const data = candidates + 4 * CANDIDATES;
  const piece = Math.min(SELECT_CHUNK, total);
  const wasm = kernel(data + 4 * piece);
  const u32 = new Uint32Array(wasm.memory.buffer);
  const f32 = new Float32Array(wasm.memory.buffer);
  // each pass copies the values in, piece by piece, but a tensor that fits one piece is copied once
  let resident = false;
  const pass = (each: (len: number) => void) => {
    for (let at = 0; at < total; at += piece) {
      const len = Math.min(piece, total - at);
      if (!resident) f32.set(values.subarray(at, at + len), data >> 2);
      each(len);
    }
    resident = piece === total;
  };
  u32.fill(0, hist >> 2, (hist >> 2) + HIGH);
  let seen = 0;
  pass((len) => (seen |= wasm.histogram(data, len, hist)));
  const bucket = wasm.bucket(hist, (seen & INT32_MAX) >>> 16, k, slot);
  const aboveBucket = u32[slot >> 2]!;
  let found = 0;
  pass((len) => (found = wasm.collect(data, len, bucket, candidates, CANDIDATES, found)));
  if (found <= CANDIDATES) {
    const c = u32.subarray(candidates >> 2, (candidates >> 2) + found).sort(); // the k-th largest is the (k − above)-th largest here
    const bits = c[found - (k - aboveBucket)]!;
    let above = aboveBucket;
    for (let i = found - 1; i >= 0 && c[i]! > bits; i--) above++;
    return { bits, above, ties: k - above };
  }
  u32.fill(0, hist >> 2, (hist >> 2) + LOW);
  pass((len) => wasm.lowHistogram(data, len, bucket, hist));
  const low = wasm.bucket(hist, LOW - 1, k - aboveBucket, slot);
  const above = aboveBucket + u32[slot >> 2]!;
  return { bits: ((bucket << 16) | low) >>> 0, above, ties: k - above };
}

/**
 * DARE in place: element j of t (element offset + j of its tensor) is kept, times scale, when mix32(mix32((offset
 * + j) ^ k0) + k1) is below cut as an unsigned number (prng.ts's randomBits), and zeroed otherwise.
 */
export function dareInPlace(t: Float32Array, offset: number, k0: number, k1: number, cut: number, scale: number): void {
  const piece = Math.min(SELECT_CHUNK, (t.length + 3) & ~3);
  const wasm = kernel(4 * piece);
  const f32 = new Float32Array(wasm.memory.buffer);
  for (let at = 0; at < t.length; at += piece) {
    const len = Math.min(piece, t.length - at);
    f32.set(t.subarray(at, at + len));
    wasm.dare(0, (len + 3) & ~3, offset + at, k0, k1, cut, scale); // lanes past len are never copied back
    t.set(f32.subarray(0, len), at);
  }
}

/**
 * Combines inputs[i] (all as long as out) into out. Input i keeps the values whose |x| bit pattern is above
 * thresholds[i], and the first ties[i] values equal to it in element order (ties[i] is decreased by those kept; a
 * threshold of 0 keeps every non-zero value and never counts ties). 'sum': Σ w_i·kept_i; 'total' / 'frequency':
 * TIES' sign election (by the sum of the kept values, or by their count; a tie elects +) and the weighted sum of
 * the kept values of the winning sign over their count.
 */
export function combineTrimmed(
  inputs: Float32Array[],
  thresholds: Uint32Array,
  ties: Float64Array,
  weights: Float64Array,
  rule: CombineRule,
  out: Float32Array,
): CombineCounts {
  const n = inputs.length;
  const len = out.length;
  const chunk = Math.min(CHUNK, (len + 3) & ~3);
  const params = 0;
  const stats = 32 * n;
  const input = stats + 48;
  const output = input + 4 * n * chunk;
  const wasm = kernel(output + 4 * chunk);
  const mem = wasm.memory.buffer;
  const i32 = new Int32Array(mem);
  const f64 = new Float64Array(mem);
  const f32 = new Float32Array(mem);
  for (let i = 0; i < n; i++) {
    i32[(params >> 2) + 4 * i] = thresholds[i]!;
    f64[(params >> 3) + 2 * i + 1] = weights[i]!;
  }
  const counts: CombineCounts = { kept: 0, contested: 0, conflicts: 0 };
  for (let at = 0; at < len; at += chunk) {
    const m = Math.min(chunk, len - at);
    const padded = (m + 3) & ~3;
    const left: number[] = [];
    for (let i = 0; i < n; i++) {
      const base = (input >> 2) + i * padded; // the kernel's stride is the length it is given
      f32.set(inputs[i]!.subarray(at, at + m), base);
      if (padded > m) f32.fill(0, base + m, base + padded); // zeros are never kept
      left.push(Math.min(ties[i]!, INT32_MAX));
      i32[(params >> 2) + 4 * i + 1] = left[i]!;
    }
    if (rule === 'sum') wasm.sum(n, padded, params, input, output, stats);
    else wasm.elect(n, padded, rule === 'frequency' ? 1 : 0, params, input, output, stats);
    out.set(f32.subarray(output >> 2, (output >> 2) + m), at);
    for (let i = 0; i < n; i++) ties[i] = ties[i]! - (left[i]! - i32[(params >> 2) + 4 * i + 1]!);
    const s = stats >> 2;
    counts.kept += i32[s]! + i32[s + 1]! + i32[s + 2]! + i32[s + 3]!;
    counts.contested += i32[s + 4]! + i32[s + 5]! + i32[s + 6]! + i32[s + 7]!;
    counts.conflicts += i32[s + 8]! + i32[s + 9]! + i32[s + 10]! + i32[s + 11]!;
  }
  return counts;
}
