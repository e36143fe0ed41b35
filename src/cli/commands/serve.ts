// `loraforge serve`: the HTTP API and the model engine (merges are run by `loraforge worker` processes).
import type { Command } from 'commander';
import { addServerFlags, checkPortFree, serverConfig, startOrClose, untilSignal, type ServerFlags } from '../daemon.js';

export function serveCommand(program: Command): void {
  addServerFlags(program.command('serve').description('run the HTTP API and the model engine (merges run in `loraforge worker` processes)')).action(async (opts: ServerFlags) => {
    const { config, log } = await serverConfig(opts);
    await checkPortFree(config);
    const { openRuntime, startService } = await import('../../app.js');
    const rt = await openRuntime(config, log);
    await startOrClose(rt.lifecycle, log, () => startService(rt));
    await untilSignal(rt.lifecycle, log);
  });
}
