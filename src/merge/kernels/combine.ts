// The fused trim + combine of many same-shaped inputs (TIES' elect and disjoint mean, or a trimmed weighted sum)
// on WebAssembly SIMD (combine.wat), four elements at a time: the scalar JS loop took 18–30 ns per element of four
// inputs, most of a factor-space TIES merge's JavaScript. Inputs are copied into the module's memory a chunk at a
// time (n chunks of 64 KiB stay in L2), so any Float32Array can be an input.
import { WASM_BASE64 } from './combine-wasm.js';

export type CombineRule = 'total' | 'frequency' | 'sum';

export interface CombineCounts {
  /** entries that reach the combination */
  kept: number;
  /** elements where at least two inputs are kept (elect rules) */
  contested: number;
  /** contested elements whose kept inputs disagree in sign (elect rules) */
  conflicts: number;
}

/** Elements per call: small enough for n inputs to stay in cache, large enough that calls cost nothing. */
const CHUNK = 1 << 14;
const PAGE = 1 << 16;
const INT32_MAX = 0x7fffffff;

// @types/node 20 does not declare WebAssembly, a global of every Node release: what this module uses of it
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: object };
};

interface Exports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  elect(n: number, len: number, byFrequency: number, params: number, input: number, out: number, stats: number): void;
  sum(n: number, len: number, params: number, input: number, out: number, stats: number): void;
}

let exportsOnce: Exports | null = null;

// compiled once per thread, synchronously: the module is 1.4 KB
function kernel(): Exports {
  exportsOnce ??= new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(WASM_BASE64, 'base64'))).exports as unknown as Exports;
  return exportsOnce;
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
  const k = kernel();
  const n = inputs.length;
  const len = out.length;
  const chunk = Math.min(CHUNK, (len + 3) & ~3);
  const params = 0;
  const stats = 32 * n;
  const input = stats + 48;
  const output = input + 4 * n * chunk;
  const need = output + 4 * chunk;
  if (k.memory.buffer.byteLength < need) k.memory.grow(Math.ceil((need - k.memory.buffer.byteLength) / PAGE));
  const mem = k.memory.buffer;
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
    if (rule === 'sum') k.sum(n, padded, params, input, output, stats);
    else k.elect(n, padded, rule === 'frequency' ? 1 : 0, params, input, output, stats);
    out.set(f32.subarray(output >> 2, (output >> 2) + m), at);
    for (let i = 0; i < n; i++) ties[i] = ties[i]! - (left[i]! - i32[(params >> 2) + 4 * i + 1]!);
    const s = stats >> 2;
    counts.kept += i32[s]! + i32[s + 1]! + i32[s + 2]! + i32[s + 3]!;
    counts.contested += i32[s + 4]! + i32[s + 5]! + i32[s + 6]! + i32[s + 7]!;
    counts.conflicts += i32[s + 8]! + i32[s + 9]! + i32[s + 10]! + i32[s + 11]!;
  }
  return counts;
}
