// `loraforge merges create|show|cancel|wait`: merges queued on a loraforge server and run by its workers.
// (`loraforge merge` merges local directories in this process; `remoteMerge` is what its --server path calls.)
import os from 'node:os';
import type { Command } from 'commander';
import type { LoraforgeClient } from '../../client/index.js';
import type { MergeStreamEvent } from '../../client/merges.js';
import { InvalidInputError } from '../../errors.js';
import { DEFAULT_WEIGHTS_TEXT, defaultWeights, listMethods, MERGE_METHODS, PRUNING_METHODS, type MergeMethod } from '../../merge/methods.js';
import type { MergeRequestInput, MergeStatus } from '../../queue/types.js';
import { addServerOptions, clientFrom, printJson, type ServerOptions } from '../api-client.js';
import { formatRetention, integerOption, numberOption } from '../options.js';

type Common = ServerOptions & { json?: boolean };

function numberList(flag: string) {
  return (value: string): number[] => {
    const list = value.split(',').map((v) => Number(v.trim()));
    if (list.some((n) => !Number.isFinite(n))) throw new InvalidInputError(`${flag} takes numbers separated by commas, e.g. 0.5,0.5`);
    return list;
  };
}

const isMethod = (m: unknown): m is MergeMethod => (MERGE_METHODS as readonly unknown[]).includes(m);

/** The retention of a finished merge from its auto-eval (docs/eval.md#merges-measured-as-they-finish). */
function autoEvalLine(a: NonNullable<MergeStatus['autoEval']>): string {
  if (a.state === 'completed') {
    return `  skill retention (test part): worst ${formatRetention(a.worstRetention)}, mean ${formatRetention(a.meanRetention)}; ${a.categories.map((c) => `${c} ${formatRetention(a.retention?.[c])}`).join(', ')}`;
  }
  if (a.state === 'failed' || a.state === 'cancelled') return `  skill retention: the eval ${a.id} ${a.state}${a.error ? `: ${a.error}` : ''}`;
  return `  skill retention: being measured on the test part (\`loraforge evals wait ${a.id}\`)`;
}

function describe(status: MergeStatus): string {
  const head = `${status.id} ${status.state}: ${status.name} (${status.method} of ${status.adapters.map((a) => `${a.name}×${a.weight}`).join(', ')})`;
  if (status.error) return `${head}\n  ${status.error.code}: ${status.error.message}`;
  if (status.result) {
    const registered = `${head}\n  registered as ${status.result.name} (${status.result.status}, sha256 ${status.result.sha256.slice(0, 12)})`;
    return status.autoEval ? `${registered}\n${autoEvalLine(status.autoEval)}` : registered;
  }
  return head;
}

function progressLine(event: MergeStreamEvent): string | undefined {
  if (event.event !== 'progress') return undefined;
  const p = event.data;
  const eta = p.etaSeconds === null ? '' : `, about ${p.etaSeconds} s left`;
  return `${p.phase} ${p.done}/${p.total}${eta}`;
}

/** Queues a merge on the server and, unless `wait` is false, follows it to the end with progress on stderr. */
export async function remoteMerge(client: LoraforgeClient, request: MergeRequestInput, options: { wait?: boolean; json?: boolean } = {}): Promise<MergeStatus> {
  let status = await client.merges.create(request);
  if (!options.json) for (const warning of status.warnings ?? []) process.stderr.write(`warning: ${warning}\n`);
  if (!options.json) process.stderr.write(`${status.deduplicated ? 'same recipe as ' : 'queued '}${status.id}\n`);
  if (!options.json && status.deduplicated && request.name !== undefined && request.name !== status.name) {
    // the same recipe is queued or running under the earlier request's name
    process.stderr.write(`that merge is already under way and will be registered as ${status.name}; --name ${request.name} was not applied (ask again once it is done)\n`);
  }
  if (options.wait !== false && !['completed', 'failed', 'cancelled'].includes(status.state)) {
    status = await client.merges.wait(status.id, (event) => {
      const line = progressLine(event);
      if (line && !options.json) process.stderr.write(`${line}\n`);
    });
  }
  if (options.json) printJson(status);
  else process.stdout.write(`${describe(status)}\n`);
  if (status.state === 'failed' || status.state === 'cancelled') process.exitCode = 2;
  return status;
}

export function mergesCommand(program: Command): void {
  const merges = program.command('merges').description('merges queued on a loraforge server (run by its workers)');

  addServerOptions(merges.command('create <adapters...>').description('queue a merge of registered adapters and follow it'))
    .requiredOption('--method <method>', listMethods(MERGE_METHODS))
    .option('--weights <list>', `one weight per adapter, comma-separated (default: ${DEFAULT_WEIGHTS_TEXT})`, numberList('--weights'))
    .option('--density <d>', `share of entries kept (${listMethods(PRUNING_METHODS)}; default 0.2)`, numberOption('--density'))
    .option('--rank <r>', 'rank of the result', integerOption('--rank', 1))
    .option('--energy <e>', 'keep this share of the energy (0..1]', numberOption('--energy'))
    .option('--space <space>', 'delta (default) or factors (PEFT add_weighted_adapter)')
    .option('--seed <n>', 'seed of DARE masks and randomized SVD', integerOption('--seed'))
    .option('--dtype <dtype>', 'F32, F16 or BF16')
    .option('--name <name>', 'name of the result (default: <method>-<recipe hash>)')
    .option('--description <text>', 'what the merge is for')
    .option('--replace', 'replace other content registered under --name')
    .option('--no-wait', 'return once queued')
    .option('--json', 'print JSON')
    .action(async (adapters: string[], opts: Common & Record<string, unknown>) => {
      const request = {
        adapters,
        method: opts.method,
        // an unknown method gets no default: the API names the methods it takes
        weights: (opts.weights as number[] | undefined) ?? (isMethod(opts.method) ? defaultWeights(opts.method, adapters.length) : undefined),
        density: opts.density,
        rank: opts.rank,
        energy: opts.energy,
        space: opts.space,
        seed: opts.seed,
        dtype: opts.dtype,
        name: opts.name,
        description: opts.description,
        replace: opts.replace === true,
        registeredBy: os.userInfo().username,
      } as MergeRequestInput;
      await remoteMerge(await clientFrom(opts), request, { wait: opts.wait !== false, json: opts.json });
    });

  addServerOptions(merges.command('show <id>').description('status of a merge'))
    .option('--json', 'print JSON')
    .action(async (id: string, opts: Common) => {
      const status = await (await clientFrom(opts)).merges.get(id);
      if (opts.json) printJson(status);
      else process.stdout.write(`${describe(status)}\n`);
    });

  addServerOptions(merges.command('wait <id>').description('follow a merge to its end'))
    .option('--json', 'print JSON')
    .action(async (id: string, opts: Common) => {
      const status = await (await clientFrom(opts)).merges.wait(id, (event) => {
        const line = progressLine(event);
        if (line && !opts.json) process.stderr.write(`${line}\n`);
      });
      if (opts.json) printJson(status);
      else process.stdout.write(`${describe(status)}\n`);
      if (status.state !== 'completed') process.exitCode = 2;
    });

  addServerOptions(merges.command('cancel <id>').description('cancel a queued or running merge'))
    .action(async (id: string, opts: Common) => {
      const status = await (await clientFrom(opts)).merges.cancel(id);
      process.stdout.write(`${describe(status)}\n`);
    });
}
