// `loraforge merge --method ties --weights 1,1,1,1 --density 0.2 ./a ./b ./c ./d --out ./merged`: merges PEFT
// adapter directories into a new one, with merge-report.json beside it and a summary of what the merge kept.
// The merge engine, zod and ONNX Runtime are imported when the command runs, so `--help` starts at once.
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import { DEFAULT_WEIGHTS_TEXT, defaultWeights, listMethods, MERGE_METHODS, METHODS, PRUNING_METHODS, type MergeMethod } from '../../merge/methods.js';
import type { MergeReport } from '../../merge/report.js';
import type { Logger } from '../../util/log.js';
import { mergeWarnings } from '../../merge/warnings.js';
import { clientFrom } from '../api-client.js';
import { choiceOption, formatCount, integerOption, numberListOption, numberOption, numberRowsOption } from '../options.js';
import { progressPrinter, table } from '../progress.js';
import { remoteMerge } from './merges.js';

interface MergeFlags {
  method: MergeMethod;
  out: string;
  weights?: number[];
  layerWeights?: number[][];
  layerStarts?: number[];
  space?: 'delta' | 'factors';
  density?: number;
  majoritySign?: 'total' | 'frequency';
  rank?: number;
  energy?: number;
  seed?: number;
  trimScope?: 'tensor' | 'adapter';
  dtype?: 'F32' | 'F16' | 'BF16';
  device?: 'cpu' | 'cuda';
  force?: boolean;
  json?: boolean;
  server?: string;
  token?: string;
  name?: string;
}

const fixed = (x: number | null, digits = 4) => (x === null ? '–' : x.toFixed(digits));

export function summarize(report: MergeReport, outDir: string, seconds: number, reportFile: string): string {
  const o = report.diagnostics.overall;
  const r = report.recipe;
  const lines: string[] = [];
  lines.push(
    `merged ${report.inputs.length} adapter(s) with ${report.recipe.methodRun} (${r.space} space) into ${outDir} in ${seconds.toFixed(1)} s: ` +
      `rank ${report.output.rank}, ${report.output.dtype}, ${report.output.modules} modules, ${formatCount(report.output.parameters)} parameters`,
  );
  lines.push('');
  const n = report.inputs.length;
  const header = ['#', 'adapter', 'weight', 'rank', 'modules', ...report.inputs.map((_, i) => `cos ${i + 1}`)];
  const rows = report.inputs.map((input, i) => [
    String(i + 1),
    input.label,
    String(r.weights[i]),
    String(input.rank),
    String(input.modules),
    ...Array.from({ length: n }, (_, j) => fixed(o.interference[i]?.[j] ?? null, 3)),
  ]);
  lines.push(table(header, rows));
  const measures: [string, string][] = [
    ['relative error vs the exact weighted sum', fixed(o.relError)],
    ['energy kept by the rank cut', fixed(o.retainedEnergy)],
    ['entries kept (trim/drop, sign vote)', fixed(o.keptFraction)],
    ['sign conflicts among contested entries', fixed(o.signConflict)],
    ['seconds per module', report.timings.secondsPerModule.toFixed(3)],
  ];
  lines.push(table(['measure', 'value'], measures));
  if (o.worstModules.length > 0 && (o.relError ?? 0) > 1e-4) {
    lines.push(`largest errors: ${o.worstModules.map((m) => `${m.module} ${m.relError.toFixed(3)}`).join(', ')}`);
  }
  lines.push(`report: ${path.join(outDir, reportFile)}`);
  return `${lines.join('\n')}\n`;
}

export function mergeCommand(program: Command): void {
  program
    .command('merge')
    .description('merge PEFT LoRA adapters into one (written as a PEFT adapter directory with merge-report.json)')
    .argument('<adapters...>', 'adapter directories (adapter_config.json + adapter_model.safetensors), all of one base model')
    .requiredOption('--method <method>', 'the merge method (see Methods below)')
    .option('-o, --out <dir>', 'output adapter directory (must not exist unless --force); not with --server')
    .option('-w, --weights <list>', `one weight per adapter, comma separated (default: ${DEFAULT_WEIGHTS_TEXT})`, numberListOption('--weights'))
    .option(
      '--layer-weights <rows>',
      'per-layer-group weights: one row per adapter (";" between rows), one factor per group of blocks ("," between), e.g. 1,0.5,1;0.8,1,1 for early/middle/late',
      numberRowsOption('--layer-weights'),
    )
    .option('--layer-starts <list>', 'with --layer-weights: first block of each group after the first (default: equal shares)', numberListOption('--layer-starts'))
    .option('--space <space>', 'delta: exact, on each s·B·A (default); factors: PEFT add_weighted_adapter numbers', choiceOption('--space', ['delta', 'factors'] as const))
    .option('--density <d>', `share of entries kept by ${listMethods(PRUNING_METHODS)} (default 0.2)`, numberOption('--density'))
    .option('--majority-sign <how>', 'TIES sign vote: total (default) or frequency', choiceOption('--majority-sign', ['total', 'frequency'] as const))
    .option('--rank <r>', 'rank of the result (default: Σr for linear/cat/svd, max r for pruning methods)', integerOption('--rank', 1))
    .option('--energy <share>', 'smallest rank per module keeping this share of Σσ² (e.g. 0.99), capped at --rank', numberOption('--energy'))
    .option('--seed <n>', 'seed of DARE masks (keyed by adapter position: reordering changes them) and the randomized SVD (default 0)', integerOption('--seed'))
    .option('--trim-scope <scope>', 'top-k per tensor (default) or per adapter over all its modules', choiceOption('--trim-scope', ['tensor', 'adapter'] as const))
    .option('--dtype <dtype>', 'F32, F16 or BF16 (default: the inputs\')', choiceOption('--dtype', ['F32', 'F16', 'BF16'] as const))
    .option('--device <device>', 'cpu, or cuda when onnxruntime has its CUDA provider (LORAFORGE_MERGE_DEVICE)', choiceOption('--device', ['cpu', 'cuda'] as const))
    .option('--force', 'replace the output directory if it exists')
    .option('--json', 'print merge-report.json to stdout instead of the summary')
    .option('--server <url>', 'queue the merge on a loraforge server instead: <adapters...> are registered names (see `loraforge merges`)')
    .option('--token <token>', 'API bearer token for --server (LORAFORGE_API_TOKEN)')
    .option('--name <name>', 'with --server: the name the result is registered under (default <method>-<recipe hash>)')
    .addHelpText(
      'after',
      '\nMethods (details: README "Merging"):\n' +
        MERGE_METHODS.map((m) => `  ${m.padEnd(18)}${METHODS[m].summary}\n`).join('') +
        `Default weights: ${DEFAULT_WEIGHTS_TEXT}.\nLarger ones overshoot: several full updates added together.\n` +
        "DARE's masks are keyed by --seed, module and each adapter's position: list the adapters in another order and\n" +
        'the masks change (so does the merge).\n\n' +
        'Example:\n  loraforge merge --method ties --weights 0.4,0.2,0.2,0.2 --density 0.2 ./code ./linux ./python ./debug --out ./merged',
    )
    .action(async (adapters: string[], flags: MergeFlags) => {
      // the merge's own modules only: the engine loads while the inputs are read (directory.ts)
      const [{ loadConfig }, { mergeToDirectory }, { parseMergeOptions }, { REPORT_FILE }] = await Promise.all([
        import('../../config/index.js'),
        import('../../merge/directory.js'),
        import('../../merge/options.js'),
        import('../../merge/report.js'),
      ]);
      choiceOption('--method', MERGE_METHODS)(flags.method);
      const config = loadConfig({ overrides: flags.device ? { merge: { device: flags.device } } : {} });
      // pino loads only if the merge logs (a CUDA fallback): loading it cost every merge ~40 ms
      let logger: Promise<Logger> | null = null;
      const log = (level: 'info' | 'warn') => (message: string) => {
        logger ??= import('../../util/log.js').then(({ createLogger }) => createLogger({ level: config.log.level, format: config.log.format }));
        void logger.then((l) => l[level](message));
      };
      const options = {
        method: flags.method,
        weights: flags.weights ?? defaultWeights(flags.method, adapters.length),
        ...(flags.space && { space: flags.space }),
        ...(flags.density !== undefined && { density: flags.density }),
        ...(flags.majoritySign && { majoritySignMethod: flags.majoritySign }),
        ...(flags.rank !== undefined && { rank: flags.rank }),
        ...(flags.energy !== undefined && { energy: flags.energy }),
        ...(flags.seed !== undefined && { seed: flags.seed }),
        ...(flags.trimScope && { trimScope: flags.trimScope }),
        ...(flags.dtype && { dtype: flags.dtype }),
        ...(flags.layerWeights && { layerWeights: { weights: flags.layerWeights, ...(flags.layerStarts && { starts: flags.layerStarts }) } }),
      };
      if (flags.layerStarts && !flags.layerWeights) throw new InvalidInputError('--layer-starts goes with --layer-weights');
      // refuse a bad recipe before reading anything, so the only output is the one line that says what to fix
      const recipe = parseMergeOptions(options);
      if (!flags.server) for (const warning of mergeWarnings(recipe)) process.stderr.write(`warning: ${warning}\n`);
      if (flags.server) {
        await remoteMerge(await clientFrom({ server: flags.server, token: flags.token }), { ...recipe, adapters, name: flags.name }, { json: flags.json });
        return;
      }
      if (!flags.out) throw new InvalidInputError('--out <dir> is required (or --server <url> to merge registered adapters on a server)');
      const out = flags.out;
      if (recipe.weights.length !== adapters.length) {
        throw new InvalidInputError(`--weights has ${recipe.weights.length} value(s) for ${adapters.length} adapter(s): give one weight per adapter, in the same order`);
      }
      const printer = progressPrinter();
      const started = performance.now();
      let report: MergeReport;
      try {
        report = await mergeToDirectory(adapters, out, recipe, {
          overwrite: flags.force ?? false,
          denseCacheBytes: config.merge.denseCacheMiB * 2 ** 20,
          compute: { device: config.merge.device, threads: config.merge.threads, logger: { info: log('info'), warn: log('warn') } },
          onProgress: (p) => p.phase !== 'read' && printer.update({ phase: p.phase, done: p.done, total: p.total, detail: p.module }),
        });
      } finally {
        printer.done();
      }
      const seconds = (performance.now() - started) / 1000;
      if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else process.stdout.write(summarize(report, out, seconds, REPORT_FILE));
      for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
    });
}
