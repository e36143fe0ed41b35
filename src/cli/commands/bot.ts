// `loraforge bot`: the Discord bot, talking to a running API.
import type { Command } from 'commander';
import { daemonConfig, untilSignal } from '../daemon.js';

export function botCommand(program: Command): void {
  program
    .command('bot')
    .description('run the Discord bot (DISCORD_TOKEN) against the API at LORAFORGE_API_URL')
    .option('--api-url <url>', 'the loraforge API (LORAFORGE_API_URL)')
    .action(async (opts: { apiUrl?: string }) => {
      const { config, log } = await daemonConfig({ bot: opts.apiUrl ? { apiUrl: opts.apiUrl } : {} });
      const { openRuntime, startBot } = await import('../../app.js');
      const rt = await openRuntime(config, log);
      await startBot(rt);
      await untilSignal(rt.lifecycle, log);
    });
}
