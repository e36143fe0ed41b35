// `loraforge all` (what `npm start` runs): the API, the model engine and a merge worker in one process, with
// embedded defaults: the data dir ./data, the demo model (built once), Redis at 127.0.0.1:6379, or a redis-server
// started here when none answers.
import type { Command } from 'commander';
import { addServerFlags, checkPortFree, serverConfig, startOrClose, untilSignal, type ServerFlags } from '../daemon.js';

export function allCommand(program: Command): void {
  addServerFlags(program.command('all').description('run everything in one process: the API, the model engine (the demo model unless LORAFORGE_MODEL), a merge worker, and the Discord bot when DISCORD_TOKEN is set')).action(async (opts: ServerFlags) => {
    const { config, log } = await serverConfig(opts);
    await checkPortFree(config);
    const { openRuntime, startAll } = await import('../../app.js');
    const rt = await openRuntime(config, log, { autoStartRedis: true });
    const { api, engine } = await startOrClose(rt.lifecycle, log, () => startAll(rt));
    log.info(`loraforge is running: API at ${api.url}, queue dashboard at ${api.url}/admin/queues; Ctrl-C stops`);
    if (engine) {
      // the demo model's adapters are registered by skill name; a real checkpoint starts with its base model
      const model = config.inference.model ? engine.modelId : 'troubleshooting';
      const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'The disk on web1 is full' }], max_tokens: 96 });
      process.stdout.write(
        `\nServing ${engine.modelId} and every registered adapter (curl ${api.url}/v1/models). Try:\n\n` +
          `  curl ${api.url}/v1/chat/completions -H 'content-type: application/json' -d '${body}'\n\n`,
      );
    } else {
      log.info(`no model served (inference.enabled is false); try: curl ${api.url}/v1/adapters`);
    }
    await untilSignal(rt.lifecycle, log);
  });
}
