// The feeds of one decode step or one fresh prefill, as bench:step and bench:builds time them through the runner.
import type { RunInput } from '../src/inference/engine/core.js';

/** `slots.length` rows at position `context` (the KV cache holds `context` past positions), row r on slot `slots[r]`. */
export function decodeInput(slots: number[], context: number): RunInput {
  const batch = slots.length;
  return {
    batch,
    seq: 1,
    inputIds: BigInt64Array.from(slots, (_, r) => BigInt(300 + r)),
    positionIds: new BigInt64Array(batch).fill(BigInt(context)),
    seqlensK: new Int32Array(batch).fill(context),
    totalSeqLen: context + 1,
    logitsIndex: BigInt64Array.from(slots, (_, r) => BigInt(r)),
    slots,
    pastStart: 0,
  };
}

/** A fresh prefill of `length` tokens on one row on slot `slot`, as the engine's core runs it (no past). */
export function prefillInput(slot: number, length: number): RunInput {
  return {
    batch: 1,
    seq: length,
    inputIds: BigInt64Array.from({ length }, (_, s) => BigInt(300 + ((s * 7919) % 30000))),
    positionIds: BigInt64Array.from({ length }, (_, s) => BigInt(s)),
    seqlensK: Int32Array.of(length - 1),
    totalSeqLen: length,
    logitsIndex: BigInt64Array.of(BigInt(length - 1)),
    slots: [slot],
    pastStart: null,
  };
}
