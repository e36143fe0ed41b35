// `loraforge worker`: runs merge jobs from the queue (any number of these, on any machine sharing Redis and the
// data dir).
import type { Command } from 'commander';
import { daemonConfig, untilSignal } from '../daemon.js';
import { integerOption } from '../options.js';

export function workerCommand(program: Command): void {
  program
    .command('worker')
    .description('run merge jobs from the queue (SIGTERM: finish or hand back the active merges, then exit)')
    .option('--concurrency <n>', 'merges run at once (LORAFORGE_WORKER_CONCURRENCY)', integerOption('--concurrency', 1))
    .action(async (opts: { concurrency?: number }) => {
      const { config, log } = await daemonConfig(opts.concurrency ? { worker: { concurrency: opts.concurrency } } : {});
      const { openRegistry, openRuntime, startWorker } = await import('../../app.js');
      const rt = await openRuntime(config, log);
      await startWorker(rt, openRegistry(rt));
      await untilSignal(rt.lifecycle, log);
    });
}
