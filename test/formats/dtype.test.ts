// The half-precision kernels against a plain reference: decoding by the formula, encoding by searching the
// sorted table of every finite value and picking the nearer neighbour (ties to the even bit pattern).
import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, f64ToF32, fromFloat32, toFloat32 } from '../../src/formats/dtype.js';
import { seeded } from '../helpers/random.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]!);
const fromBits = (b: number) => ((u32[0] = b), f32[0]!);

function f16Reference(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  if (exp === 0) return sign * 2 ** -14 * (mant / 1024);
  return sign * 2 ** (exp - 15) * (1 + mant / 1024);
}
const bf16Reference = (h: number) => fromBits(h << 16);

/** Values of the positive finite patterns 0..maxBits, in increasing order (bit order is value order). */
function positiveValues(maxBits: number, decode: (h: number) => number): Float64Array {
  const values = new Float64Array(maxBits + 1);
  for (let h = 0; h <= maxBits; h++) values[h] = decode(h);
  return values;
}

/** Round-to-nearest-even by search: returns the bit pattern. */
function encodeReference(x: number, values: Float64Array, infBits: number): number {
  const signBit = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  if (Number.isNaN(x)) return -1;
  const a = Math.abs(x);
  const max = values.length - 1;
  const halfUlpAboveMax = (values[max]! - values[max - 1]!) / 2;
  if (a >= values[max]! + halfUlpAboveMax) return signBit | infBits; // ties go to the even pattern: infinity
  let lo = 0;
  let hi = max;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (values[mid]! <= a) lo = mid;
    else hi = mid - 1;
  }
  if (lo === max || values[lo] === a) return signBit | lo;
  const below = a - values[lo]!;
  const above = values[lo + 1]! - a;
  if (below < above) return signBit | lo;
  if (above < below) return signBit | (lo + 1);
  return signBit | (lo % 2 === 0 ? lo : lo + 1);
}

/** Every exact value, every midpoint between neighbours and one f32 ulp either side, and random f32 patterns. */
function probes(values: Float64Array, random: number): Float32Array {
  const out: number[] = [0, -0, Infinity, -Infinity, NaN, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45];
  for (let i = 0; i < values.length; i++) {
    out.push(values[i]!, -values[i]!);
    if (i + 1 < values.length) {
      const mid = Math.fround((values[i]! + values[i + 1]!) / 2);
      const b = bitsOf(mid);
      out.push(mid, -mid, fromBits(b + 1), fromBits(b - 1));
    }
  }
  const rnd = seeded(42);
  for (let i = 0; i < random; i++) out.push(fromBits(Math.floor(rnd() * 4294967296)));
  return Float32Array.from(out);
}

describe('f16', () => {
  const values = positiveValues(0x7bff, f16Reference);

  it('decodes every one of the 65,536 patterns like the formula', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const got = f16ToF32(all);
    for (let h = 0; h < 65536; h++) {
      const want = f16Reference(h);
      if (Number.isNaN(want)) expect(Number.isNaN(got[h])).toBe(true);
      else expect(Object.is(got[h], want), `pattern ${h.toString(16)}`).toBe(true);
    }
  });

  it('encodes values, midpoints, subnormals, overflow and random floats to the nearest even pattern', () => {
    const xs = probes(values, 200_000);
    const got = f32ToF16(xs);
    let mismatches = 0;
    for (let i = 0; i < xs.length; i++) {
      const want = encodeReference(xs[i]!, values, 0x7c00);
      if (want === -1) {
        expect((got[i]! & 0x7c00) === 0x7c00 && (got[i]! & 0x3ff) !== 0, `NaN at ${i}`).toBe(true);
      } else if (got[i] !== want) {
        mismatches++;
        if (mismatches < 5) expect(got[i], `x = ${xs[i]}`).toBe(want);
      }
    }
    expect(mismatches).toBe(0);
  });

  it('handles the edges by name', () => {
    const enc = (x: number) => f32ToF16(Float32Array.of(x))[0];
    expect(enc(65504)).toBe(0x7bff);
    expect(enc(65519.99)).toBe(0x7bff);
    expect(enc(65520)).toBe(0x7c00); // the tie above the largest finite value rounds to infinity
    expect(enc(-1e6)).toBe(0xfc00);
    expect(enc(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(enc(2 ** -25)).toBe(0x0000); // tie to even: zero
    expect(enc(1.5 * 2 ** -24)).toBe(0x0002); // tie to even: two units
    expect(enc(-0)).toBe(0x8000);
    expect(enc(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up out of the subnormals into the smallest normal
    expect(f16ToF32(Uint16Array.of(0x3c00, 0xc000, 0x0001))).toEqual(Float32Array.of(1, -2, 2 ** -24));
  });
});

describe('bf16', () => {
  const values = positiveValues(0x7f7f, bf16Reference);

  it('decodes by placing the bits in the high half', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const got = bf16ToF32(all);
    for (let h = 0; h < 65536; h += 7) {
      const want = bf16Reference(h);
      if (Number.isNaN(want)) expect(Number.isNaN(got[h])).toBe(true);
      else expect(Object.is(got[h], want)).toBe(true);
    }
  });

  it('encodes to the nearest even pattern, keeping NaN a NaN', () => {
    const xs = probes(values, 200_000);
    const got = f32ToBf16(xs);
    let mismatches = 0;
    for (let i = 0; i < xs.length; i++) {
      const want = encodeReference(xs[i]!, values, 0x7f80);
      if (want === -1) {
        expect((got[i]! & 0x7f80) === 0x7f80 && (got[i]! & 0x7f) !== 0, `NaN at ${i}`).toBe(true);
      } else if (got[i] !== want) {
        mismatches++;
        if (mismatches < 5) expect(got[i], `x = ${xs[i]}`).toBe(want);
      }
    }
    expect(mismatches).toBe(0);
    // a NaN whose payload sits only in the low bits must not turn into infinity
    expect(f32ToBf16(Float32Array.of(fromBits(0x7f800001)))[0]).toBe(0x7fc0);
  });
});

describe('byte codecs', () => {
  it('round-trips every float dtype through little-endian bytes', () => {
    const x = Float32Array.of(1, -2.5, 0.1, 65504, 1e-3);
    expect(toFloat32(fromFloat32(x, 'F32'), 'F32')).toEqual(x);
    expect(toFloat32(fromFloat32(x, 'F64'), 'F64')).toEqual(x);
    expect(toFloat32(fromFloat32(x, 'F16'), 'F16')).toEqual(f16ToF32(f32ToF16(x)));
    expect(toFloat32(fromFloat32(x, 'BF16'), 'BF16')).toEqual(bf16ToF32(f32ToBf16(x)));
    expect(f64ToF32(Float64Array.of(0.1))[0]).toBe(Math.fround(0.1));
  });

  it('decodes bytes that sit at an unaligned offset', () => {
    const bytes = new Uint8Array(9);
    bytes.set(fromFloat32(Float32Array.of(3, 4), 'F32'), 1);
    expect(toFloat32(bytes.subarray(1), 'F32')).toEqual(Float32Array.of(3, 4));
  });
});
