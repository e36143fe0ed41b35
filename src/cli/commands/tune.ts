// `loraforge tune <adapters...>`: per-adapter weights of an exact linear merge tuned by CMA-ES (as LoraHub does) to
// maximise the worst skill's retention on the suites' tune part (calibration and dev), then the best reported on the
// test part. Each evaluation is a merge queued on the server (registered as `<name>-<k>`, its recipe holding its
// weights) and an eval of it on the tune part. Budget in evaluations; one progress line per evaluation on stderr.
// With --state, every evaluation is recorded in a local JSON file and a rerun replays them (CMA-ES is deterministic
// given its seed and scores), so a search cut short resumes where it stopped. Per-layer weights: `sweep --tune cmaes
// --per-layer`, the same search as a server job.
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { LoraforgeClient } from '../../client/index.js';
import { InvalidInputError } from '../../errors.js';
import { Cmaes } from '../../eval/cmaes.js';
import { DEFAULT_BUDGET, startStep, TUNE_BOUNDS } from '../../eval/tune-start.js';
import { addServerOptions, clientFrom, printJson, type ServerOptions } from '../api-client.js';
import { formatRetention, integerOption } from '../options.js';

interface Evaluation {
  k: number;
  weights: number[];
  merge: string;
  /** worst retention on the tune part (null: undefined for every category) */
  worst: number | null;
}

interface TuneState {
  adapters: string[];
  seed: number;
  evaluations: Evaluation[];
}

const round = (v: number) => Math.round(v * 1000) / 1000;
/** CMA-ES minimises: the negated worst retention, an undefined one as bad as it gets */
const loss = (worst: number | null) => (worst === null ? 1e6 : -worst);

async function readState(file: string | undefined, adapters: string[], seed: number): Promise<TuneState> {
  if (!file || !existsSync(file)) return { adapters, seed, evaluations: [] };
  const state = JSON.parse(await readFile(file, 'utf8')) as TuneState;
  if (state.adapters.join(',') !== adapters.join(',') || state.seed !== seed) {
    throw new InvalidInputError(`--state ${file} records a search of ${state.adapters.join(', ')} with seed ${state.seed}: use another file to start a new one`);
  }
  return state;
}

async function writeState(file: string | undefined, state: TuneState): Promise<void> {
  if (!file) return;
  await writeFile(`${file}.tmp`, JSON.stringify(state, null, 2));
  await rename(`${file}.tmp`, file);
}

async function worstRetention(client: LoraforgeClient, model: string, suites: string[] | undefined, part: 'tune' | 'test'): Promise<number | null> {
  const queued = await client.evals.create({ models: [model], part, ...(suites ? { suites } : {}) });
  const done = await client.evals.wait(queued.id);
  if (done.state !== 'completed' || !done.report) throw new InvalidInputError(`the eval of ${model} ${done.state}: ${done.error?.message ?? 'no report'}`);
  return done.report.models.find((m) => m.model === model)!.overall.worstRetention;
}

async function evaluate(client: LoraforgeClient, adapters: string[], weights: number[], name: string, suites: string[] | undefined): Promise<{ merge: string; worst: number | null }> {
  // `tune:` tells the server this merge is scored by the search (no auto-eval of its own)
  let status = await client.merges.create({ adapters, method: 'linear', weights, name, description: `loraforge tune: ${weights.join(', ')}`, registeredBy: `tune:${name}` });
  if (!['completed', 'failed', 'cancelled'].includes(status.state)) status = await client.merges.wait(status.id);
  if (status.state !== 'completed' || !status.result) throw new InvalidInputError(`the merge ${name} ${status.state}: ${status.error?.message ?? 'no result'}`);
  return { merge: status.result.name, worst: await worstRetention(client, status.result.name, suites, 'tune') };
}

export function tuneCommand(program: Command): void {
  addServerOptions(
    program
      .command('tune <adapters...>')
      .description('tune per-adapter weights of a linear merge by CMA-ES: worst retention on the tune part (calibration and dev), reported on the test part'),
  )
    .requiredOption('--name <prefix>', 'evaluated merges are registered as <prefix>-<k>')
    .option('--budget <n>', `evaluations (a merge and an eval of the tune part each; default ${DEFAULT_BUDGET})`, integerOption('--budget', 1))
    .option('--suite <names>', 'suites to score on, comma-separated (default: all)', (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .option('--seed <n>', 'seed of the search (default 0)', integerOption('--seed'))
    .option('--state <file.json>', 'record every evaluation here; a rerun with the same file resumes')
    .option('--json', 'print JSON')
    .action(async (adapters: string[], opts: ServerOptions & { name: string; budget?: number; suite?: string[]; seed?: number; state?: string; json?: boolean }) => {
      if (adapters.length < 2) throw new InvalidInputError('tune needs two or more adapters');
      const budget = opts.budget ?? DEFAULT_BUDGET;
      const seed = opts.seed ?? 0;
      const client = await clientFrom(opts);
      const state = await readState(opts.state, adapters, seed);
      const es = new Cmaes({ mean: adapters.map(() => 1 / adapters.length), sigma: startStep(1 / adapters.length), ...TUNE_BOUNDS, seed });
      let k = 0;
      let best: Evaluation | null = null;
      while (k < budget) {
        const candidates = es.ask();
        const losses: number[] = [];
        for (const candidate of candidates) {
          if (k >= budget) break;
          const weights = candidate.map(round);
          let e = state.evaluations[k];
          const recorded = e !== undefined && e.weights.join(',') === weights.join(',');
          if (!recorded) {
            e = { k, weights, ...(await evaluate(client, adapters, weights, `${opts.name}-${k}`, opts.suite)) };
            state.evaluations[k] = e;
            state.evaluations.length = k + 1;
            await writeState(opts.state, state);
          }
          if (!best || loss(e!.worst) < loss(best.worst)) best = e!;
          losses.push(loss(e!.worst));
          if (!opts.json) process.stderr.write(`eval ${k + 1}/${budget}: ${weights.join(', ')} → worst retention ${formatRetention(e!.worst, 3)}${recorded ? ' (recorded)' : ''}; best ${best.merge}\n`);
          k++;
        }
        if (losses.length === candidates.length) es.tell(losses);
      }
      const test = await worstRetention(client, best!.merge, opts.suite, 'test');
      const result = { best: best!.merge, weights: best!.weights, tuneWorstRetention: best!.worst, testWorstRetention: test, evaluations: k };
      if (opts.json) printJson(result);
      else {
        process.stdout.write(`best ${result.best}: weights ${result.weights.join(', ')}; worst retention ${formatRetention(result.tuneWorstRetention, 3)} on the tune part, ${formatRetention(test, 3)} on test\n`);
      }
    });
}
