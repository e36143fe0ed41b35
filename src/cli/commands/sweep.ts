// `loraforge sweep [adapters...]`: search merge settings on a loraforge server and print the points ranked by the
// worst category's retention, with the command that keeps the best one; `loraforge sweeps show|wait|cancel|register|
// heatmap <id>` for sweeps already queued.
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { describeTune } from '../../client/describe-tune.js';
import type { SweepStatus } from '../../client/eval.js';
import { InvalidInputError } from '../../errors.js';
import type { SweepRequestInput } from '../../eval/requests.js';
import { DEFAULT_BUDGET } from '../../eval/tune-start.js';
import { listMethods, PRUNING_METHODS } from '../../merge/methods.js';
import { addServerOptions, clientFrom, printJson, table, type ServerOptions } from '../api-client.js';
import { formatRetention, integerOption } from '../options.js';
import { parseExperts, progressLine, readSuiteFiles } from './eval.js';

type Common = ServerOptions & { json?: boolean };
type Range = { min: number; max: number };

const collect = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

function num(flag: string, text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new InvalidInputError(`${flag}: "${text}" is not a number`);
  return n;
}

/** "0.1:0.9" is a range (random search); "0.2,0.5" a list. */
function parseRange(flag: string, values: string[]): Range | null {
  if (values.length !== 1 || !values[0]!.includes(':')) return null;
  const [min, max] = values[0]!.split(':');
  return { min: num(flag, min!), max: num(flag, max!) };
}

/** Densities: a list, or a range "lo:hi". */
export function parseDensities(values: string[] | undefined): number[] | Range | undefined {
  if (!values) return undefined;
  return parseRange('--density', values) ?? values.map((v) => num('--density', v));
}

/** Weights: each entry one weight for every adapter ("0.25") or one per adapter ("0.4/0.2/0.2/0.2"); or "lo:hi". */
export function parseWeights(values: string[] | undefined): Array<number | number[]> | Range | undefined {
  if (!values) return undefined;
  return parseRange('--weights', values) ?? values.map((v) => (v.includes('/') ? v.split('/').map((x) => num('--weights', x)) : num('--weights', v)));
}


/** " (of 24 asked: the space has only 10 distinct points)" when a random search ran out of distinct points. */
export function fewerPoints(status: Pick<SweepStatus, 'totalPoints' | 'requestedPoints'>): string {
  return status.requestedPoints > status.totalPoints
    ? ` (of ${status.requestedPoints} asked: the space has only ${status.totalPoints} distinct points)`
    : '';
}

export function formatSweep(status: SweepStatus): string {
  const categories = status.baseline?.categories ?? [];
  const done = status.ranking.filter((p) => p.state === 'completed');
  const failed = status.ranking.filter((p) => p.state === 'failed');
  let out = `${status.id} ${status.state}: ${status.ranking.length} of ${status.totalPoints} points (${status.search} over ${status.adapters.join(', ')})\n`;
  if (status.error) out += `  ${status.error.code}: ${status.error.message}\n`;
  if (done.length > 0) {
    const header = ['#', 'recipe', ...categories, 'worst', 'mean', 'adapter'];
    const rows = done.map((p, i) => [String(i + 1), p.label, ...categories.map((c) => formatRetention(p.categories?.[c]?.retention)), formatRetention(p.worstRetention), formatRetention(p.meanRetention), p.adapter ?? '']);
    out += `retention per category, best first (by the worst category, then the mean):\n${table([header, ...rows])}`;
  }
  for (const p of failed) out += `failed: ${p.label}: ${p.error?.code}: ${p.error?.message}\n`;
  if (status.baseline) {
    for (const expert of Object.values(status.baseline.experts)) if (expert.note) out += `note: ${expert.note}\n`;
  }
  if (status.tune) out += tuneLine(status.tune);
  if (status.best) out += `keep the best: loraforge sweeps register ${status.id} <name>\n`;
  return out;
}

/** A tuned sweep: the ranking above is on the tune part; the best point on the test part, which it never saw. */
function tuneLine(tune: NonNullable<SweepStatus['tune']>): string {
  const { search, test } = describeTune(tune, formatRetention);
  return `tuned by CMA-ES: ${search}\n${test ? `${test}\n` : ''}`;
}

async function finish(status: SweepStatus, opts: Common & { heatmap?: string; register?: string }, id: string): Promise<void> {
  const client = await clientFrom(opts);
  if (opts.json) printJson(status);
  else process.stdout.write(formatSweep(status));
  if (opts.heatmap) {
    await writeFile(opts.heatmap, await client.sweeps.heatmap(id));
    if (!opts.json) process.stderr.write(`heat map written to ${opts.heatmap}\n`);
  }
  if (opts.register && status.state === 'completed' && status.best) {
    const kept = await client.sweeps.register(id, { name: opts.register });
    if (!opts.json) process.stdout.write(`registered ${kept.point.label} as ${kept.adapter.name} (${kept.status})\n`);
  }
  if (status.state === 'failed' || status.state === 'cancelled') process.exitCode = 2;
}

export function sweepCommand(program: Command): void {
  addServerOptions(
    program
      .command('sweep [adapters...]')
      .description('search merge settings (method, density, weights, rank) for the recipe that keeps every skill (default adapters: the category experts)'),
  )
    .option('--method <list>', 'methods to try (default linear,ties,dare_ties)', collect)
    .option('--density <list>', `densities for ${listMethods(PRUNING_METHODS)}, e.g. 0.2,0.5 or 0.1:0.9 with --random (default 0.3,0.6)`, collect)
    .option('--weights <list>', 'weights: 0.25 (every adapter) or 0.4/0.2/0.2/0.2 (one each), comma-separated; lo:hi with --random (default 1/n,2/n)', collect)
    .option('--rank <list>', 'ranks of the result to try', collect)
    .option('--random <n>', 'random search: try n distinct points of the space instead of the whole grid (all of them when it has fewer)', integerOption('--random', 1))
    .option('--tune <optimizer>', 'tune the weights instead of a grid: cmaes (maximises the worst retention on the suites\' tune part, calibration and dev, and reports the best on the test part)')
    .option('--budget <n>', `with --tune: merges to evaluate (default ${DEFAULT_BUDGET})`, integerOption('--budget', 1))
    .option('--per-layer', 'with --tune: a weight per adapter per layer group (early, middle, late blocks)')
    .option('--layer-groups <n>', 'with --per-layer: groups of blocks (default 3)', integerOption('--layer-groups', 1))
    .option('--seed <n>', 'random search or --tune seed (same seed, same points)', integerOption('--seed'))
    .option('--space <space>', 'merge space for every point: delta (default) or factors')
    .option('--max-points <n>', 'refuse a grid larger than this (default 64)', integerOption('--max-points', 1))
    .option('--suite <names>', 'suites of the server to score on (default: all)', collect)
    .option('--suite-file <path>', 'a local JSONL suite file or directory (repeatable)', collect)
    .option('--expert <category=adapter>', 'the expert of a category', collect)
    .option('--format <format>', 'chat (default) or raw')
    .option('--heatmap <file.png>', 'write the retention heat map to this file at the end')
    .option('--register <name>', 'register the best merge under this name at the end')
    .option('--no-wait', 'return once queued')
    .option('--json', 'print JSON')
    .action(async (adapters: string[], opts: Common & Record<string, unknown>) => {
      const client = await clientFrom(opts);
      const list = (v: unknown) => v as string[] | undefined;
      if (opts.tune !== undefined && opts.tune !== 'cmaes') throw new InvalidInputError(`--tune: "${String(opts.tune)}" is not an optimizer; use cmaes`);
      if (opts.tune !== undefined && opts.random !== undefined) throw new InvalidInputError('--tune and --random are two searches: give one');
      if (opts.tune === undefined && (opts.budget !== undefined || opts.perLayer !== undefined || opts.layerGroups !== undefined)) {
        throw new InvalidInputError('--budget, --per-layer and --layer-groups go with --tune cmaes');
      }
      const request = {
        ...(adapters.length ? { adapters } : {}),
        search: opts.tune !== undefined ? 'cmaes' : opts.random !== undefined ? 'random' : 'grid',
        budget: opts.budget,
        perLayer: opts.perLayer === true ? true : undefined,
        layerGroups: opts.layerGroups,
        space: {
          method: list(opts.method),
          density: parseDensities(list(opts.density)),
          weights: parseWeights(list(opts.weights)),
          rank: list(opts.rank)?.map((r) => num('--rank', r)),
        },
        samples: opts.random,
        seed: opts.seed,
        options: opts.space ? { space: opts.space } : {},
        maxPoints: opts.maxPoints,
        ...(list(opts.suite) ? { suites: list(opts.suite) } : {}),
        items: await readSuiteFiles(list(opts.suiteFile)),
        experts: parseExperts(list(opts.expert)),
        format: opts.format,
      } as SweepRequestInput;
      let status = await client.sweeps.create(request);
      if (!opts.json) process.stderr.write(`queued ${status.id}: ${status.totalPoints} points${fewerPoints(status)}\n`);
      if (opts.wait !== false) {
        status = await client.sweeps.wait(status.id, (event) => {
          const line = progressLine(event);
          if (line && !opts.json) process.stderr.write(`${line}\n`);
        });
      }
      await finish(status, opts as Common & { heatmap?: string; register?: string }, status.id);
    });

  const sweeps = program.command('sweeps').description('sweeps queued on a loraforge server');
  addServerOptions(sweeps.command('show <id>').description('points scored so far, ranked'))
    .option('--json', 'print JSON')
    .action(async (id: string, opts: Common) => finish(await (await clientFrom(opts)).sweeps.get(id), opts, id));
  addServerOptions(sweeps.command('wait <id>').description('follow a sweep to its end'))
    .option('--heatmap <file.png>', 'write the retention heat map to this file')
    .option('--register <name>', 'register the best merge under this name at the end')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: Common & { heatmap?: string; register?: string }) => {
      const status = await (await clientFrom(opts)).sweeps.wait(id, (event) => {
        const line = progressLine(event);
        if (line && !opts.json) process.stderr.write(`${line}\n`);
      });
      await finish(status, opts, id);
    });
  addServerOptions(sweeps.command('cancel <id>').description('cancel a sweep (merges already queued finish)')).action(async (id: string, opts: Common) => {
    process.stdout.write(formatSweep(await (await clientFrom(opts)).sweeps.cancel(id)));
  });
  addServerOptions(sweeps.command('register <id> <name>').description("register the sweep's best merge (or --point's) under a name"))
    .option('--point <index>', 'a point index instead of the best', integerOption('--point'))
    .option('--description <text>', 'what the merge is for')
    .option('--replace', 'replace other content registered under the name')
    .option('--json', 'print JSON')
    .action(async (id: string, name: string, opts: Common & { point?: number; description?: string; replace?: boolean }) => {
      const kept = await (await clientFrom(opts)).sweeps.register(id, { name, point: opts.point, description: opts.description, replace: opts.replace === true });
      if (opts.json) printJson(kept);
      else process.stdout.write(`registered ${kept.point.label} (point ${kept.point.index}) as ${kept.adapter.name} (${kept.status})\n`);
    });
  addServerOptions(sweeps.command('heatmap <id> <file>').description('write the retention heat map of a sweep (PNG)')).action(
    async (id: string, file: string, opts: Common) => {
      await writeFile(file, await (await clientFrom(opts)).sweeps.heatmap(id));
    },
  );
}
