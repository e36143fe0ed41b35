// Counter-based random numbers for DARE masks and randomized-SVD test matrices. Value i of a stream is a keyed
// bijection of i (two rounds of a 32-bit integer hash), so any element's value is known without generating the
// ones before it: masks are identical across runs, machines, tile sizes and orders, like Philox or Threefry, but
// cheap in JS (a few integer multiplies per element). A stream is keyed by (seed, name, index), e.g.
// (seed, module name, adapter index).

/** Wellons' "lowbias32" integer hash: a bijection of 32-bit integers with good avalanche. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

export interface StreamKey {
  k0: number;
  k1: number;
}

/** The key of the stream (seed, name, index): FNV-1a over the UTF-16 code units of name, mixed with the rest. */
export function streamKey(seed: number, name: string, index: number): StreamKey {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  const k0 = mix32((mix32(seed >>> 0) ^ h) >>> 0);
  const k1 = mix32((k0 + 0x9e3779b9 + mix32((index >>> 0) ^ 0x85ebca6b)) >>> 0);
  return { k0, k1 };
}

/** 32 random bits for counter i (0 <= i < 2^32) of the stream. */
export function randomBits(key: StreamKey, i: number): number {
  return mix32((mix32((i ^ key.k0) >>> 0) + key.k1) >>> 0);
}

/** Uniform in [0, 1) with 32 bits of resolution. */
export function uniform(key: StreamKey, i: number): number {
  return randomBits(key, i) / 4294967296;
}

/** The integer cut below which 32 random bits mean "keep" with probability p (exact to 2^-32). */
export function keepThreshold(p: number): number {
  if (p <= 0) return 0;
  if (p >= 1) return 4294967296;
  return Math.floor(p * 4294967296);
}

/**
 * Fills out[j] with standard normal values for counters offset+j (Box–Muller on two counters per value, so the
 * value at an index does not depend on how the caller splits the work).
 */
export function fillGaussian(key: StreamKey, offset: number, out: Float32Array): void {
  for (let j = 0; j < out.length; j++) {
    const c = 2 * (offset + j);
    const u1 = (randomBits(key, c) + 1) / 4294967297; // (0, 1]: log never sees 0
    const u2 = randomBits(key, c + 1) / 4294967296;
    out[j] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}
