// `loraforge all` (what `npm start` runs): the API and a merge worker in one process, with embedded defaults:
// the data dir ./data, Redis at 127.0.0.1:6379, or a redis-server started here when none answers.
import type { Command } from 'commander';
import { openRuntime, startAll } from '../../app.js';
import { daemonConfig, intOption, untilSignal } from '../daemon.js';

export function allCommand(program: Command): void {
  program
    .command('all')
    .description('run everything in one process: the API and a merge worker (starts a local redis-server if none answers)')
    .option('--host <host>', 'address to listen on (LORAFORGE_HOST)')
    .option('--port <port>', 'port to listen on (PORT)', intOption('--port'))
    .action(async (opts: { host?: string; port?: number }) => {
      const { config, log } = daemonConfig({ server: { ...(opts.host ? { host: opts.host } : {}), ...(opts.port !== undefined ? { port: opts.port } : {}) } });
      const rt = await openRuntime(config, log, { autoStartRedis: true });
      const { api } = await startAll(rt);
      log.info(`loraforge is running: API at ${api.url} (try: curl ${api.url}/v1/adapters), queue dashboard at ${api.url}/admin/queues; Ctrl-C stops`);
      await untilSignal(rt.lifecycle, log);
    });
}
