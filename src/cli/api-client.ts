// The CLI's connection to a loraforge API: --server (or LORAFORGE_API_URL, else the configured host and port)
// and --token (or LORAFORGE_API_TOKEN). The client and the config are imported when a command runs, not when the
// CLI starts (zod and yaml alone take longer than the rest of `loraforge --help`).
import type { Command } from 'commander';
import type { LoraforgeClient } from '../client/index.js';

export interface ServerOptions {
  server?: string;
  token?: string;
}

export function addServerOptions(command: Command): Command {
  return command
    .option('--server <url>', 'loraforge API URL (LORAFORGE_API_URL; default http://<LORAFORGE_HOST>:<PORT>)')
    .option('--token <token>', 'API bearer token (LORAFORGE_API_TOKEN)');
}

export async function clientFrom(options: ServerOptions): Promise<LoraforgeClient> {
  const [{ LoraforgeClient }, { loadConfig }] = await Promise.all([import('../client/index.js'), import('../config/index.js')]);
  const config = loadConfig();
  const host = config.server.host === '0.0.0.0' ? '127.0.0.1' : config.server.host;
  const baseUrl = options.server ?? process.env.LORAFORGE_API_URL ?? `http://${host}:${config.server.port}`;
  return new LoraforgeClient({ baseUrl, token: options.token ?? config.server.authToken });
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns for terminal tables. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

