// A counter-based random source: the n-th draw of a request depends only on (seed, stream, n), never on what
// else ran before or beside it, so the same seed gives the same tokens whatever the batch looks like.
// SplitMix64's finalizer over a 64-bit key; one BigInt hash per sampled token costs about a microsecond.

const MASK = (1n << 64n) - 1n;
const GOLDEN = 0x9e3779b97f4a7c15n;

function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return z ^ (z >> 31n);
}

/** A uniform number in [0, 1) for draw `counter` of `stream` under `seed` (integers; seed may be negative). */
export function counterUniform(seed: number, stream: number, counter: number): number {
  const key = mix64((BigInt.asUintN(64, BigInt(seed)) * GOLDEN) & MASK);
  const ctr = ((BigInt(stream) << 32n) | BigInt(counter >>> 0)) & MASK;
  const bits = mix64((key + ctr * GOLDEN) & MASK);
  return Number(bits >> 11n) / 2 ** 53;
}

/** A seed for requests that do not give one. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
