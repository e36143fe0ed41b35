// 4-bit block quantization for com.microsoft MatMulNBits / GatherBlockQuantized: symmetric round-to-nearest,
// the formulas of onnxruntime's MLAS quantizer (core/mlas/lib/q4_dq.cpp), which its own Python quantizer calls.
//
// Layout (the MatMulNBits spec): the weight in PyTorch [N = out, K = in] order, each row cut into blocks of
// `blockSize` along K; `qweight` is uint8 [N, ceil(K/bs), bs/2] with the even k in the low nibble; `scales` is
// float [N, ceil(K/bs)]; no zero points (the default 8 = symmetric). A row of an embedding table [vocab, hidden]
// in this layout is also what GatherBlockQuantized reads with quantize_axis = 1.

/** The builder's default block size: llama.cpp Q4_0's. */
export const INT4_BLOCK_SIZE = 32;

/** Block sizes a build takes: powers of 2 from 16 to 256. */
export function isInt4BlockSize(n: number): boolean {
  return Number.isInteger(n) && n >= 16 && n <= 256 && (n & (n - 1)) === 0;
}

export interface Int4Weight {
  n: number;
  k: number;
  blockSize: number;
  blocksPerRow: number;
  qweight: Uint8Array;
  scales: Float32Array;
}

/** clamp(roundf(x) + 8, 0, 15), roundf being C's (halves away from zero; Math.round sends -2.5 to -2). */
function nibble(x: number): number {
  const q = (x < 0 ? -Math.round(-x) : Math.round(x)) + 8;
  return q < 0 ? 0 : q > 15 ? 15 : q;
}

/** Quantizes `w` ([n, k] row-major) to 4 bits. A last partial block is padded with zeros. */
export function quantizeInt4(w: Float32Array, n: number, k: number, blockSize = INT4_BLOCK_SIZE): Int4Weight {
  if (w.length !== n * k) throw new RangeError(`quantizeInt4: ${w.length} values given for [${n}, ${k}]`);
  if (!isInt4BlockSize(blockSize)) throw new RangeError(`block size ${blockSize} must be a power of 2 from 16 to 256`);
  const blocksPerRow = Math.ceil(k / blockSize);
  const blob = blockSize / 2;
  const qweight = new Uint8Array(n * blocksPerRow * blob);
  const scales = new Float32Array(n * blocksPerRow);
  const fround = Math.fround;
  for (let row = 0; row < n; row++) {
    const base = row * k;
    for (let b = 0; b < blocksPerRow; b++) {
      const start = base + b * blockSize;
      const end = Math.min(start + blockSize, base + k);
      // the value of largest magnitude, sign kept: it maps exactly to -8, the end of the range with one more step
      let extreme = 0;
      let amax = 0;
      for (let j = start; j < end; j++) {
        const v = w[j]!;
        const a = v < 0 ? -v : v;
        if (a > amax) {
          amax = a;
          extreme = v;
        }
      }
      const scale = fround(extreme / -8);
      const reciprocal = scale !== 0 ? fround(1 / scale) : 0;
      const block = row * blocksPerRow + b;
      scales[block] = scale;
      let out = block * blob;
      // padding values are 0, which quantize to 8
      for (let j = start; j < start + blockSize; j += 2, out++) {
        const lo = j < end ? nibble(fround(w[j]! * reciprocal)) : 8;
        const hi = j + 1 < end ? nibble(fround(w[j + 1]! * reciprocal)) : 8;
        qweight[out] = lo | (hi << 4);
      }
    }
  }
  return { n, k, blockSize, blocksPerRow, qweight, scales };
}

/** The float weights a quantized tensor stands for, [n, k] row-major: (q - 8) * scale. */
export function dequantizeInt4(q: Int4Weight): Float32Array {
  const { n, k, blockSize, blocksPerRow, qweight, scales } = q;
  const blob = blockSize / 2;
  const w = new Float32Array(n * k);
  for (let row = 0; row < n; row++) {
    for (let i = 0; i < k; i++) {
      const b = Math.floor(i / blockSize);
      const j = i % blockSize;
      const byte = qweight[(row * blocksPerRow + b) * blob + (j >> 1)]!;
      const nibble = j & 1 ? byte >> 4 : byte & 15;
      w[row * k + i] = (nibble - 8) * scales[row * blocksPerRow + b]!;
    }
  }
  return w;
}
