// Exact k-th largest magnitude by radix select on the float bits: for non-negative floats the bit pattern orders
// like the value, so |x| is (bits & 0x7fffffff) compared as an integer. Pass 1 histograms the high 15 bits and
// finds the bucket holding the k-th largest; pass 2 histograms the low 16 bits inside that bucket. Two linear
// passes, no sort. MagnitudeSelector takes the passes in chunks (the tiles of a dense ΔW, or every tensor of an
// adapter); a whole array is selected on WebAssembly (trim.ts), where the second pass collects the bucket's few
// hundred values and sorts them instead, which suits the thousands of small factor tensors of a factor-space merge.
import { topKThreshold } from './trim.js';

export interface Threshold {
  /** bit pattern of the k-th largest |x| (0x7f800001 when k = 0: nothing is kept) */
  bits: number;
  /** how many values have |x| strictly above the threshold */
  above: number;
  /** how many of the values equal to the threshold must be kept to keep exactly k */
  ties: number;
}

const NONE_KEPT: Threshold = { bits: 0x7f800001, above: 0, ties: 0 };

// Counts are 32-bit (cheap to allocate and clear) and widen to float64 only when a selection spans more than
// 2^32 - 1 values (trimScope "adapter" on a huge model).
type Counts = Uint32Array | Float64Array;

/** Chunks at least this long histogram four ways (folding the four costs a pass over 2^17 counts). */
const QUAD_MIN = 1 << 18;
const QUAD = new Uint32Array(4 * 0x8000); // used within one synchronous addPass1 call only

export class MagnitudeSelector {
  private high: Counts;
  private low: Counts | null = null;
  private bucket = -1;
  private aboveBucket = 0;
  private total = 0;

  /** Selects the k-th largest |x| (k >= 1 counts from the top). */
  constructor(private readonly k: number) {
    this.high = new Uint32Array(32768);
  }

  /** Pass 1: feed every value once. */
  addPass1(chunk: Float32Array): void {
    if (this.total + chunk.length > 0xffffffff && this.high instanceof Uint32Array) this.high = Float64Array.from(this.high);
    const bits = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length);
    const h = this.high;
    if (bits.length >= QUAD_MIN) {
      // four interleaved histograms: neighbouring values often share a bucket, and one histogram makes each
      // increment wait for the previous one (30% faster), folded into h afterwards
      const q = QUAD.fill(0);
      const n4 = bits.length & ~3;
      for (let j = 0; j < n4; j += 4) {
        q[(bits[j]! >>> 16) & 0x7fff]!++;
        q[0x8000 | ((bits[j + 1]! >>> 16) & 0x7fff)]!++;
        q[0x10000 | ((bits[j + 2]! >>> 16) & 0x7fff)]!++;
        q[0x18000 | ((bits[j + 3]! >>> 16) & 0x7fff)]!++;
      }
      for (let j = n4; j < bits.length; j++) q[(bits[j]! >>> 16) & 0x7fff]!++;
      for (let b = 0; b < 0x8000; b++) h[b] = h[b]! + q[b]! + q[0x8000 | b]! + q[0x10000 | b]! + q[0x18000 | b]!;
    } else for (let j = 0; j < bits.length; j++) h[(bits[j]! >>> 16) & 0x7fff]!++;
    this.total += chunk.length;
  }

  /** Ends pass 1. Returns whether pass 2 is needed (false when k = 0 or k >= the number of values). */
  startPass2(): boolean {
    if (this.k <= 0 || this.k >= this.total) return false;
    let seen = 0;
    for (let b = 32767; b >= 0; b--) {
      const c = this.high[b]!;
      if (seen + c >= this.k) {
        this.bucket = b;
        this.aboveBucket = seen;
        break;
      }
      seen += c;
    }
    this.low = this.total > 0xffffffff ? new Float64Array(65536) : new Uint32Array(65536);
    return true;
  }

  /** Pass 2: feed every value again, in any order and chunking. */
  addPass2(chunk: Float32Array): void {
    const bits = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length);
    const h = this.low!;
    const want = this.bucket;
    for (let j = 0; j < bits.length; j++) {
      const m = bits[j]! & 0x7fffffff;
      if (m >>> 16 === want) h[m & 0xffff]!++;
    }
  }

  result(): Threshold {
    if (this.k <= 0) return NONE_KEPT;
    if (this.k >= this.total) return { bits: 0, above: 0, ties: this.total }; // keep everything
    let seen = this.aboveBucket;
    const h = this.low!;
    for (let b = 65535; b >= 0; b--) {
      const c = h[b]!;
      if (seen + c >= this.k) return { bits: ((this.bucket << 16) | b) >>> 0, above: seen, ties: this.k - seen };
      seen += c;
    }
    throw new Error('radix select: pass 2 saw fewer values than pass 1');
  }
}

/** The k-th largest |x| of one array (both passes, on WebAssembly). */
export function selectMagnitude(values: Float32Array, k: number): Threshold {
  if (k <= 0) return NONE_KEPT;
  if (k >= values.length) return { bits: 0, above: 0, ties: values.length }; // keep everything
  return topKThreshold(values, k);
}

/**
 * Zeroes all but the k largest |x| in place, keeping exactly k: every value above the threshold, and the first
 * `ties` values equal to it in the order they are fed (a deterministic tie-break; torch.topk's is unspecified).
 * Feed the chunks of the selection in index order.
 */
export class TopKFilter {
  /** values equal to the threshold still to keep */
  private remaining: number;
  kept = 0;

  constructor(readonly threshold: Threshold) {
    this.remaining = threshold.ties;
  }

  get ties(): number {
    return this.remaining;
  }

  /** Records that a fused pass (trimElectMerge) kept `n` values equal to the threshold. */
  consumeTies(n: number): void {
    this.remaining -= n;
  }

  apply(values: Float32Array): void {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    const tb = this.threshold.bits;
    let ties = this.remaining;
    let kept = 0;
    for (let j = 0; j < bits.length; j++) {
      const x = bits[j]!;
      const m = x & 0x7fffffff;
      if (m === tb) {
        // rare: values equal to the threshold, the first `ties` of which are kept
        if (ties > 0) {
          ties--;
          kept++;
        } else bits[j] = 0;
        continue;
      }
      const keep = (tb - m) >>> 31; // 1 when m > tb (both below 2^31), without a branch
      bits[j] = x & -keep;
      kept += keep;
    }
    this.remaining = ties;
    this.kept += kept;
  }
}

/** Keeps exactly the k largest |x| of one array, in place; returns the number kept. */
export function keepTopK(values: Float32Array, k: number): number {
  const filter = new TopKFilter(selectMagnitude(values, k));
  filter.apply(values);
  return filter.kept;
}
