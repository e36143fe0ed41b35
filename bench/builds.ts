// Build options against each other (`npm run bench:builds`): the bench:serve checkpoint (Llama-3.2-1B-shaped random
// weights, four rank-16 q/k/v/o adapters) built once per variant, every session open in one process and run sample
// by sample in rotating order through the engine's own runner, KV cache and LoRA pool: decode steps at batch 1 and
// 4, base-only and with adapters, and a prompt prefill. Prints medians of wall time and of process CPU time per
// step, and each variant's speed-up over the first (above 1: faster). On a machine shared with other jobs, run it
// with BENCH_THREADS=1 and read the CPU times: they move far less with the load than wall times do.
// Variants (BENCH_VARIANTS, comma-separated, default separate,fused): separate (q/k/v, gate/up as separate
// matmuls), fused (the default build), block64 / block128 (int4 block size), acc0 (fp32 activations).
// Settings: LORAFORGE_DATA_DIR (default ./data), BENCH_LAYERS (layer count of the checkpoint, default 16),
// BENCH_REPS (default 9), BENCH_CONTEXT (past positions of a decode step, default 32), BENCH_PROMPT (prefill
// tokens, default 128), BENCH_THREADS (0 = all cores).
import './user-env.js';
import os from 'node:os';
import path from 'node:path';
import { readAdapter } from '../src/formats/peft.js';
import { buildModel, type BuildOptions } from '../src/inference/builder/index.js';
import { KvCache } from '../src/inference/engine/kv-cache.js';
import { LoraPool, prepareAdapter } from '../src/inference/engine/lora-pool.js';
import { openSession, OrtRunner } from '../src/inference/engine/ort-runner.js';
import { loadServedModel } from '../src/inference/engine/served-model.js';
import { ensureBenchCheckpoint } from './llama-1b-shaped.js';
import { decodeInput, prefillInput } from './decode-input.js';
import { median } from './stats.js';
import { log } from './log.js';

const dataDir = path.resolve(process.env.LORAFORGE_DATA_DIR ?? 'data');
const REPS = Number(process.env.BENCH_REPS ?? 9);
const CONTEXT = Number(process.env.BENCH_CONTEXT ?? 32);
const PROMPT = Number(process.env.BENCH_PROMPT ?? 128);
const THREADS = Number(process.env.BENCH_THREADS ?? 0);
const PRESETS: Record<string, Partial<BuildOptions>> = {
  separate: { fuseProjections: false },
  fused: {},
  block64: { int4BlockSize: 64 },
  block128: { int4BlockSize: 128 },
  acc0: { accuracyLevel: 0 },
};
const NAMES = (process.env.BENCH_VARIANTS ?? 'separate,fused').split(',');
for (const n of NAMES) if (!PRESETS[n]) throw new Error(`BENCH_VARIANTS: unknown variant ${n} (known: ${Object.keys(PRESETS).join(', ')})`);

const { checkpoint, adapters } = await ensureBenchCheckpoint(path.join(dataDir, 'bench', 'llama-1b-shaped'), log);

async function variant(name: string) {
  const t0 = performance.now();
  const built = await buildModel(checkpoint, { dataDir, dtype: 'int4', targets: ['q', 'k', 'v', 'o'], maxRank: 64, slots: 8, heads: ['generate'], ...PRESETS[name] });
  if (!built.cached) log(`built ${name} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
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
  return { name, runner: new OrtRunner(opened.session, spec), kv, pool, threads: opened.threads };
}

const cases = [
  { name: 'decode batch 1, base', input: decodeInput([0], CONTEXT) },
  { name: 'decode batch 1, adapter', input: decodeInput([1], CONTEXT) },
  { name: 'decode batch 4, base', input: decodeInput([0, 0, 0, 0], CONTEXT) },
  { name: 'decode batch 4, 4 adapters', input: decodeInput([1, 2, 3, 4], CONTEXT) },
  { name: `prefill ${PROMPT}, base`, input: prefillInput(0, PROMPT) },
  { name: `prefill ${PROMPT}, adapter`, input: prefillInput(1, PROMPT) },
];

const variants = [];
for (const name of NAMES) variants.push(await variant(name));
const times = variants.map(() => cases.map(() => [] as number[]));
const cpu = variants.map(() => cases.map(() => [] as number[]));
for (const v of variants) for (const c of cases) await v.runner.run(c.input, v.kv, v.pool); // warm-up
for (let r = 0; r < REPS; r++) {
  for (const [i, c] of cases.entries()) {
    // rotate which variant goes first, so none always follows another
    for (let k = 0; k < variants.length; k++) {
      const j = (k + r) % variants.length;
      const v = variants[j]!;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await v.runner.run(c.input, v.kv, v.pool);
      times[j]![i]!.push(performance.now() - t0);
      const used = process.cpuUsage(c0);
      cpu[j]![i]!.push((used.user + used.system) / 1000);
    }
  }
}
const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
for (const [label, data] of [['wall', times], ['CPU', cpu]] as const) {
  console.log(`${label} ms per step (medians of ${REPS}) and speed-up over ${NAMES[0]}, context ${CONTEXT}, ${variants[0]!.threads} threads, load ${load}:`);
  console.log(`  ${'case'.padEnd(28)}${NAMES.map((n) => n.padStart(20)).join('')}`);
  for (const [i, c] of cases.entries()) {
    const ms = data.map((t) => median(t[i]!));
    console.log(`  ${c.name.padEnd(28)}${ms.map((m) => `${m.toFixed(1)} ms ${(ms[0]! / m).toFixed(3)}x`.padStart(20)).join('')}`);
  }
}
for (const v of variants) await v.runner.release();
