// `loraforge adapters list|show|register|rm|compatible`: the registry through the API.
import os from 'node:os';
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import { addServerOptions, clientFrom, printJson, table, type ServerOptions } from '../api-client.js';
import { formatBytes } from '../options.js';
import type { AdapterDetail } from '../../registry/types.js';

type Common = ServerOptions & { json?: boolean };

export function adaptersCommand(program: Command): void {
  const adapters = program.command('adapters').description('registered adapters (through the API)');

  addServerOptions(adapters.command('list').description('list registered adapters'))
    .option('--category <category>', 'only this skill category')
    .option('--json', 'print JSON')
    .action(async (opts: Common & { category?: string }) => {
      const list = await (await clientFrom(opts)).adapters.list({ category: opts.category });
      if (opts.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no adapters registered (loraforge adapters register <dir> --name <name>)\n');
      process.stdout.write(
        table([
          ['NAME', 'BASE MODEL', 'RANK', 'MODULES', 'SIZE', 'CATEGORY', 'SHA256'],
          ...list.map((a) => [a.name, a.baseModel ?? '?', String(a.rank), String(a.modules), formatBytes(a.bytes), a.category ?? '', a.sha256.slice(0, 12)]),
        ]),
      );
    });

  addServerOptions(adapters.command('show <name>').description('one adapter: facts, and for a merge its recipe and diagnostics'))
    .option('--json', 'print JSON')
    .action(async (name: string, opts: Common) => {
      const a = await (await clientFrom(opts)).adapters.get(name);
      if (opts.json) return printJson(a);
      process.stdout.write(describeAdapter(a));
    });

  addServerOptions(
    adapters
      .command('register <path>')
      .description('register a PEFT adapter: a local dir or .zip/.tar.gz (uploaded), or with --server-path a dir under the server\'s import dir'),
  )
    .requiredOption('--name <name>', 'unique slug, e.g. linux-commands')
    .option('--description <text>', 'what it does')
    .option('--category <category>', 'skill category')
    .option('--replace', 'replace other content registered under this name')
    .option('--server-path', '<path> is on the server, under its import dir (nothing is uploaded)')
    .option('--json', 'print JSON')
    .action(async (p: string, opts: Common & { name: string; description?: string; category?: string; replace?: boolean; serverPath?: boolean }) => {
      const client = await clientFrom(opts);
      const meta = { name: opts.name, description: opts.description, category: opts.category, replace: opts.replace, registeredBy: os.userInfo().username };
      let result;
      if (opts.serverPath) result = await client.adapters.registerPath(p, meta);
      else {
        await stat(p).catch(() => {
          throw new InvalidInputError(`no such file or directory: ${p} (use --server-path for a path on the server)`);
        });
        result = await client.adapters.upload(p, meta);
      }
      if (opts.json) return printJson(result);
      const a = result.adapter;
      process.stdout.write(`${result.status}: ${a.name} (rank ${a.rank}, ${a.modules} modules, ${formatBytes(a.bytes)}, sha256 ${a.sha256.slice(0, 12)})\n`);
    });

  addServerOptions(adapters.command('rm <name>').description('remove an adapter (refused while a registered merge was built from it)'))
    .option('--force', 'remove even if merges were built from it')
    .action(async (name: string, opts: Common & { force?: boolean }) => {
      const removed = await (await clientFrom(opts)).adapters.remove(name, { force: opts.force });
      process.stdout.write(`removed ${removed.name}\n`);
    });

  addServerOptions(adapters.command('compatible <name>').description('which adapters can be merged with this one'))
    .option('--json', 'print JSON')
    .action(async (name: string, opts: Common) => {
      const list = await (await clientFrom(opts)).adapters.compatible(name);
      if (opts.json) return printJson(list);
      process.stdout.write(table([['NAME', 'MERGEABLE', 'WHY'], ...list.map((c) => [c.name, c.compatible ? 'yes' : 'no', c.reasons.join('; ')])]));
    });
}

const percent = (x: unknown, digits = 1) => (typeof x === 'number' ? `${(x * 100).toFixed(digits)}%` : undefined);

/** `adapters show` for people: the facts, and for a merge what it was made of and what it kept (`--json`: everything). */
function describeAdapter(a: AdapterDetail): string {
  const rows: [string, string | undefined][] = [
    ['name', a.name],
    ['description', a.description],
    ['category', a.category],
    ['base model', a.baseModel ?? 'unknown'],
    ['rank / alpha', `${a.rank} / ${a.alpha}`],
    ['targets', `${a.targetModules.join(', ')} (${a.modules} modules)`],
    ['size', `${formatBytes(a.bytes)}, ${a.parameters.toLocaleString('en-US')} parameters, ${a.dtype}`],
    ['sha256', a.sha256],
    ['registered', `${a.createdAt} by ${a.registeredBy}`],
  ];
  if (a.inputs?.length) {
    const { method, weights: _weights, ...options } = a.recipe ?? {};
    rows.push(['merge', `${String(method)} of ${a.inputs.map((i) => `${i.name} × ${i.weight}`).join(', ')}`]);
    rows.push(['options', Object.entries(options).filter(([, v]) => typeof v !== 'object').map(([k, v]) => `${k}=${String(v)}`).join(' ') || undefined]);
    const s = a.summary ?? {};
    rows.push(['error vs exact sum', percent(s.relError, 2)]);
    rows.push(['energy kept', percent(s.retainedEnergy, 2)]);
    rows.push(['entries kept', percent(s.keptFraction)]);
    rows.push(['sign conflicts', percent(s.signConflict)]);
  }
  const shown = rows.filter((r): r is [string, string] => r[1] !== undefined && r[1] !== '');
  const width = Math.max(...shown.map(([k]) => k.length));
  return `${shown.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}
