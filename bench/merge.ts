// npm run bench:merge [-- --quick] [-- --heavy] [-- --only <label substring>]
// Synthetic adapters at Llama-3-8B shapes (hidden 4096, kv 1024, 32 layers, r = 16 on q, k, v, o, 4 adapters,
// written as F32 files), merged by every method and space, each run in a fresh child process so its wall time
// (reading and writing included) and peak RSS are its own. Beside it, the wall time of the whole command a user
// types (`loraforge merge …` from the built dist/, run through bin/loraforge.js's shebang as a shell runs it,
// start-up included), run interleaved with the in-process runs.
// Baselines measured in the same run: the naive path PEFT's svd takes (form the dense ΔW and take a dense SVD,
// here Gram in ONNX Runtime + our float64 eigensolver, timed on one k_proj module and extrapolated to q/o_proj
// and the whole model), and for factors-space TIES PEFT's own rules in numpy (bench/peft-ties-reference.py, when
// /usr/bin/python3 has numpy; the product never needs Python).
// Machines are shared and noisy: compare the ratios, and the medians of several runs.
import { withoutOurTunables } from './user-env.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeAdapter, type LoraAdapter, type LoraModule } from '../src/formats/peft.js';
import { mergeToDirectory } from '../src/merge/index.js';
import { MatmulKernel } from '../src/merge/kernels/matmul.js';
import { symmetricEigen } from '../src/merge/kernels/eigen.js';
import { randomBits, streamKey } from '../src/merge/kernels/prng.js';
import { adapterConfig } from '../test/helpers/adapters.js';
import { median } from './stats.js';

const HIDDEN = 4096;
const KV = 1024;
const LAYERS = Number(process.env.BENCH_LAYERS ?? 32);
const RANK = 16;
const ADAPTERS = 4;
const TARGETS: [string, number, number][] = [
  ['q_proj', HIDDEN, HIDDEN],
  ['k_proj', KV, HIDDEN],
  ['v_proj', KV, HIDDEN],
  ['o_proj', HIDDEN, HIDDEN],
];

/** Uniform values in ±scale from the counter-based generator: fast and reproducible. */
function randomFill(n: number, seed: number, name: string, scale: number): Float32Array {
  const key = streamKey(seed, name, 0);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (randomBits(key, i) / 2147483648 - 1) * scale;
  return out;
}

function syntheticAdapter(seed: number): LoraAdapter {
  const modules = new Map<string, LoraModule>();
  for (let l = 0; l < LAYERS; l++)
    for (const [t, out, inn] of TARGETS) {
      const name = `model.layers.${l}.self_attn.${t}`;
      modules.set(name, {
        name,
        kind: 'linear',
        rank: RANK,
        alpha: 32,
        scaling: 2,
        inFeatures: inn,
        outFeatures: out,
        A: randomFill(RANK * inn, seed, `${name}.A`, Math.sqrt(3 / inn)),
        B: randomFill(out * RANK, seed, `${name}.B`, 0.01),
      });
    }
  return {
    config: adapterConfig({
      baseModel: 'meta-llama/Meta-Llama-3-8B',
      r: RANK,
      loraAlpha: 32,
      targetModules: TARGETS.map((t) => t[0]),
      raw: { peft_type: 'LORA', task_type: 'CAUSAL_LM', lora_dropout: 0.05 },
    }),
    modules,
    savedModules: new Map(),
    dtype: 'F32',
    warnings: [],
  };
}

interface Case {
  label: string;
  options: Record<string, unknown>;
  runs: number;
}

const weights = [0.25, 0.25, 0.25, 0.25];
const quick = process.argv.includes('--quick');
const heavy = process.argv.includes('--heavy');
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? process.argv[onlyArg + 1]! : null;
const CASES: Case[] = [
  ...(['linear', 'ties', 'dare_linear', 'dare_ties', 'magnitude_prune'] as const).map((method) => ({
    label: `factors ${method}`,
    options: { method, space: 'factors', weights, ...(method !== 'linear' && { density: 0.2 }) },
    runs: 3,
  })),
  { label: 'delta linear (cat form, r 64)', options: { method: 'linear', weights }, runs: 3 },
  { label: 'delta cat (r 64)', options: { method: 'cat', weights }, runs: 3 },
  { label: 'delta svd (r 64, lossless)', options: { method: 'svd', weights }, runs: 3 },
  { label: 'delta svd (r 16, truncated)', options: { method: 'svd', weights, rank: 16 }, runs: 3 },
  { label: 'delta ties (r 64)', options: { method: 'ties', weights: [1, 1, 1, 1], density: 0.2, rank: 64 }, runs: 1 },
  ...(heavy
    ? [
        { label: 'delta dare_ties (r 64)', options: { method: 'dare_ties', weights: [1, 1, 1, 1], density: 0.2, rank: 64 }, runs: 1 },
        { label: 'delta magnitude_prune (r 64)', options: { method: 'magnitude_prune', weights, density: 0.2, rank: 64 }, runs: 1 },
      ]
    : []),
]
  .filter((c) => !quick || !c.label.startsWith('delta ties'))
  .filter((c) => only === null || c.label.includes(only));

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'bin/loraforge.js');
const HAVE_DIST = existsSync(path.join(root, 'dist/bundle/main.js'));
const PYTHON = '/usr/bin/python3';

/** The command line a user types for a case's options. */
function cliArgs(dirs: string[], out: string, o: Record<string, unknown>): string[] {
  const args = ['merge', '--method', String(o.method), '--weights', (o.weights as number[]).join(','), '--out', out];
  if (o.space) args.push('--space', String(o.space));
  if (o.density !== undefined) args.push('--density', String(o.density));
  if (o.rank !== undefined) args.push('--rank', String(o.rank));
  return [...args, ...dirs];
}

/** What a user's shell gives the commands: bin/loraforge.js's shebang adds its own malloc settings, python none. */
const USER_ENV = withoutOurTunables();

/** Wall seconds of a whole command run as from the user's shell, from spawn to exit. */
function wallOf(command: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: USER_ENV });
  if (r.status !== 0) throw new Error(`${command} ${args.slice(0, 3).join(' ')} … exited ${r.status}: ${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

const numpyReady = spawnSync(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

/** Child: one merge, timed from reading to written, then its peak RSS. */
async function child(dirs: string[], out: string, options: Record<string, unknown>): Promise<void> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const report = await mergeToDirectory(dirs, out, options);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    JSON.stringify({
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
      perModule: report.timings.secondsPerModule,
      relError: report.diagnostics.overall.relError,
    }),
  );
}

/** Time of forming one module's dense ΔW = Σ c_i·B_i·A_i (what PEFT's svd path starts with). */
async function formDense(kernel: MatmulKernel, out: number, inn: number): Promise<{ seconds: number; dense: Float32Array }> {
  const t0 = performance.now();
  const dense = new Float32Array(out * inn);
  for (let i = 0; i < ADAPTERS; i++) {
    const b = randomFill(out * RANK, i, 'nb', 0.01);
    const a = randomFill(RANK * inn, i, 'na', 0.03);
    const d = (await kernel.gemm({ data: b, rows: out, cols: RANK }, { data: a, rows: RANK, cols: inn })).data;
    for (let j = 0; j < d.length; j++) dense[j] = dense[j]! + 0.25 * d[j]!;
  }
  return { seconds: (performance.now() - t0) / 1000, dense };
}

/**
 * The naive per-module cost: dense ΔW, then a dense SVD as the eigendecomposition of its smaller Gram (cheaper
 * than a true SVD, so the ratios below are conservative). k_proj is measured whole; q_proj's Gram and eigen
 * steps are extrapolated from k_proj's (×16 and ×64: the work is O(out²·in) and O(n³)).
 */
async function naiveBaseline(kernel: MatmulKernel): Promise<{ kv: number; q: number }> {
  const k = await formDense(kernel, KV, HIDDEN);
  let t = performance.now();
  const g = await kernel.gemm64({ data: k.dense, rows: KV, cols: HIDDEN }, { data: k.dense, rows: KV, cols: HIDDEN }, { transB: true });
  const gram = (performance.now() - t) / 1000;
  t = performance.now();
  symmetricEigen(g.data, KV);
  const eigen = (performance.now() - t) / 1000;
  const q = await formDense(kernel, HIDDEN, HIDDEN);
  return { kv: k.seconds + gram + eigen, q: q.seconds + 16 * gram + 64 * eigen };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    const { dirs, out, options } = JSON.parse(process.argv[3]!) as { dirs: string[]; out: string; options: Record<string, unknown> };
    await child(dirs, out, options);
    return;
  }
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'loraforge-bench-merge-'));
  try {
    console.log(`writing ${ADAPTERS} synthetic adapters: ${LAYERS} layers × q,k,v,o, r=${RANK}, F32 (${os.cpus().length} CPUs) …`);
    const dirs: string[] = [];
    for (let i = 0; i < ADAPTERS; i++) {
      const dir = path.join(tmp, `adapter-${i}`);
      await writeAdapter(dir, syntheticAdapter(i + 1), { dtype: 'F32' });
      dirs.push(dir);
    }

    console.log('naive baseline (dense ΔW + dense SVD) …');
    const kernel = new MatmulKernel();
    const naive = await naiveBaseline(kernel);
    await kernel.release();
    const naiveTotal = LAYERS * (2 * naive.q + 2 * naive.kv);
    console.log(`  per module: k_proj ${naive.kv.toFixed(2)} s (measured), q_proj ${naive.q.toFixed(1)} s (extrapolated); whole model ≈ ${naiveTotal.toFixed(0)} s`);

    if (!HAVE_DIST) console.log('(no dist/: `npm run build` first to time the whole `loraforge merge` command)');
    const self = fileURLToPath(import.meta.url);
    const rows: string[][] = [];
    for (const c of CASES) {
      const results: { seconds: number; cpuSeconds: number; maxRssMiB: number; perModule: number; relError: number | null }[] = [];
      const commandWalls: number[] = [];
      const numpyWalls: number[] = [];
      const ties = c.options.space === 'factors' && c.options.method === 'ties' && numpyReady;
      for (let run = 0; run < c.runs; run++) {
        const out = path.join(tmp, `out-${rows.length}-${run}`);
        const stdout = execFileSync(process.execPath, ['--import', 'tsx', self, '--child', JSON.stringify({ dirs, out, options: c.options })], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
          maxBuffer: 1 << 20,
        });
        results.push(JSON.parse(stdout));
        await rm(out, { recursive: true, force: true });
        if (HAVE_DIST) {
          commandWalls.push(wallOf(BIN, cliArgs(dirs, out, c.options))); // through its shebang, as a shell runs it
          await rm(out, { recursive: true, force: true });
        }
        if (ties) {
          const file = path.join(tmp, 'numpy.safetensors');
          const args = [path.join(root, 'bench/peft-ties-reference.py'), String(c.options.density), file, (c.options.weights as number[]).join(','), ...dirs];
          numpyWalls.push(wallOf(PYTHON, args));
          await rm(file, { force: true });
        }
      }
      const seconds = median(results.map((r) => r.seconds));
      const command = commandWalls.length ? median(commandWalls) : null;
      if (numpyWalls.length) {
        const np = median(numpyWalls);
        console.log(`  numpy (PEFT's ties rules, python3 wall, load and write included): ${np.toFixed(2)} s; loraforge merge command / numpy = ${command === null ? '–' : (command / np).toFixed(2)}`);
      }
      const row = [
        c.label,
        command === null ? '–' : command.toFixed(2),
        seconds.toFixed(2),
        median(results.map((r) => r.cpuSeconds)).toFixed(2),
        String(c.runs),
        Math.max(...results.map((r) => r.maxRssMiB)).toFixed(0),
        (naiveTotal / seconds).toFixed(0),
        median(results.map((r) => r.perModule)).toFixed(4),
        results[0]!.relError === null ? '–' : results[0]!.relError.toPrecision(3),
      ];
      rows.push(row);
      console.log(`  ${row.join('  ')}`);
    }
    console.log('\nmethod / space                 command s  wall s  CPU s  runs  peak RSS MiB  × faster than naive  s/module  relError vs ΔW*');
    for (const r of rows) {
      console.log(
        `${r[0]!.padEnd(32)}${r[1]!.padStart(8)}${r[2]!.padStart(8)}${r[3]!.padStart(7)}${r[4]!.padStart(6)}${r[5]!.padStart(14)}${r[6]!.padStart(21)}${r[7]!.padStart(10)}${r[8]!.padStart(17)}`,
      );
    }
    console.log('(command: the whole `loraforge merge` from the shell, start-up included; wall and CPU: in process, reading to written; medians; the machine may be shared, so compare ratios)');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
