// `loraforge fold <base checkpoint> <adapter> --out <dir>`: the merged model as a full Hugging Face checkpoint.
import type { Command } from 'commander';
import { choiceOption, formatBytes, sizeOption } from '../options.js';
import { progressPrinter } from '../progress.js';

export function foldCommand(program: Command): void {
  program
    .command('fold')
    .description('add an adapter (e.g. a merge) into its base model\'s weights and write the full checkpoint')
    .argument('<checkpoint>', 'base model directory: config.json and *.safetensors (sharded or not)')
    .argument('<adapter>', 'PEFT adapter directory')
    .requiredOption('-o, --out <dir>', 'output checkpoint directory (must not exist unless --force)')
    .option('--max-shard-size <size>', 'largest weights shard, e.g. 5GB (transformers\' default) or 2GB', sizeOption('--max-shard-size'))
    .option('--device <device>', 'cpu, or cuda when onnxruntime has its CUDA provider', choiceOption('--device', ['cpu', 'cuda'] as const))
    .option('--force', 'replace the output directory if it exists')
    .addHelpText('after', '\nThe output loads with transformers (AutoModelForCausalLM.from_pretrained) and with `loraforge build-model`.\nconfig.json, generation_config.json and the tokenizer files are copied; tensors keep their dtypes.')
    .action(async (checkpoint: string, adapter: string, flags: { out: string; maxShardSize?: number; device?: 'cpu' | 'cuda'; force?: boolean }) => {
      const [{ loadConfig }, { foldIntoCheckpoint }, { createLogger }] = await Promise.all([
        import('../../config/index.js'),
        import('../../merge/fold.js'),
        import('../../util/log.js'),
      ]);
      const config = loadConfig({ overrides: flags.device ? { merge: { device: flags.device } } : {} });
      const log = createLogger({ level: config.log.level, format: config.log.format });
      const printer = progressPrinter();
      let result;
      try {
        result = await foldIntoCheckpoint(checkpoint, adapter, flags.out, {
          maxShardBytes: flags.maxShardSize,
          overwrite: flags.force ?? false,
          compute: { device: config.merge.device, threads: config.merge.threads, logger: log },
          onProgress: (p) => printer.update(p),
        });
      } finally {
        printer.done();
      }
      process.stdout.write(
        `folded ${result.folded} module(s)${result.replaced ? ` and replaced ${result.replaced} tensor(s)` : ''} into ${result.outDir} in ${result.seconds.toFixed(1)} s: ` +
          `${result.tensors} tensors, ${formatBytes(result.totalBytes)} in ${result.files.length} file(s)\n`,
      );
    });
}
