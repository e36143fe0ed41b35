// npm run bench:vs-llamacpp: loraforge's engine beside llama.cpp on the same checkpoint, sample by sample.
// Needs LLAMA_BENCH (the llama-bench binary) and LLAMA_GGUF (a GGUF of the checkpoint loraforge serves here, e.g.
// Q4_0 for our int4); skips with a message otherwise. llama-batched-bench (LLAMA_BATCHED_BENCH, default: beside
// llama-bench) gives llama.cpp's parallel sequences when present. How the reference GGUF and build were made:
// ../shared/docs/reference/llamacpp-side-by-side.md (converter, `llama-quantize --pure`, build flags).
//
// Our side serves LORAFORGE_CHECKPOINT (an HF checkpoint dir; default the Llama-3.2-1B-shaped random checkpoint
// of bench:serve, data/bench/llama-1b-shaped) built to int4, with four rank-16 q/k/v/o adapters. Each round runs,
// interleaved: decode at batch 1 (64 tokens from a 1-token prompt; ours on the base model and on an adapter),
// prefill of 128 tokens, and 4 parallel streams (ours on 4 different adapters). A sample counts only when the
// machine was otherwise idle: /proc/stat before and after, minus this process's and its children's own CPU time;
// when others used more than 10% of one core it is taken again (BENCH_IDLE_TRIES, default 3, then kept and
// flagged). Medians of BENCH_ROUNDS (default 5) and the ratios; memory read bandwidth of the same sitting.
// Settings: LORAFORGE_DATA_DIR (default ./data), LLAMA_THREADS (default: every core, as ours).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildModel } from '../src/inference/builder/index.js';
import type { Delta, GenerateRequest, InferenceEngine } from '../src/inference/engine/index.js';
import { readBandwidth } from './bandwidth.js';
import { startBenchEngine } from './engine.js';
import { ADAPTER_NAMES, ensureBenchCheckpoint } from './llama-1b-shaped.js';

const LLAMA_BENCH = process.env.LLAMA_BENCH;
const LLAMA_GGUF = process.env.LLAMA_GGUF;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const IDLE_TRIES = Number(process.env.BENCH_IDLE_TRIES ?? 3);
const THREADS = Number(process.env.LLAMA_THREADS ?? os.availableParallelism());
const dataDir = path.resolve(process.env.LORAFORGE_DATA_DIR ?? 'data');
const log = (line: string) => process.stderr.write(`${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

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

/** Busy CPU seconds of the whole machine (every state but idle and iowait), from /proc/stat. */
function machineBusySeconds(): number {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const n = values.map(Number);
  return (n.reduce((a, b) => a + b, 0) - n[3]! - n[4]!) / 100;
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
  const out = execFileSync(LLAMA_BENCH!, ['-m', LLAMA_GGUF!, '-t', String(THREADS), '-p', String(prompt), '-n', String(gen), '-r', '1', '-o', 'json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return (JSON.parse(out) as Array<{ avg_ts: number }>)[0]!.avg_ts;
}

/** llama-batched-bench: aggregate generation tokens/s of 4 parallel sequences (null when the tool is missing). */
function llamaParallel(): number | null {
  if (!existsSync(BATCHED)) return null;
  const args = ['-m', LLAMA_GGUF!, '-t', String(THREADS), '-c', '2048', '-b', '2048', '-ub', '512', '-npp', '16', '-ntg', '64', '-npl', '4', '--output-format', 'jsonl'];
  const out = execFileSync(BATCHED, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const row = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { pl: number; speed_tg: number })
    .find((r) => r.pl === 4);
  return row?.speed_tg ?? null;
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
  const from = Math.max(...runs.map((r) => r.times[0]!));
  const to = Math.min(...runs.map((r) => r.times[r.times.length - 1]!));
  const inside = runs.flatMap((r) => r.times).filter((t) => t > from && t <= to).length;
  return inside / ((to - from) / 1000);
}

async function main(): Promise<void> {
  const bench = await ensureBenchCheckpoint(path.join(dataDir, 'bench', 'llama-1b-shaped'), log);
  const checkpoint = process.env.LORAFORGE_CHECKPOINT ?? bench.checkpoint;
  const built = await buildModel(checkpoint, { dataDir, dtype: 'int4', targets: ['q', 'k', 'v', 'o'], maxRank: 64, slots: 8, heads: ['generate'] });
  const engine = await startBenchEngine(built.dir, bench.adapters.map((dir, i) => ({ dir, name: ADAPTER_NAMES[i]! })));
  const base = engine.modelId;
  const parallel = existsSync(BATCHED);
  const tests: Array<[string, (round: number) => Promise<number> | number]> = [];
  const results = new Map<string, Sample[]>();
  const add = (name: string, fn: (round: number) => Promise<number> | number) => tests.push([name, fn]);
  add('llama.cpp decode', () => llamaBench(0, 64));
  add('loraforge decode, base', (r) => oursDecode(engine, base, r));
  add('loraforge decode, adapter', (r) => oursDecode(engine, ADAPTER_NAMES[0]!, r));
  add('llama.cpp prefill 128', () => llamaBench(128, 0));
  add('loraforge prefill 128', (r) => oursPrefill(engine, base, r));
  if (parallel) add('llama.cpp 4 sequences', () => llamaParallel() ?? NaN);
  add('loraforge 4 adapter streams', (r) => oursParallel(engine, 100 + r));
  if (!parallel) log(`no ${BATCHED}: the parallel-sequence comparison is left out (set LLAMA_BATCHED_BENCH)`);
  try {
    for (const name of ADAPTER_NAMES) await engine.generate(request(name, 4, 2, 1)); // loads every adapter into the pool
    await oursDecode(engine, base, 0);
    for (let round = 0; round < ROUNDS; round++) {
      log(`round ${round + 1} of ${ROUNDS}`);
      for (const [name, fn] of tests) {
        const s = await idleSample(() => fn(round));
        results.set(name, [...(results.get(name) ?? []), s]);
      }
    }
  } finally {
    await engine.close();
  }
  const bandwidth = await readBandwidth();
  const med = (name: string) => median(results.get(name)!.map((s) => s.value));
  const busy = [...results.values()].flat().filter((s) => s.others > 0.1).length;
  console.log(`\nloraforge int4 vs llama.cpp (${path.basename(LLAMA_GGUF!)}), ${THREADS} threads, medians of ${ROUNDS} interleaved rounds`);
  console.log(`read bandwidth ${(bandwidth / 1e9).toFixed(1)} GB/s; ${busy} of ${ROUNDS * tests.length} samples taken while others used > 10% of a core`);
  const rows: Array<[string, string, string]> = [
    ['decode, batch 1 (base)', 'llama.cpp decode', 'loraforge decode, base'],
    ['decode, batch 1 (rank-16 adapter)', 'llama.cpp decode', 'loraforge decode, adapter'],
    ['prefill, 128 tokens', 'llama.cpp prefill 128', 'loraforge prefill 128'],
    ['4 streams, aggregate', 'llama.cpp 4 sequences', 'loraforge 4 adapter streams'],
  ];
  console.log(`${'tok/s'.padEnd(36)}${'llama.cpp'.padStart(10)}${'loraforge'.padStart(11)}${'ratio'.padStart(8)}`);
  for (const [label, llama, ours] of rows) {
    const o = med(ours);
    const l = results.has(llama) ? med(llama) : null;
    const [lt, rt] = l === null ? ['–', '–'] : [l.toFixed(1), (o / l).toFixed(2)];
    console.log(`${label.padEnd(36)}${lt.padStart(10)}${o.toFixed(1).padStart(11)}${rt.padStart(8)}`);
  }
}

await main();
