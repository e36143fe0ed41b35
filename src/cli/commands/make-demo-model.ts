// `loraforge make-demo-model <dir>`: a small random Llama checkpoint and four PEFT adapters, to try loraforge
// end to end without downloading anything.
import path from 'node:path';
import type { Command } from 'commander';
import { integerOption } from '../options.js';

export function makeDemoModelCommand(program: Command): void {
  program
    .command('make-demo-model')
    .description('write a small random Llama checkpoint and four PEFT adapters (its text is nonsense: for trying loraforge out)')
    .argument('<dir>', 'new directory to create: <dir>/base is the checkpoint, <dir>/adapters/<skill> the adapters')
    .option('--seed <n>', 'random seed: the same seed writes the same weights', integerOption('--seed'), 0)
    .action(async (dir: string, opts: { seed: number }) => {
      const { DEMO_SKILLS, makeDemoModel } = await import('../../inference/demo.js');
      const started = performance.now();
      const demo = await makeDemoModel(path.resolve(dir), { seed: opts.seed });
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      process.stdout.write(
        `wrote the demo model in ${seconds} s (seed ${opts.seed}; random weights, so its text is nonsense)\n` +
          `  checkpoint  ${demo.checkpointDir}\n` +
          DEMO_SKILLS.map((s) => `  adapter     ${demo.adapterDirs[s]}\n`).join('') +
          `next: loraforge build-model ${demo.checkpointDir}\n`,
      );
    });
}
