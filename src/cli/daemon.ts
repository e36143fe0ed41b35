// Long-running commands (serve, worker, all): build a config and logger from the flags, run, and on SIGINT or
// SIGTERM stop every part in order before exiting. A second signal exits at once. The config and the logger are
// imported when the command runs, so that `loraforge --help` loads neither. A start that fails stops what it had
// started, so the process exits with its one-line error instead of idling on open connections.
import { createServer } from 'node:net';
import type { Command } from 'commander';
import { integerOption } from './options.js';
import type { Config } from '../config/index.js';
import type { Lifecycle } from '../util/lifecycle.js';
import type { Logger } from '../util/log.js';

export interface ServerFlags {
  host?: string;
  port?: number;
  model?: string;
}

/** The flags of the commands that run the API (`serve`, `all`). */
export function addServerFlags(command: Command): Command {
  return command
    .option('--host <host>', 'address to listen on (LORAFORGE_HOST)')
    .option('--port <port>', 'port to listen on (PORT)', integerOption('--port'))
    .option('--model <dir>', 'Hugging Face checkpoint (or built model) dir to serve (LORAFORGE_MODEL; default: the demo model)');
}

/** The configuration of a process that runs the API, with its command line flags over the environment. */
export function serverConfig(opts: ServerFlags): Promise<{ config: Config; log: Logger }> {
  return daemonConfig({
    server: { ...(opts.host ? { host: opts.host } : {}), ...(opts.port !== undefined ? { port: opts.port } : {}) },
    ...(opts.model ? { inference: { model: opts.model } } : {}),
  });
}

export async function daemonConfig(overrides: Record<string, unknown>): Promise<{ config: Config; log: Logger }> {
  const [{ loadConfig }, { createLogger }] = await Promise.all([import('../config/index.js'), import('../util/log.js')]);
  const config = loadConfig({ overrides });
  const log = createLogger({ level: config.log.level, format: config.log.format });
  return { config, log };
}

/**
 * Fails fast, before the model is built, when the API's port cannot be taken (in use, or not this user's); the
 * API's own listen reports the same way should the port be taken meanwhile.
 */
export async function checkPortFree(config: Config): Promise<void> {
  const { host, port } = config.server;
  if (port === 0) return;
  const { listenOn } = await import('../app.js');
  const probe = await listenOn(createServer(), host, port);
  await new Promise((resolve) => probe.close(resolve));
}

/** Runs `start`; when it fails, closes every part started so far, then rethrows. */
export async function startOrClose<T>(lifecycle: Lifecycle, log: Logger, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    await lifecycle.close((name, closeErr) => log.debug({ err: closeErr, part: name }, 'error while stopping after a failed start'));
    throw err;
  }
}

/** Resolves when the process was asked to stop and every part in `lifecycle` has been closed. */
export function untilSignal(lifecycle: Lifecycle, log: Logger): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(130);
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      void lifecycle.close((name, err) => log.error({ err, part: name }, 'error while stopping')).then(() => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
