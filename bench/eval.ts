// npm run bench:eval — scoring throughput of evals: 80 suite items of about 100 tokens, teacher-forced through the
// engine's score graph as an eval sends them (scoreItems: chunks of rows, two calls in flight), on the demo model
// and on a random-weight model with Llama-3.2-1B's shapes (int4; the serving benchmark's generator). Reports
// items per second on the base model alone and on base + four adapters (what an eval scores), and the share of the
// time spent outside ONNX Runtime: wall time minus the time inside session.run (tokenizing, thread messages,
// packing feeds, reducing outputs), over wall time.
//
// Baseline in the same run: the same passes through the scoring kernel in-process on pre-tokenized rows, i.e. what
// the engine path costs on top of ONNX Runtime itself. The machine is shared and noisy: every figure is a median
// of repetitions; read the ratios. The 1B-shaped model needs minutes per run on two cores, so by default it runs
// once on the base model only (BENCH_REPEATS_1B=3 BENCH_ADAPTERS_1B=1 for more).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scoreItems, type EvalEngine } from '../src/eval/evaluate.js';
import { loadSuites, type SuiteItem } from '../src/eval/suite.js';
import { buildModel } from '../src/inference/builder/index.js';
import { DEMO_SKILLS, makeDemoModel } from '../src/inference/demo.js';
import { openScoreRunner, planScorePasses, tokensForLogitBudget } from '../src/inference/engine/scorer.js';
import { LoraPool } from '../src/inference/engine/lora-pool.js';
import { loadServedModel } from '../src/inference/engine/served-model.js';
import { ModelTokenizer } from '../src/inference/tokenizer.js';
import { startBenchEngine } from './engine.js';
import { ADAPTER_NAMES, ensureBenchCheckpoint } from './llama-1b-shaped.js';
import { median } from './stats.js';
import { log } from './log.js';

const dataDir = path.resolve(process.env.LORAFORGE_DATA_DIR ?? 'data');
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
/** the 1B-shaped model takes minutes per run on two cores: one run, base model only, unless asked for more */
const REPEATS_1B = Number(process.env.BENCH_REPEATS_1B ?? 1);
const ADAPTERS_1B = process.env.BENCH_ADAPTERS_1B === '1';
const ITEMS = 80;
const TARGET_TOKENS = 100;

/** 80 suite items cut to about 100 tokens each (chat prompt + as much of the reference as fits). */
function benchItems(all: SuiteItem[], tokenizer: ModelTokenizer): SuiteItem[] {
  const out: SuiteItem[] = [];
  for (let i = 0; out.length < ITEMS; i++) {
    const item = all[i % all.length]!;
    const { ids, targetStart } = tokenizer.encodeForScoring({ kind: 'chat', messages: [{ role: 'user', content: item.prompt }] }, item.reference);
    const keep = Math.max(8, TARGET_TOKENS - targetStart);
    const reference = tokenizer.decode(ids.slice(targetStart, targetStart + keep));
    out.push({ ...item, id: `${item.id}#${out.length}`, reference });
  }
  return out;
}

interface Figures {
  model: string;
  meanTokens: number;
  rows: number;
  itemsPerSecond: number;
  rowsPerSecond: number;
  outsideOrtShare: number;
  passes: number;
  secondsPerPass: number;
  kernelItemsPerSecond: number;
}

async function measure(
  label: string,
  modelDir: string,
  adapters: Array<{ dir: string; name: string }>,
  options: { repeats: number; withAdapters: boolean; kernel: boolean },
): Promise<Figures[]> {
  const tokenizer = await ModelTokenizer.load(modelDir);
  const items = benchItems(await loadSuites(), tokenizer);
  const engine = await startBenchEngine(modelDir, adapters);
  const out: Figures[] = [];
  try {
    const sets = [[engine.modelId], ...(options.withAdapters ? [[engine.modelId, ...adapters.map((a) => a.name)]] : [])];
    for (const models of sets) {
      // the engine as an eval sees it, adding up the seconds its worker spent inside ONNX Runtime
      let inside = 0;
      let passes = 0;
      let tokens = 0;
      const counted: EvalEngine = {
        modelId: engine.modelId,
        generate: (request, hooks) => engine.generate(request, hooks),
        score: async (request, hooks) => {
          const result = await engine.score(request, hooks);
          inside += result.runSeconds;
          passes += result.passes;
          tokens += result.rows.reduce((n, row) => n + row.promptTokens + row.tokens, 0);
          return result;
        },
      };
      // warm-up: opens the score graph, loads the adapters, fills the tokenizer cache as an eval's first chunk would
      await scoreItems(counted, items.slice(0, 2), models, 'chat');
      const walls: number[] = [];
      const outside: number[] = [];
      const runPasses: number[] = [];
      for (let r = 0; r < options.repeats; r++) {
        [inside, passes, tokens] = [0, 0, 0];
        // new prompts each run: the engine tokenizes them afresh, as on an eval's first chunk of new items
        const fresh = items.map((item) => ({ ...item, prompt: `${item.prompt} (${r})` }));
        const t0 = performance.now();
        await scoreItems(counted, fresh, models, 'chat');
        const wall = (performance.now() - t0) / 1000;
        walls.push(wall);
        outside.push(1 - inside / wall);
        runPasses.push(passes);
      }
      const rows = items.length * models.length;
      const wall = median(walls);
      const figures: Figures = {
        model: `${label}, ${models.length === 1 ? 'base model' : `base + ${models.length - 1} adapters`}`,
        meanTokens: tokens / rows,
        rows,
        itemsPerSecond: ITEMS / wall,
        rowsPerSecond: rows / wall,
        outsideOrtShare: median(outside),
        passes: median(runPasses),
        kernelItemsPerSecond: models.length === 1 && options.kernel ? await kernelBaseline(modelDir, tokenizer, items, options.repeats) : NaN,
        secondsPerPass: (wall * (1 - median(outside))) / median(runPasses),
      };
      log(
        `${figures.model}: ${figures.rows} rows of ${figures.meanTokens.toFixed(0)} tokens in ${passes} passes: ` +
          `${figures.itemsPerSecond.toFixed(2)} items/s (${figures.rowsPerSecond.toFixed(1)} rows/s, ${figures.secondsPerPass.toFixed(3)} s per pass), ` +
          `outside ONNX Runtime ${(100 * figures.outsideOrtShare).toFixed(1)}%` +
          (!Number.isNaN(figures.kernelItemsPerSecond) ? `; kernel alone ${figures.kernelItemsPerSecond.toFixed(2)} items/s (engine/kernel ${(figures.itemsPerSecond / figures.kernelItemsPerSecond).toFixed(2)})` : ''),
      );
      out.push(figures);
    }
  } finally {
    await engine.close();
  }
  return out;
}

/** The same passes, pre-tokenized, through the scoring kernel in this thread: ONNX Runtime plus minimal feeds. */
async function kernelBaseline(modelDir: string, tokenizer: ModelTokenizer, items: SuiteItem[], repeats: number): Promise<number> {
  const { manifest, spec } = await loadServedModel(modelDir);
  const runner = await openScoreRunner(modelDir, manifest, { threads: 0, executionProvider: 'cpu', spinning: false });
  try {
    const rows = items.map((item) => ({ ...tokenizer.encodeForScoring({ kind: 'chat', messages: [{ role: 'user', content: item.prompt }] }, item.reference), slot: 0 }));
    const limits = { maxBatch: 64, maxTokens: Math.min(8192, tokensForLogitBudget(spec.vocabSize, 256 * 1024 ** 2)) };
    const passes = planScorePasses(rows.map((r) => r.ids.length), limits);
    const pool = new LoraPool(spec.sites, spec.slots, spec.maxRank);
    const run = async () => {
      for (const pass of passes) await runner.runOnPool(pass.map((i) => rows[i]!), pool);
    };
    await runner.runOnPool(passes[0]!.map((i) => rows[i]!), pool);
    const times: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      await run();
      times.push((performance.now() - t0) / 1000);
    }
    return ITEMS / median(times);
  } finally {
    await runner.release();
  }
}

async function main(): Promise<void> {
  const results: Figures[] = [];
  // the demo model
  const demoDir = path.join(dataDir, 'bench', 'eval-demo');
  if (!existsSync(path.join(demoDir, 'base', 'config.json'))) await makeDemoModel(demoDir);
  const demoBuilt = await buildModel(path.join(demoDir, 'base'), { dataDir });
  results.push(
    ...(await measure('demo model', demoBuilt.dir, DEMO_SKILLS.map((s) => ({ dir: path.join(demoDir, 'adapters', s), name: s })), {
      repeats: REPEATS,
      withAdapters: true,
      kernel: true,
    })),
  );

  // Llama-3.2-1B-shaped, int4
  const { checkpoint, adapters } = await ensureBenchCheckpoint(path.join(dataDir, 'bench', 'llama-1b-shaped'), log);
  let phase = '';
  const built = await buildModel(checkpoint, {
    dataDir,
    dtype: 'int4',
    maxRank: 64,
    slots: 8,
    onProgress: (p) => {
      if (p.phase !== phase) log(`building the 1B-shaped model: ${p.phase}`);
      phase = p.phase;
    },
  });
  results.push(
    ...(await measure('1B-shaped int4', built.dir, adapters.map((dir, i) => ({ dir, name: ADAPTER_NAMES[i]! })), {
      repeats: REPEATS_1B,
      withAdapters: ADAPTERS_1B,
      kernel: REPEATS_1B > 1,
    })),
  );

  const outDir = path.resolve('bench/out');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, 'eval.json'), `${JSON.stringify({ repeats: REPEATS, repeats1B: REPEATS_1B, items: ITEMS, results }, null, 2)}\n`);
  process.stdout.write(
    `\n| model | rows | tokens/row | items/s | rows/s | outside ORT | engine / kernel |\n|---|---|---|---|---|---|---|\n` +
      results
        .map(
          (r) =>
            `| ${r.model} | ${r.rows} | ${r.meanTokens.toFixed(0)} | ${r.itemsPerSecond.toFixed(2)} | ${r.rowsPerSecond.toFixed(1)} | ${(100 * r.outsideOrtShare).toFixed(1)}% | ${Number.isNaN(r.kernelItemsPerSecond) ? '' : (r.itemsPerSecond / r.kernelItemsPerSecond).toFixed(2)} |`,
        )
        .join('\n') +
      `\n(medians of ${REPEATS} runs, ${REPEATS_1B} for the 1B-shaped model; target: outside ORT < 15%)\n`,
  );
}

await main();
