// Fused against separate projections (`npm run bench:fuse`): the bench:serve checkpoint (Llama-3.2-1B-shaped
// random weights, four rank-16 q/k/v/o adapters) built twice, with the builder's fuseProjections on and off, both
// sessions open in one process and run sample by sample in alternating order through the engine's own runner,
// KV cache and LoRA pool: decode steps at batch 1 and 4, base-only and with adapters, and a prompt prefill.
// Prints medians and the separate / fused ratio per case (above 1: fused is faster).
// Settings: LORAFORGE_DATA_DIR (default ./data), BENCH_LAYERS (layer count of the checkpoint, default 16),
// BENCH_REPS (default 9), BENCH_CONTEXT (past positions of a decode step, default 32), BENCH_PROMPT (prefill
// tokens, default 128), BENCH_ACCURACY (MatMulNBits accuracy_level, default the builder's), BENCH_THREADS (0 = all).
import os from 'node:os';
import path from 'node:path';
import { readAdapter } from '../src/formats/peft.js';
import { buildModel } from '../src/inference/builder/index.js';
import type { RunInput } from '../src/inference/engine/core.js';
import { KvCache } from '../src/inference/engine/kv-cache.js';
import { LoraPool, prepareAdapter } from '../src/inference/engine/lora-pool.js';
import { openSession, OrtRunner } from '../src/inference/engine/ort-runner.js';
import { loadServedModel } from '../src/inference/engine/served-model.js';
import { ensureBenchCheckpoint } from './llama-1b-shaped.js';

const dataDir = path.resolve(process.env.LORAFORGE_DATA_DIR ?? 'data');
const REPS = Number(process.env.BENCH_REPS ?? 9);
const CONTEXT = Number(process.env.BENCH_CONTEXT ?? 32);
const PROMPT = Number(process.env.BENCH_PROMPT ?? 128);
const THREADS = Number(process.env.BENCH_THREADS ?? 0);
const ACCURACY = process.env.BENCH_ACCURACY === undefined ? undefined : Number(process.env.BENCH_ACCURACY);
const log = (line: string) => process.stderr.write(`${line}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const { checkpoint, adapters } = await ensureBenchCheckpoint(path.join(dataDir, 'bench', 'llama-1b-shaped'), log);

async function variant(fuseProjections: boolean) {
  const t0 = performance.now();
  const built = await buildModel(checkpoint, {
    dataDir,
    dtype: 'int4',
    targets: ['q', 'k', 'v', 'o'],
    maxRank: 64,
    slots: 8,
    heads: ['generate'],
    accuracyLevel: ACCURACY,
    fuseProjections,
  });
  if (!built.cached) log(`built ${fuseProjections ? 'fused' : 'separate'} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const model = await loadServedModel(built.dir);
  const { spec } = model;
  const pool = new LoraPool(spec.sites, spec.slots, spec.maxRank);
  for (const [i, dir] of adapters.entries()) {
    pool.write(i + 1, prepareAdapter(await readAdapter(dir), spec.sites, { maxRank: spec.maxRank, targets: spec.targets }, `bench-${i}`));
  }
  const kv = new KvCache(spec, { maxRows: 4, chunk: 128, maxPositions: spec.maxPositions });
  for (let r = 0; r < 4; r++) kv.addRow();
  kv.reserve(CONTEXT + 1);
  for (let r = 0; r < 4; r++) kv.setLength(r, CONTEXT);
  const opened = await openSession(model.onnxPath, { threads: THREADS, executionProvider: 'cpu', spinning: false });
  return { runner: new OrtRunner(opened.session, spec), kv, pool, threads: opened.threads, accuracy: built.manifest.quantization?.accuracyLevel };
}

/** One decode step's feeds: `batch` rows at position CONTEXT, row r on slot `slots[r]`. */
function decodeInput(slots: number[]): RunInput {
  const batch = slots.length;
  return {
    batch,
    seq: 1,
    inputIds: BigInt64Array.from(slots, (_, r) => BigInt(300 + r)),
    positionIds: new BigInt64Array(batch).fill(BigInt(CONTEXT)),
    seqlensK: new Int32Array(batch).fill(CONTEXT),
    totalSeqLen: CONTEXT + 1,
    logitsIndex: BigInt64Array.from(slots, (_, r) => BigInt(r)),
    adapterIdx: BigInt64Array.from(slots.map(BigInt)),
    pastStart: 0,
    anyAdapter: slots.some((s) => s !== 0),
  };
}

/** A fresh prompt of PROMPT tokens on one row. */
function prefillInput(slot: number): RunInput {
  return {
    batch: 1,
    seq: PROMPT,
    inputIds: BigInt64Array.from({ length: PROMPT }, (_, i) => BigInt(300 + ((i * 7919) % 30000))),
    positionIds: BigInt64Array.from({ length: PROMPT }, (_, i) => BigInt(i)),
    seqlensK: Int32Array.of(PROMPT - 1),
    totalSeqLen: PROMPT,
    logitsIndex: BigInt64Array.of(BigInt(PROMPT - 1)),
    adapterIdx: BigInt64Array.of(BigInt(slot)),
    pastStart: null,
    anyAdapter: slot !== 0,
  };
}

const cases = [
  { name: 'decode batch 1, base', input: decodeInput([0]) },
  { name: 'decode batch 1, adapter', input: decodeInput([1]) },
  { name: 'decode batch 4, base', input: decodeInput([0, 0, 0, 0]) },
  { name: 'decode batch 4, 4 adapters', input: decodeInput([1, 2, 3, 4]) },
  { name: `prefill ${PROMPT}, base`, input: prefillInput(0) },
  { name: `prefill ${PROMPT}, adapter`, input: prefillInput(1) },
];

const separate = await variant(false);
const fused = await variant(true);
const variants = [separate, fused];
const times = variants.map(() => cases.map(() => [] as number[]));
for (const v of variants) for (const c of cases) await v.runner.run(c.input, v.kv, v.pool); // warm-up
for (let r = 0; r < REPS; r++) {
  for (const [i, c] of cases.entries()) {
    // alternate which variant goes first, so neither always follows the other's cache footprint
    for (const j of r % 2 ? [1, 0] : [0, 1]) {
      const v = variants[j]!;
      const t0 = performance.now();
      await v.runner.run(c.input, v.kv, v.pool);
      times[j]![i]!.push(performance.now() - t0);
    }
  }
}
const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(`separate vs fused q/k/v and gate/up, context ${CONTEXT}, ${fused.threads} threads, accuracy_level ${fused.accuracy}, load ${load}, medians of ${REPS}:`);
console.log(`  ${'case'.padEnd(28)} ${'separate'.padStart(9)} ${'fused'.padStart(9)}  separate/fused`);
for (const [i, c] of cases.entries()) {
  const [a, b] = [median(times[0]![i]!), median(times[1]![i]!)];
  console.log(`  ${c.name.padEnd(28)} ${a.toFixed(1).padStart(6)} ms ${b.toFixed(1).padStart(6)} ms  ${(a / b).toFixed(3)}x`);
}
for (const v of variants) await v.runner.release();
