// `loraforge serve`: the HTTP API and the model engine (merges are run by `loraforge worker` processes).
import type { Command } from 'commander';
import { openRuntime, startService } from '../../app.js';
import { daemonConfig, intOption, untilSignal } from '../daemon.js';

export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP API and the model engine (merges run in `loraforge worker` processes)')
    .option('--host <host>', 'address to listen on (LORAFORGE_HOST)')
    .option('--port <port>', 'port to listen on (PORT)', intOption('--port'))
    .option('--model <dir>', 'Hugging Face checkpoint (or built model) dir to serve (LORAFORGE_MODEL; default: the demo model)')
    .action(async (opts: { host?: string; port?: number; model?: string }) => {
      const { config, log } = daemonConfig({
        server: { ...(opts.host ? { host: opts.host } : {}), ...(opts.port !== undefined ? { port: opts.port } : {}) },
        ...(opts.model ? { inference: { model: opts.model } } : {}),
      });
      const rt = await openRuntime(config, log);
      await startService(rt);
      await untilSignal(rt.lifecycle, log);
    });
}
