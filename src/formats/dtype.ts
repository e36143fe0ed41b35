// Tensor element types (safetensors' names) and the float conversions between them. Half-precision conversions
// work on bit patterns so NaN payloads and signed zeros survive: f16 → f32 is a table lookup (65,536 entries,
// built on first use); f32 → f16 and f32 → bf16 round to nearest, ties to even, like torch's `.half()` and
// `.bfloat16()`. Byte order is little-endian, as in safetensors and on every platform Node supports here.

export type Dtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL'
  | 'F8_E4M3'
  | 'F8_E5M2';

/** Bytes per element of each dtype the format defines (sub-byte F4/F6 types are not supported). */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** The dtypes `readFloat32` converts from. */
export type FloatDtype = 'F64' | 'F32' | 'F16' | 'BF16';

export function isDtype(value: unknown): value is Dtype {
  return typeof value === 'string' && Object.hasOwn(DTYPE_SIZE, value);
}

export function isFloatDtype(value: unknown): value is FloatDtype {
  return value === 'F64' || value === 'F32' || value === 'F16' || value === 'BF16';
}

let f16Table: Uint32Array | undefined;

/** f32 bit pattern of the half-precision bit pattern `h` (exact: every f16 value is an f32 value). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal: shift the leading one into the implicit bit
  let shifts = 0;
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    shifts++;
  }
  return (sign | ((113 - shifts) << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

function table(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

function u32View(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Half-precision bit pattern of the f32 bit pattern `x`, rounded to nearest even; overflow gives ±inf. */
function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0); // inf, or a quiet NaN
  const e = exp - 112; // re-biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let q = m >>> shift;
    if (rest > half || (rest === half && (q & 1) !== 0)) q++;
    return sign | q; // q may carry into the exponent field: the smallest normal, as it should
  }
  let q = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (q & 1) !== 0)) q++; // a carry may reach 0x7c00: inf, as it should
  return sign | q;
}

export function f16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const t = table();
  const out = u32View(dst);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return dst;
}

export function f32ToF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = u32View(src);
  for (let i = 0; i < bits.length; i++) dst[i] = f32BitsToF16Bits(bits[i]);
  return dst;
}

export function bf16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const out = u32View(dst);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return dst;
}

export function f32ToBf16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = u32View(src);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    // NaN stays a (quiet) NaN; rounding could otherwise carry its payload into inf
    dst[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return dst;
}

export function f64ToF32(src: Float64Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  dst.set(src);
  return dst;
}

/** Decodes little-endian bytes of a float dtype. `bytes` must start at an offset aligned for the dtype. */
export function toFloat32(bytes: Uint8Array, dtype: FloatDtype): Float32Array {
  const aligned = bytes.byteOffset % DTYPE_SIZE[dtype] === 0 ? bytes : bytes.slice();
  const { buffer, byteOffset, byteLength } = aligned;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buffer, byteOffset, byteLength / 4);
    case 'F16':
      return f16ToF32(new Uint16Array(buffer, byteOffset, byteLength / 2));
    case 'BF16':
      return bf16ToF32(new Uint16Array(buffer, byteOffset, byteLength / 2));
    case 'F64':
      return f64ToF32(new Float64Array(buffer, byteOffset, byteLength / 8));
  }
}

/** Encodes f32 values as little-endian bytes of `dtype`. */
export function fromFloat32(values: Float32Array, dtype: FloatDtype): Uint8Array {
  switch (dtype) {
    case 'F32':
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'F16': {
      const out = f32ToF16(values);
      return new Uint8Array(out.buffer);
    }
    case 'BF16': {
      const out = f32ToBf16(values);
      return new Uint8Array(out.buffer);
    }
    case 'F64': {
      const out = Float64Array.from(values);
      return new Uint8Array(out.buffer);
    }
  }
}

/** Index of the first f32 bit pattern with an all-ones exponent (NaN or ±inf), or -1; four values per test. */
function firstAllOnes32(bits: Uint32Array): number {
  const n4 = bits.length & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const e = (((bits[i]! >>> 23) & 255) + 1) | (((bits[i + 1]! >>> 23) & 255) + 1) | (((bits[i + 2]! >>> 23) & 255) + 1) | (((bits[i + 3]! >>> 23) & 255) + 1);
    if (e & 256) break;
  }
  for (; i < bits.length; i++) if ((bits[i]! & 0x7f800000) === 0x7f800000) return i;
  return -1;
}

/**
 * The same for 16-bit patterns whose exponent field is `width` bits above bit `shift` (f16: 10, 5; bf16: 7, 8),
 * read two at a time from 32-bit words and tested four words at once.
 */
function firstAllOnes16(bits: Uint16Array, shift: number, width: number): number {
  const max = (1 << width) - 1;
  const carry = 1 << width;
  const hi = shift + 16;
  const mask = max << shift;
  if (bits.byteOffset % 4 === 0) {
    const words = new Uint32Array(bits.buffer, bits.byteOffset, bits.length >>> 1);
    const n4 = words.length & ~3;
    for (let i = 0; i < n4; i += 4) {
      const w0 = words[i]!;
      const w1 = words[i + 1]!;
      const w2 = words[i + 2]!;
      const w3 = words[i + 3]!;
      const e =
        (((w0 >>> shift) & max) + 1) | (((w0 >>> hi) & max) + 1) | (((w1 >>> shift) & max) + 1) | (((w1 >>> hi) & max) + 1) |
        (((w2 >>> shift) & max) + 1) | (((w2 >>> hi) & max) + 1) | (((w3 >>> shift) & max) + 1) | (((w3 >>> hi) & max) + 1);
      if (e & carry) return scan16(bits, mask, 2 * i);
    }
    return scan16(bits, mask, 2 * n4);
  }
  return scan16(bits, mask, 0);
}

function scan16(bits: Uint16Array, mask: number, from: number): number {
  for (let i = from; i < bits.length; i++) if ((bits[i]! & mask) === mask) return i;
  return -1;
}

/** Index of the first NaN or ±inf in f32 values, or -1. */
export function firstNonFinite(values: Float32Array): number {
  return firstAllOnes32(new Uint32Array(values.buffer, values.byteOffset, values.length));
}

export interface NonFiniteCount {
  nan: number;
  inf: number;
  /** Element index of the first one, -1 when there is none. */
  first: number;
}

/**
 * NaN and ±inf among little-endian `dtype` elements, read on the bits in one pass (no conversion): what a tensor
 * would hold once read as f32, so an F64 value past the f32 range counts as inf.
 */
export function countNonFinite(bytes: Uint8Array, dtype: FloatDtype): NonFiniteCount {
  const aligned = bytes.byteOffset % DTYPE_SIZE[dtype] === 0 ? bytes : bytes.slice();
  const { buffer, byteOffset, byteLength } = aligned;
  const out: NonFiniteCount = { nan: 0, inf: 0, first: -1 };
  if (dtype === 'F64') {
    const values = new Float64Array(buffer, byteOffset, byteLength / 8);
    for (let i = 0; i < values.length; i++) {
      const x = Math.fround(values[i]!);
      if (x - x !== 0) {
        if (out.first < 0) out.first = i;
        if (x !== x) out.nan++;
        else out.inf++;
      }
    }
    return out;
  }
  const words = dtype === 'F32' ? new Uint32Array(buffer, byteOffset, byteLength / 4) : new Uint16Array(buffer, byteOffset, byteLength / 2);
  const mask = { F32: 0x7f800000, F16: 0x7c00, BF16: 0x7f80 }[dtype];
  out.first = words instanceof Uint32Array ? firstAllOnes32(words) : dtype === 'F16' ? firstAllOnes16(words, 10, 5) : firstAllOnes16(words, 7, 8);
  if (out.first < 0) return out; // the usual case: one fast scan and done
  const mantissa = { F32: 0x007fffff, F16: 0x03ff, BF16: 0x007f }[dtype];
  for (let i = out.first; i < words.length; i++) {
    const w = words[i]!;
    if ((w & mask) === mask) {
      if (w & mantissa) out.nan++;
      else out.inf++;
    }
  }
  return out;
}
