// `loraforge routers create|list|show|rm`: routers on a loraforge server (docs/ROUTERS.md). A router is a model
// that answers each request with the member nearest to the prompt; ask it by name like any model.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
// client/routers.js, not the client's index: this module loads at start-up, the HTTP client only when a command runs
import { whenUnsure, type RouterSummary } from '../../client/routers.js';
import { InvalidInputError } from '../../errors.js';
import { DEFAULT_BLEND_MARGIN, DEFAULT_BLEND_WEIGHT, DEFAULT_ROUTING_MARGIN, ROUTING_RULES, type RoutingRule } from '../../inference/engine/routing.js';
import { addServerOptions, clientFrom, printJson, table, type ServerOptions } from '../api-client.js';
import { choiceOption, integerOption, numberOption } from '../options.js';

type Common = ServerOptions & { json?: boolean };
type CreateFlags = { fallback?: string; blend?: number | true; rule?: RoutingRule; margin?: number; calibration?: number; prompts?: string; replace?: true };

function describe(r: RouterSummary): string {
  const members = r.members.map((m) => (m.category ? `${m.model} (${m.category})` : m.model)).join(', ');
  const calibration = `${r.calibration.source}, ${r.calibration.counts.join('/')} prompts`;
  return `${r.name}: routes to ${members}; when unsure: ${whenUnsure(r)}; rule ${r.rule}, margin ${r.margin}; calibrated on ${calibration}`;
}

/** `--prompts file.json`: {"member": ["prompt", ...], ...} */
async function readPrompts(file: string): Promise<Record<string, string[]>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new InvalidInputError(`--prompts ${file}: ${(err as Error).message} (expected {"member": ["prompt", ...]})`);
  }
  if (!parsed || typeof parsed !== 'object' || Object.values(parsed).some((v) => !Array.isArray(v) || v.some((p) => typeof p !== 'string'))) {
    throw new InvalidInputError(`--prompts ${file}: expected {"member": ["prompt", ...]}`);
  }
  return parsed as Record<string, string[]>;
}

export function routersCommand(program: Command): void {
  const routers = program.command('routers').description('routers: models that answer each request with their nearest member');

  addServerOptions(routers.command('create <name> <members...>').description('create a router over adapters or merges (member or member:category)'))
    .option('--fallback <model>', 'a merge, an adapter or the base model answering when no member is clearly nearest')
    .option('--rule <rule>', 'routing feature: text (default), value-last, value-mid or logprobs', choiceOption('--rule', ROUTING_RULES))
    .option('--blend [weight]', `instead of a fallback: the two nearest answer together, each update times this weight (default ${DEFAULT_BLEND_WEIGHT}), when none is clearly nearest`, numberOption('--blend'))
    .option('--margin <m>', `cosine lead the nearest member needs over the runner-up (default ${DEFAULT_BLEND_MARGIN} with a blend, else ${DEFAULT_ROUTING_MARGIN})`, numberOption('--margin'))
    .option('--calibration <n>', 'calibration prompts per member from the suites (default 5)', integerOption('--calibration', 1))
    .option('--prompts <file>', 'calibration prompts per member instead of the suites: {"member": ["prompt", ...]}')
    .option('--replace', 'replace a router of this name')
    .option('--json', 'print JSON')
    .action(async (name: string, memberArgs: string[], opts: Common & CreateFlags) => {
      const prompts = opts.prompts ? await readPrompts(opts.prompts) : null;
      const members = memberArgs.map((arg) => {
        const [model, category] = arg.split(':', 2) as [string, string | undefined];
        if (prompts && !prompts[model]) throw new InvalidInputError(`--prompts has no prompts for member ${model}`);
        return { model, ...(category ? { category } : {}), ...(prompts ? { prompts: prompts[model] } : {}) };
      });
      const client = await clientFrom(opts);
      const { status, router } = await client.routers.create({
        name,
        members,
        fallback: opts.fallback,
        ...(opts.blend !== undefined ? { blend: opts.blend === true ? DEFAULT_BLEND_WEIGHT : opts.blend } : {}),
        rule: opts.rule,
        margin: opts.margin,
        calibrationPerMember: opts.calibration,
        replace: opts.replace,
        createdBy: 'cli',
      });
      if (opts.json) printJson({ status, router });
      else process.stdout.write(`${status} ${describe(router)}\n`);
    });

  addServerOptions(routers.command('list').description('list routers'))
    .option('--json', 'print JSON')
    .action(async (opts: Common) => {
      const list = await (await clientFrom(opts)).routers.list();
      if (opts.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no routers (loraforge routers create <name> <members...>)\n');
      process.stdout.write(
        table([['NAME', 'MEMBERS', 'WHEN UNSURE', 'RULE'], ...list.map((r) => [r.name, r.members.map((m) => m.model).join(','), whenUnsure(r), r.rule])]),
      );
    });

  addServerOptions(routers.command('show <name>').description('one router'))
    .option('--json', 'print JSON')
    .action(async (name: string, opts: Common) => {
      const router = await (await clientFrom(opts)).routers.get(name);
      if (opts.json) printJson(router);
      else process.stdout.write(`${describe(router)}\n`);
    });

  addServerOptions(routers.command('rm <name>').description('remove a router (its members stay)')).action(async (name: string, opts: Common) => {
    const removed = await (await clientFrom(opts)).routers.remove(name);
    process.stdout.write(`removed router ${removed.name}\n`);
  });
}
