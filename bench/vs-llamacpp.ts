// npm run bench:vs-llamacpp: loraforge's engine beside llama.cpp on the same checkpoint, sample by sample.
// Needs LLAMA_BENCH (the llama-bench binary) and LLAMA_GGUF (a GGUF of the checkpoint loraforge serves here, e.g.
// Q4_0 for our int4); skips with a message otherwise. llama-batched-bench (LLAMA_BATCHED_BENCH, default: beside
// llama-bench) gives llama.cpp's parallel sequences when present. How the reference GGUF and build were made:
// ../shared/docs/reference/llamacpp-side-by-side.md (converter, `llama-quantize --pure`, build flags); the GGUF of
// this checkpoint: bench/llamacpp-gguf.py; the build, the figures and what differed here: docs/BENCHMARKS.md.
//
// Our side serves LORAFORGE_CHECKPOINT (an HF checkpoint dir; default the Llama-3.2-1B-shaped random checkpoint
// of bench:serve, data/bench/llama-1b-shaped) built to int4, with four rank-16 q/k/v/o adapters. Each round runs,
// interleaved: decode at batch 1 (64 tokens from a 1-token prompt; ours on the base model and on an adapter),
// prefill of 128 tokens, and 4 parallel streams (ours on 4 different adapters). A sample counts only when the
// machine was otherwise idle: /proc/stat before and after, minus this process's and its children's own CPU time;
// when others used more than 10% of one core it is taken again (BENCH_IDLE_TRIES, default 3, then kept and
// flagged). Medians of BENCH_ROUNDS (default 5), the ratios against the issue's targets, memory read bandwidth of
// the same sitting and each engine's decode as a share of its bound; every sample in bench/out/vs-llamacpp.json.
// Settings: LORAFORGE_DATA_DIR (default ./data), LLAMA_THREADS (default: every core, as ours), BENCH_VARIANT (engine
// settings as JSON, e.g. '{"spinning":true}': a second loraforge engine with them, sampled beside the first),
// BENCH_VARIANT_BUILD (build options as JSON, e.g. '{"int4BlockSize":128}': the second engine serves a build
// with them).
import { withoutOurTunables } from './user-env.js';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildModel, type BuildOptions } from '../src/inference/builder/index.js';
import type { Delta, GenerateRequest, InferenceEngine } from '../src/inference/engine/index.js';
import { readBandwidth } from './bandwidth.js';
import { startBenchEngine } from './engine.js';
import { ADAPTER_NAMES, SHAPE, ensureBenchCheckpoint } from './llama-1b-shaped.js';
import { batchedBenchRate, busySecondsOf, decodeBound, llamaBenchRate, streamsRate } from './llamacpp.js';
import { median } from './stats.js';
import { log } from './log.js';

const LLAMA_BENCH = process.env.LLAMA_BENCH;
const LLAMA_GGUF = process.env.LLAMA_GGUF;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const IDLE_TRIES = Number(process.env.BENCH_IDLE_TRIES ?? 3);
const THREADS = Number(process.env.LLAMA_THREADS ?? os.availableParallelism());
/** Engine settings of a second loraforge engine measured beside the first in every round, e.g. {"spinning":true}. */
const VARIANT = process.env.BENCH_VARIANT ? (JSON.parse(process.env.BENCH_VARIANT) as Parameters<typeof startBenchEngine>[2]) : null;
const VARIANT_BUILD = process.env.BENCH_VARIANT_BUILD ? (JSON.parse(process.env.BENCH_VARIANT_BUILD) as Partial<BuildOptions>) : null;
const dataDir = path.resolve(process.env.LORAFORGE_DATA_DIR ?? 'data');

if (!LLAMA_BENCH || !LLAMA_GGUF || !existsSync(LLAMA_BENCH) || !existsSync(LLAMA_GGUF)) {
  console.log(
    'bench:vs-llamacpp skipped: set LLAMA_BENCH to a llama-bench binary and LLAMA_GGUF to a GGUF of the checkpoint loraforge serves ' +
      '(LORAFORGE_CHECKPOINT, default the bench:serve checkpoint); see ../shared/docs/reference/llamacpp-side-by-side.md',
  );
  process.exit(0);
}
const BATCHED = process.env.LLAMA_BATCHED_BENCH ?? path.join(path.dirname(LLAMA_BENCH), 'llama-batched-bench');

/** CPU seconds of this process (all its threads) and of its waited-for children, from /proc/self/stat. */
function ownCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // utime, stime, cutime, cstime are fields 14-17 of stat(5), i.e. 11-14 after the command name
  return [11, 12, 13, 14].reduce((s, i) => s + Number(fields[i]), 0) / 100;
}

/** Busy CPU seconds of the whole machine, from /proc/stat. */
const machineBusySeconds = () => busySecondsOf(readFileSync('/proc/stat', 'utf8'));

/** Runs one of llama.cpp's tools as a user would (without loraforge's malloc settings), its stderr kept for the error when it fails. */
function runTool(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, env: withoutOurTunables() });
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? '').trim().split('\n').slice(-10).join('\n');
    throw new Error(`${path.basename(file)} ${args.join(' ')} failed: ${(e as Error).message}\n${stderr}`, { cause: e });
  }
}

interface Sample {
  value: number;
  /** others' CPU use during the sample, in cores */
  others: number;
}

/** Runs `fn` until the machine was otherwise idle during it (or IDLE_TRIES times), returning its value. */
async function idleSample(fn: () => Promise<number> | number): Promise<Sample> {
  let last: Sample | null = null;
  for (let t = 0; t < IDLE_TRIES; t++) {
    const [busy0, own0, t0] = [machineBusySeconds(), ownCpuSeconds(), performance.now()];
    const value = await fn();
    const wall = (performance.now() - t0) / 1000;
    const others = Math.max(0, machineBusySeconds() - busy0 - (ownCpuSeconds() - own0)) / wall;
    last = { value, others };
    if (others <= 0.1) break;
  }
  return last!;
}

/** llama-bench's mean tokens/s for one test (`-p P -n N`). */
function llamaBench(prompt: number, gen: number): number {
  return llamaBenchRate(runTool(LLAMA_BENCH!, ['-m', LLAMA_GGUF!, '-t', String(THREADS), '-p', String(prompt), '-n', String(gen), '-r', '1', '-o', 'json']));
}

/** llama-batched-bench: aggregate generation tokens/s of 4 parallel sequences (null when the tool is missing). */
function llamaParallel(): number | null {
  if (!existsSync(BATCHED)) return null;
  const args = ['-m', LLAMA_GGUF!, '-t', String(THREADS), '-c', '2048', '-b', '2048', '-ub', '512', '-npp', '16', '-ntg', '64', '-npl', '4', '--output-format', 'jsonl'];
  return batchedBenchRate(runTool(BATCHED, args), 4);
}

const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 300 + ((seed * 7919 + i * 104729) % 30000));
const request = (model: string, prompt: number, maxTokens: number, seed: number): GenerateRequest => ({
  model,
  input: { kind: 'ids', ids: ids(prompt, seed) },
  maxTokens,
  temperature: 0,
  ignoreEos: true,
});

/** Token arrival times of one generation. */
async function arrivals(engine: InferenceEngine, r: GenerateRequest): Promise<{ start: number; times: number[] }> {
  const start = performance.now();
  const times: number[] = [];
  await engine.generate(r, { onDelta: (d: Delta) => void (d.token !== null && times.push(performance.now())) });
  return { start, times };
}

/** Decode tokens/s after the first token (llama-bench's -n test starts from an empty context and times generation). */
async function oursDecode(engine: InferenceEngine, model: string, seed: number): Promise<number> {
  const { times } = await arrivals(engine, request(model, 1, 65, seed));
  return (times.length - 1) / ((times[times.length - 1]! - times[0]!) / 1000);
}

async function oursPrefill(engine: InferenceEngine, model: string, seed: number): Promise<number> {
  const { start, times } = await arrivals(engine, request(model, 128, 1, seed));
  return 128 / ((times[0]! - start) / 1000);
}

/** Aggregate tokens/s while four streams, one per adapter, all decode. */
async function oursParallel(engine: InferenceEngine, seed: number): Promise<number> {
  const runs = await Promise.all(ADAPTER_NAMES.map((name, i) => arrivals(engine, request(name, 16, 64, seed + i))));
  return streamsRate(runs.map((r) => r.times));
}

async function main(): Promise<void> {
  const bench = await ensureBenchCheckpoint(path.join(dataDir, 'bench', 'llama-1b-shaped'), log);
  const checkpoint = process.env.LORAFORGE_CHECKPOINT ?? bench.checkpoint;
  const layers = Number(JSON.parse(readFileSync(path.join(checkpoint, 'config.json'), 'utf8')).num_hidden_layers);
  const options: BuildOptions = { dataDir, dtype: 'int4', targets: ['q', 'k', 'v', 'o'], maxRank: 64, slots: 8, heads: ['generate'] };
  const built = await buildModel(checkpoint, options);
  const adapters = bench.adapters.map((dir, i) => ({ dir, name: ADAPTER_NAMES[i]! }));
  const engine = await startBenchEngine(built.dir, adapters);
  const altDir = VARIANT_BUILD ? (await buildModel(checkpoint, { ...options, ...VARIANT_BUILD })).dir : built.dir;
  const alt = VARIANT || VARIANT_BUILD ? await startBenchEngine(altDir, adapters, VARIANT ?? undefined) : null;
  const base = engine.modelId;
  const parallel = existsSync(BATCHED);
  const tests: Array<[string, (round: number) => Promise<number> | number]> = [];
  const results = new Map<string, Sample[]>();
  const add = (name: string, fn: (round: number) => Promise<number> | number) => tests.push([name, fn]);
  add('llama.cpp decode', () => llamaBench(0, 64));
  add('loraforge decode, base', (r) => oursDecode(engine, base, r));
  if (alt) add('variant decode, base', (r) => oursDecode(alt, base, r));
  add('loraforge decode, adapter', (r) => oursDecode(engine, ADAPTER_NAMES[0]!, r));
  add('llama.cpp prefill 128', () => llamaBench(128, 0));
  add('loraforge prefill 128', (r) => oursPrefill(engine, base, r));
  if (alt) add('variant prefill 128', (r) => oursPrefill(alt, base, r));
  if (parallel) add('llama.cpp 4 sequences', () => llamaParallel() ?? NaN);
  add('loraforge 4 adapter streams', (r) => oursParallel(engine, 100 + r));
  if (alt) add('variant 4 adapter streams', (r) => oursParallel(alt, 100 + r));
  if (!parallel) log(`no ${BATCHED}: the parallel-sequence comparison is left out (set LLAMA_BATCHED_BENCH)`);
  try {
    for (const e of alt ? [engine, alt] : [engine]) {
      for (const name of ADAPTER_NAMES) await e.generate(request(name, 4, 2, 1)); // loads every adapter into the pool
      await oursDecode(e, base, 0);
    }
    for (let round = 0; round < ROUNDS; round++) {
      log(`round ${round + 1} of ${ROUNDS}`);
      for (const [name, fn] of tests) {
        const s = await idleSample(() => fn(round));
        results.set(name, [...(results.get(name) ?? []), s]);
      }
    }
  } finally {
    await engine.close();
    await alt?.close();
  }
  const bandwidth = await readBandwidth();
  const med = (name: string) => median(results.get(name)!.map((s) => s.value));
  const busy = [...results.values()].flat().filter((s) => s.others > 0.1).length;
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`\nloraforge int4 vs llama.cpp (${path.basename(LLAMA_GGUF!)}), ${THREADS} threads, medians of ${ROUNDS} interleaved rounds`);
  console.log(`read bandwidth ${(bandwidth / 1e9).toFixed(1)} GB/s; ${busy} of ${ROUNDS * tests.length} samples taken while others used > 10% of a core; load average at the end ${load}`);
  // [label, llama.cpp test, our test, the issue's target ratio]
  const rows: Array<[string, string, string, number]> = [
    ['decode, batch 1 (base)', 'llama.cpp decode', 'loraforge decode, base', 1],
    ['decode, batch 1 (rank-16 adapter)', 'llama.cpp decode', 'loraforge decode, adapter', 1],
    ['prefill, 128 tokens', 'llama.cpp prefill 128', 'loraforge prefill 128', 1],
    ['4 streams, aggregate', 'llama.cpp 4 sequences', 'loraforge 4 adapter streams', 1.3],
  ];
  console.log(`${'tok/s'.padEnd(36)}${'llama.cpp'.padStart(10)}${'loraforge'.padStart(11)}${'ratio'.padStart(8)}${'target'.padStart(8)}`);
  const table = rows.map(([label, llama, ours, target]) => {
    const o = med(ours);
    const l = results.has(llama) ? med(llama) : null;
    const ratio = l === null ? null : o / l;
    const met = ratio === null ? '' : ratio >= target ? ' met' : ' missed';
    const [lt, rt] = l === null || ratio === null ? ['–', '–'] : [l.toFixed(1), ratio.toFixed(2)];
    console.log(`${label.padEnd(36)}${lt.padStart(10)}${o.toFixed(1).padStart(11)}${rt.padStart(8)}${`>= ${target}`.padStart(8)}${met}`);
    return { label, llamacpp: l, loraforge: o, ratio, target, met: ratio !== null && ratio >= target };
  });
  // decode bounds: every weight read once per token (the tied head once); llama.cpp's from the GGUF's size (Q4_0:
  // 4 bits + an fp16 scale per 32), ours from the shapes (4 bits + an fp32 scale per 32) for the bench checkpoint
  const llamaBound = decodeBound(statSync(LLAMA_GGUF!).size, bandwidth);
  const { hidden: d, heads, kvHeads, headDim, intermediate: im, vocab } = SHAPE;
  const oursBytes = (layers * (2 * d * heads * headDim + 2 * d * kvHeads * headDim + 3 * d * im) + vocab * d) * (0.5 + 4 / 32);
  const oursBound = process.env.LORAFORGE_CHECKPOINT ? null : decodeBound(oursBytes, bandwidth);
  const share = (x: number, bound: number | null) => (bound === null ? '–' : `${Math.round((100 * x) / bound)}%`);
  console.log(
    `decode as a share of its read-bandwidth bound: llama.cpp ${share(med('llama.cpp decode'), llamaBound)} (of ${llamaBound.toFixed(1)} tok/s), ` +
      `loraforge ${share(med('loraforge decode, base'), oursBound)}${oursBound === null ? '' : ` (of ${oursBound.toFixed(1)} tok/s)`}`,
  );
  if (alt) {
    const cmp = ([label, name]: [string, string]) => `${label} ${med(`variant ${name}`).toFixed(1)} vs ${med(`loraforge ${name}`).toFixed(1)} (${(med(`variant ${name}`) / med(`loraforge ${name}`)).toFixed(3)}x)`;
    const pairs: Array<[string, string]> = [['decode', 'decode, base'], ['prefill 128', 'prefill 128'], ['4 streams', '4 adapter streams']];
    console.log(`loraforge with ${JSON.stringify({ ...VARIANT, ...VARIANT_BUILD })} against the usual settings, tok/s: ${pairs.map(cmp).join('; ')}`);
  }
  const outDir = path.resolve('bench/out');
  mkdirSync(outDir, { recursive: true });
  const samples = Object.fromEntries([...results].map(([name, xs]) => [name, xs.map((x) => ({ value: +x.value.toFixed(2), others: +x.others.toFixed(3) }))]));
  writeFileSync(
    path.join(outDir, 'vs-llamacpp.json'),
    `${JSON.stringify({ at: new Date().toISOString(), gguf: LLAMA_GGUF, threads: THREADS, rounds: ROUNDS, bandwidthGBs: bandwidth / 1e9, variant: VARIANT, variantBuild: VARIANT_BUILD, busySamples: busy, load, llamaBound, oursBound, table, samples }, null, 2)}\n`,
  );
  console.log('written: bench/out/vs-llamacpp.json');
}

await main();
