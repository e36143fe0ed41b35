// `loraforge eval [models...]`: score models on the skill suites on a loraforge server and print perplexity, check
// pass rate and retention per category; `loraforge evals show|wait|cancel|heatmap <id>` for evals already queued.
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { EvalStatus, JobStreamEvent } from '../../client/eval.js';
import { InvalidInputError } from '../../errors.js';
import type { EvalReport } from '../../eval/report.js';
import type { EvalRequestInput } from '../../eval/requests.js';
import type { SuiteItem } from '../../eval/suite.js';
import { addServerOptions, clientFrom, printJson, table, type ServerOptions } from '../api-client.js';
import { formatRetention } from '../options.js';

type Common = ServerOptions & { json?: boolean };

const collect = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

/** `--expert code=my-coder` → {code: 'my-coder'} */
export function parseExperts(values: string[] | undefined): Record<string, string> | undefined {
  if (!values?.length) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const m = /^([^=]+)=(.+)$/.exec(v);
    if (!m) throw new InvalidInputError(`--expert takes category=adapter, e.g. --expert code=my-coder (got "${v}")`);
    out[m[1]!.trim()] = m[2]!.trim();
  }
  return out;
}

/** Items of local suite files or directories (sent inline; the server never reads the client's files). */
export async function readSuiteFiles(paths: string[] | undefined): Promise<SuiteItem[] | undefined> {
  if (!paths?.length) return undefined;
  const { loadSuitePath } = await import('../../eval/suite.js');
  const items: SuiteItem[] = [];
  for (const p of paths) items.push(...(await loadSuitePath(p)));
  return items;
}

export function progressLine(event: JobStreamEvent<unknown>): string | undefined {
  if (event.event !== 'progress') return undefined;
  const p = event.data;
  const points = p.points ? `point ${Math.min(p.points.done + 1, p.points.total)}/${p.points.total} ` : '';
  return `${points}${p.phase} ${p.done}/${p.total}`;
}

const PART_NAMES: Record<NonNullable<EvalReport['part']>, string> = {
  tune: 'the tune part of the suites (calibration and dev)',
  dev: 'the dev part of the suites',
  test: 'the test part of the suites',
  all: 'the whole suites',
};
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Perplexity in at most 6 characters: 4.73, 12.5, 873, 3.41e5 (a random model's are huge). */
export function formatPerplexity(p: number): string {
  if (p < 10) return p.toFixed(2);
  if (p < 100) return p.toFixed(1);
  if (p < 10_000) return p.toFixed(0);
  const [mantissa, exponent] = p.toExponential(2).split('e');
  return `${mantissa}e${Number(exponent)}`;
}

/** Per model one row; per category perplexity and retention (and the pass rate when checks ran). */
export function formatEvalReport(report: EvalReport): string {
  const header = ['model', 'kind', ...report.categories, 'worst', 'mean', 'ppl/token', 'tokens'];
  const rows = report.models.map((m) => [
    m.model,
    m.kind,
    ...report.categories.map((c) => {
      const s = m.categories[c]!;
      const pass = s.passRate === null ? '' : ` ${Math.round(s.passRate * 100)}%`;
      return `${formatPerplexity(s.perplexity)} (${formatRetention(s.retention)})${pass}`;
    }),
    formatRetention(m.overall.worstRetention),
    formatRetention(m.overall.meanRetention),
    // reports from before the token-weighted figures have none
    m.overall.tokenPerplexity === undefined ? 'n/a' : formatPerplexity(m.overall.tokenPerplexity),
    m.overall.tokens === undefined ? 'n/a' : String(m.overall.tokens),
  ]);
  const notes = report.categories
    .map((c) => report.experts[c]!)
    .filter((e) => e.note)
    .map((e) => `note: ${e.note}`);
  const undefinedRetention = new Set(report.models.flatMap((m) => Object.values(m.categories).map((s) => s.note).filter(Boolean)));
  const routing = Object.entries(report.routing ?? {}).map(
    ([router, r]) =>
      `routing of ${router}: ${Math.round(r.accuracy * 100)}% of ${plural(r.items, 'item')} to a member of their category` +
      ` (${Object.entries(r.perCategory).map(([c, a]) => `${c} ${Math.round(a * 100)}%`).join(', ')})${r.fallbacks ? `, ${r.fallbacks} to the fallback` : ''}${r.blends ? `, ${r.blends} to a blend of the two nearest` : ''}`,
  );
  const part = report.part ? `; scored ${PART_NAMES[report.part]}` : '';
  return (
    `perplexity (retention)${report.checks ? ' check pass rate' : ''} per category, item-weighted (each item's mean NLL ` +
    'per token averaged; retention uses it); ppl/token: token-weighted over all categories (total NLL / tokens); experts: ' +
    `${report.categories.map((c) => `${c}=${report.experts[c]?.model ?? 'none'}`).join(', ')}${part}\n` +
    table([header, ...rows]) +
    [...routing, ...notes, ...[...undefinedRetention].map((n) => `note: ${n}`)].map((n) => `${n}\n`).join('')
  );
}

function describe(status: EvalStatus): string {
  const suites = status.suites.length ? ` from ${status.suites.join(', ')}` : '';
  const models = status.models.length === 0 ? 'every adapter' : status.models.length <= 4 ? status.models.join(', ') : plural(status.models.length, 'model');
  // the report adds the base model and each category's expert, which the request need not name
  const head = `${status.id} ${status.state}: ${plural(status.items, 'item')}${suites}; asked for ${models}`;
  if (status.error) return `${head}\n  ${status.error.code}: ${status.error.message}\n`;
  if (status.report) return `${head}\n${formatEvalReport(status.report)}`;
  return `${head}\n`;
}

async function finish(status: EvalStatus, opts: Common & { heatmap?: string }, id: string): Promise<void> {
  if (opts.json) printJson(status);
  else process.stdout.write(describe(status));
  if (opts.heatmap && status.state === 'completed') {
    await writeFile(opts.heatmap, await (await clientFrom(opts)).evals.heatmap(id));
    if (!opts.json) process.stderr.write(`heat map written to ${opts.heatmap}\n`);
  }
  if (status.state === 'failed' || status.state === 'cancelled') process.exitCode = 2;
}

export function evalCommand(program: Command): void {
  addServerOptions(
    program
      .command('eval [models...]')
      .description('score models on skill suites: perplexity, check pass rate and retention per category (default: every registered adapter)'),
  )
    .option('--suite <names>', 'suites of the server to use, comma-separated or repeated (default: all)', collect)
    .option('--suite-file <path>', 'a local JSONL suite file or a directory of them (repeatable)', collect)
    .option('--expert <category=adapter>', 'the expert of a category (default: the adapter registered with it)', collect)
    .option('--format <format>', 'chat (prompt as a user turn, the default) or raw')
    .option('--checks', 'also generate answers and apply the items\' checks')
    .option('--part <part>', 'part of the suites to score: tune (calibration and dev), dev, test or all (default: test when a router is scored, else all)')
    .option('--max-tokens <n>', 'answer length for --checks (default 256)', Number)
    .option('--heatmap <file.png>', 'write the retention heat map to this file')
    .option('--no-wait', 'return once queued')
    .option('--json', 'print JSON')
    .action(async (models: string[], opts: Common & { suite?: string[]; suiteFile?: string[]; expert?: string[]; format?: string; checks?: boolean; part?: string; maxTokens?: number; heatmap?: string; wait?: boolean }) => {
      const client = await clientFrom(opts);
      const request = {
        ...(models.length ? { models } : {}),
        ...(opts.suite ? { suites: opts.suite } : {}),
        items: await readSuiteFiles(opts.suiteFile),
        experts: parseExperts(opts.expert),
        format: opts.format,
        checks: opts.checks === true,
        maxTokens: opts.maxTokens,
        part: opts.part,
      } as EvalRequestInput;
      let status = await client.evals.create(request);
      if (!opts.json) process.stderr.write(`queued ${status.id}\n`);
      if (opts.wait !== false) {
        status = await client.evals.wait(status.id, (event) => {
          const line = progressLine(event);
          if (line && !opts.json) process.stderr.write(`${line}\n`);
        });
      }
      await finish(status, opts, status.id);
    });

  const evals = program.command('evals').description('evals queued on a loraforge server');
  addServerOptions(evals.command('show <id>').description('status of an eval, and its report once completed'))
    .option('--json', 'print JSON')
    .action(async (id: string, opts: Common) => finish(await (await clientFrom(opts)).evals.get(id), opts, id));
  addServerOptions(evals.command('wait <id>').description('follow an eval to its end'))
    .option('--heatmap <file.png>', 'write the retention heat map to this file')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: Common & { heatmap?: string }) => {
      const status = await (await clientFrom(opts)).evals.wait(id, (event) => {
        const line = progressLine(event);
        if (line && !opts.json) process.stderr.write(`${line}\n`);
      });
      await finish(status, opts, id);
    });
  addServerOptions(evals.command('cancel <id>').description('cancel a queued or running eval')).action(async (id: string, opts: Common) => {
    process.stdout.write(describe(await (await clientFrom(opts)).evals.cancel(id)));
  });
  addServerOptions(evals.command('heatmap <id> <file>').description('write the retention heat map of a completed eval (PNG)')).action(
    async (id: string, file: string, opts: Common) => {
      await writeFile(file, await (await clientFrom(opts)).evals.heatmap(id));
    },
  );
}
