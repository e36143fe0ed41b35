// npm run bench:tune — what tuning the merge weights buys on held-out items: the default sweep grid (linear, ties,
// dare_ties × densities × weights 1/n, 2/n) against CMA-ES over a weight per adapter and over a weight per adapter
// per layer group (3 groups), each point scored on the tune part (calibration and dev) and the test part of the
// suites (src/eval/split.ts). The grid's best point is chosen by its worst tune retention, as the tuned searches
// choose theirs; the figure is that point's worst-category retention on the test part (the grid's best on the test
// part itself, an upper bound for it, is printed too). Runs in-process (mergeAdapters, the engine's scoring), no
// queue or Redis: the same arithmetic as `loraforge sweep --tune cmaes` without its bookkeeping.
//
// TUNE_DEMO_DIR: a dir with base/ (HF checkpoint) and adapters/<category>/ (PEFT), default assets/demo;
// TUNE_SUITES_DIR: suites named by those categories (default config/suites); TUNE_BUDGET (default: the sweeps' own);
// TUNE_SEED.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Cmaes } from '../src/eval/cmaes.js';
import { itemsOfPart } from '../src/eval/split.js';
import { BUILTIN_SUITES_DIR, loadSuites } from '../src/eval/suite.js';
import { pointLabel, sweepPoints } from '../src/eval/sweep-space.js';
import { tuneOptions, tuneStart } from '../src/eval/tune.js';
import { DEFAULT_BUDGET, TUNE_BOUNDS } from '../src/eval/tune-start.js';
import type { TuneSpec } from '../src/eval/jobs.js';
import { readAdapter, writeAdapter, type LoraAdapter } from '../src/formats/peft.js';
import { buildModel } from '../src/inference/builder/index.js';
import { targetsOfAdapters } from '../src/inference/builder/adapter-targets.js';
import type { ResolvedAdapter } from '../src/inference/engine/index.js';
import { mergeAdapters } from '../src/merge/engine.js';
import { parseMergeOptions, type MergeOptions } from '../src/merge/options.js';
import { startBenchEngine } from './engine.js';
import { retentionScorer } from './retention.js';
import { log } from './log.js';

const demoDir = path.resolve(process.env.TUNE_DEMO_DIR ?? 'assets/demo');
const suitesDir = path.resolve(process.env.TUNE_SUITES_DIR ?? BUILTIN_SUITES_DIR);
const BUDGET = Number(process.env.TUNE_BUDGET ?? DEFAULT_BUDGET);
const SEED = Number(process.env.TUNE_SEED ?? 0);

interface Scored {
  label: string;
  options: MergeOptions;
  tune: number | null;
  test: number | null;
  testMean: number | null;
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'lf-bench-tune-'));
  const categories = (await readdir(path.join(demoDir, 'adapters'))).sort();
  const inputs: LoraAdapter[] = await Promise.all(categories.map((c) => readAdapter(path.join(demoDir, 'adapters', c))));
  const items = await loadSuites(categories, suitesDir);
  const tune = itemsOfPart(items, 'tune');
  const test = itemsOfPart(items, 'test');
  log(`${categories.length} skills (${categories.join(', ')}); ${tune.length} tune items, ${test.length} test items`);

  const targets = await targetsOfAdapters(categories.map((c) => path.join(demoDir, 'adapters', c)));
  const built = await buildModel(path.join(demoDir, 'base'), { dataDir: path.join(tmp, 'models'), maxRank: 256, slots: 4, targets });
  const served = new Map<string, ResolvedAdapter>();
  const serve = (name: string, dir: string) => served.set(name, { name, dir, key: `dir:${dir}`, baseModel: null, rank: null });
  categories.forEach((c) => serve(c, path.join(demoDir, 'adapters', c)));
  const engine = await startBenchEngine(built.dir, { resolve: async (n) => served.get(n) ?? null, list: async () => [...served.values()] });
  try {
    const retention = { tune: await retentionScorer(engine, tune, categories), test: await retentionScorer(engine, test, categories) };
    let k = 0;
    const evaluate = async (options: MergeOptions): Promise<Scored> => {
      const name = `point-${k++}`;
      const dir = path.join(tmp, 'merges', name);
      const merged = await mergeAdapters(inputs, options, { labels: categories });
      await writeAdapter(dir, merged.adapter);
      serve(name, dir);
      const d = await retention.tune(name);
      const t = await retention.test(name);
      served.delete(name);
      return { label: pointLabel(options), options, tune: d.worst, test: t.worst, testMean: t.mean };
    };
    const byTune = (xs: Scored[]) => [...xs].sort((a, b) => (b.tune ?? -Infinity) - (a.tune ?? -Infinity))[0]!;

    const grid: Scored[] = [];
    for (const options of sweepPoints({ search: 'grid', space: {}, options: {}, seed: 0, maxPoints: 64 }, categories.length)) grid.push(await evaluate(options));
    const gridBest = byTune(grid);
    const gridOracle = [...grid].sort((a, b) => (b.test ?? -Infinity) - (a.test ?? -Infinity))[0]!;
    log(`grid: ${grid.length} points; best by tune: ${gridBest.label} tune ${fmt(gridBest.tune)} test ${fmt(gridBest.test)}; best on test: ${gridOracle.label} ${fmt(gridOracle.test)}`);

    const tuned: Record<string, Scored> = {};
    for (const layerGroups of [null, 3]) {
      const spec: Pick<TuneSpec, 'base' | 'layerGroups'> = { base: parseMergeOptions({ method: 'linear', weights: categories.map(() => 1) }), layerGroups };
      const start = tuneStart(spec, categories.length);
      const es = new Cmaes({ mean: start.x0, sigma: start.sigma0, lower: TUNE_BOUNDS.lower, upper: TUNE_BOUNDS.upper, seed: SEED });
      const points: Scored[] = [];
      while (points.length < BUDGET) {
        const asked = es.ask().slice(0, BUDGET - points.length);
        const scored: Scored[] = [];
        for (const x of asked) scored.push(await evaluate(tuneOptions(spec, categories.length, x)));
        points.push(...scored);
        if (asked.length === es.popsize) es.tell(scored.map((p) => -(p.tune ?? -10)));
      }
      const best = byTune(points);
      const what = layerGroups ? 'cmaes per layer group (3)' : 'cmaes per adapter';
      tuned[what] = best;
      log(`${what}: ${points.length} points; best by tune: ${best.label} tune ${fmt(best.tune)} test ${fmt(best.test)}`);
    }

    const rows = [
      ['grid best by tune', gridBest],
      ['grid best on test (upper bound)', gridOracle],
      ...Object.entries(tuned),
    ] as const;
    process.stdout.write(`\n${categories.length} skills, ${tune.length} tune / ${test.length} test items, budget ${BUDGET}, seed ${SEED}\n`);
    process.stdout.write(`| search | recipe | worst tune | worst test | mean test | test gain over grid |\n|---|---|---|---|---|---|\n`);
    for (const [what, p] of rows) {
      const gain = p.test !== null && gridBest.test !== null ? (p.test - gridBest.test).toFixed(3) : 'n/a';
      process.stdout.write(`| ${what} | ${p.label} | ${fmt(p.tune)} | ${fmt(p.test)} | ${fmt(p.testMean)} | ${gain} |\n`);
    }
  } finally {
    await engine.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

const fmt = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));

await main();
