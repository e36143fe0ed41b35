// Decode step-time breakdown (`npm run bench:step`): the bench:serve model (Llama-3.2-1B-shaped random int4, four
// rank-16 adapters) run through the engine's own runner, KV cache and LoRA pool, without the scheduler or the
// worker thread, at batch 1 and 4, base-only and with adapters (batch 4: one adapter per row), interleaved, medians.
// The differences separate the LoRA subgraph from the base matmuls. With BENCH_PROFILE=1 it also writes ORT's
// per-node profile of a few steps of each case and prints the time by operator kind.
// Settings: LORAFORGE_DATA_DIR (default ./data), BENCH_REPS (default 15), BENCH_CONTEXT (past positions, default
// 32), BENCH_ACCURACY (MatMulNBits accuracy_level, default the builder's), BENCH_THREADS (default 0 = all cores),
// BENCH_SPIN (off, on, or compare: two sessions, ORT's threads sleeping or spinning during a run, interleaved
// step by step; default off), BENCH_PREFILL (tokens: also a fresh prefill of that many, base and adapter; default 0).
import './user-env.js';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readAdapter } from '../src/formats/peft.js';
import { buildModel } from '../src/inference/builder/index.js';
import { KvCache } from '../src/inference/engine/kv-cache.js';
import { LoraPool, prepareAdapter } from '../src/inference/engine/lora-pool.js';
import { openSession, OrtRunner } from '../src/inference/engine/ort-runner.js';
import { loadServedModel } from '../src/inference/engine/served-model.js';
import { ensureBenchCheckpoint } from './llama-1b-shaped.js';
import { decodeInput, prefillInput } from './decode-input.js';
import { median } from './stats.js';
import { log } from './log.js';

const dataDir = path.resolve(process.env.LORAFORGE_DATA_DIR ?? 'data');
const REPS = Number(process.env.BENCH_REPS ?? 15);
const CONTEXT = Number(process.env.BENCH_CONTEXT ?? 32);
const THREADS = Number(process.env.BENCH_THREADS ?? 0);
const KV_CHUNK = Number(process.env.BENCH_KV_CHUNK ?? 128);
const ACCURACY = process.env.BENCH_ACCURACY === undefined ? undefined : Number(process.env.BENCH_ACCURACY);
const SPIN = process.env.BENCH_SPIN ?? 'off';
const PREFILL = Number(process.env.BENCH_PREFILL ?? 0);
const SPINS = SPIN === 'compare' ? [false, true] : [SPIN === 'on'];

const { checkpoint, adapters } = await ensureBenchCheckpoint(path.join(dataDir, 'bench', 'llama-1b-shaped'), log);
const built = await buildModel(checkpoint, { dataDir, dtype: 'int4', targets: ['q', 'k', 'v', 'o'], maxRank: 64, slots: 8, heads: ['generate'], accuracyLevel: ACCURACY });
const model = await loadServedModel(built.dir);
const { spec } = model;
const pool = new LoraPool(spec.sites, spec.slots, spec.maxRank);
for (const [i, dir] of adapters.entries()) {
  pool.write(i + 1, prepareAdapter(await readAdapter(dir), spec.sites, { maxRank: spec.maxRank, targets: spec.targets }, `bench-${i}`));
}
const kv = new KvCache(spec, { maxRows: 4, chunk: KV_CHUNK, maxPositions: spec.maxPositions });
for (let r = 0; r < 4; r++) kv.addRow();
kv.reserve(CONTEXT + 1);
for (let r = 0; r < 4; r++) kv.setLength(r, CONTEXT);

const cases = [
  { name: 'batch 1, base', input: decodeInput([0], CONTEXT) },
  { name: 'batch 1, adapter', input: decodeInput([1], CONTEXT) },
  { name: 'batch 4, base', input: decodeInput([0, 0, 0, 0], CONTEXT) },
  { name: 'batch 4, 4 adapters', input: decodeInput([1, 2, 3, 4], CONTEXT) },
  ...(PREFILL > 0 ? [{ name: `prefill ${PREFILL}, base`, input: prefillInput(0, PREFILL) }, { name: `prefill ${PREFILL}, adapter`, input: prefillInput(1, PREFILL) }] : []),
];

async function measure(profile: boolean): Promise<void> {
  const profileDir = profile ? mkdtempSync(path.join(os.tmpdir(), 'loraforge-step-')) : '';
  const spins = profile ? [SPINS[0]!] : SPINS;
  const sessions = [];
  for (const spinning of spins) {
    const settings = { threads: THREADS, executionProvider: 'cpu' as const, spinning };
    const opened = await openSession(model.onnxPath, settings, profile ? { enableProfiling: true, profileFilePrefix: path.join(profileDir, 'p') } : {});
    sessions.push({ spinning, opened, runner: new OrtRunner(opened.session, spec), times: cases.map(() => [] as number[]) });
  }
  for (const s of sessions) for (const c of cases) await s.runner.run(c.input, kv, pool); // warm-up
  for (let r = 0; r < (profile ? 5 : REPS); r++) {
    for (const [i, c] of cases.entries()) {
      for (const s of sessions) {
        const t0 = performance.now();
        await s.runner.run(c.input, kv, pool);
        s.times[i]!.push(performance.now() - t0);
      }
    }
  }
  if (profile) {
    sessions[0]!.opened.session.endProfiling();
    await sessions[0]!.runner.release();
    printProfile(path.join(profileDir, readdirSync(profileDir)[0]!));
    rmSync(profileDir, { recursive: true, force: true });
    return;
  }
  for (const s of sessions) {
    const ms = s.times.map(median);
    console.log(
      `decode step, context ${CONTEXT} (kv capacity ${kv.capacity}), ${s.opened.threads} threads, spinning ${s.spinning ? 'on' : 'off'}, accuracy_level ${built.manifest.quantization?.accuracyLevel}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, medians of ${REPS}:`,
    );
    for (const [i, c] of cases.entries()) console.log(`  ${c.name.padEnd(22)} ${ms[i]!.toFixed(1).padStart(7)} ms/step  ${((1000 * c.input.batch * c.input.seq) / ms[i]!).toFixed(2).padStart(6)} tok/s`);
    console.log(`  LoRA part: batch 1 ${(ms[1]! - ms[0]!).toFixed(1)} ms, batch 4 ${(ms[3]! - ms[2]!).toFixed(1)} ms; base batch 4 / batch 1 ${(ms[2]! / ms[0]!).toFixed(2)}x`);
    console.log(`  4 adapter streams vs one: ${((4 * ms[1]!) / ms[3]!).toFixed(2)}x`);
  }
  if (sessions.length === 2) {
    const [off, on] = sessions.map((s) => s.times.map(median));
    console.log('spinning on / off, step time (below 1: spinning is faster):');
    for (const [i, c] of cases.entries()) console.log(`  ${c.name.padEnd(22)} ${(on![i]! / off![i]!).toFixed(3)}`);
  }
  for (const s of sessions) await s.runner.release();
}

/** Sums ORT's node events by run (runs go through the cases in order) and by operator kind, LoRA nodes apart. */
function printProfile(file: string): void {
  type Event = { cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } };
  const events = JSON.parse(readFileSync(file, 'utf8')) as Event[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  const perRun = runs.map(() => new Map<string, number>());
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !e.args?.op_name) continue;
    const r = runs.findIndex((run) => e.ts >= run.ts && e.ts <= run.ts + run.dur);
    if (r < 0) continue;
    const kind = `${e.name.includes('/lora_') ? 'LoRA ' : ''}${e.args.op_name}`;
    perRun[r]!.set(kind, (perRun[r]!.get(kind) ?? 0) + e.dur / 1000);
  }
  for (const [i, c] of cases.entries()) {
    const sum = new Map<string, number>();
    let n = 0;
    for (let r = cases.length + i; r < perRun.length; r += cases.length, n++) for (const [k, v] of perRun[r]!) sum.set(k, (sum.get(k) ?? 0) + v);
    const rows = [...sum].map(([k, v]) => [k, v / n] as const).sort((a, b) => b[1] - a[1]);
    const total = rows.reduce((a, [, v]) => a + v, 0);
    console.log(`profile: ${c.name} (node time ${total.toFixed(1)} ms/step, ${n} steps)`);
    for (const [k, v] of rows.slice(0, 14)) console.log(`  ${k.padEnd(36)} ${v.toFixed(2).padStart(8)} ms`);
  }
}

await measure(false);
if (process.env.BENCH_PROFILE === '1') await measure(true);
