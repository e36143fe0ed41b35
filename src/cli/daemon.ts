// Long-running commands (serve, worker, all): build a config and logger from the flags, run, and on SIGINT or
// SIGTERM stop every part in order before exiting. A second signal exits at once.
import { loadConfig, type Config } from '../config/index.js';
import type { Lifecycle } from '../util/lifecycle.js';
import { createLogger, type Logger } from '../util/log.js';

export function daemonConfig(overrides: Record<string, unknown>): { config: Config; log: Logger } {
  const config = loadConfig({ overrides });
  const log = createLogger({ level: config.log.level, format: config.log.format });
  return { config, log };
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

/** commander option parser for ports and counts */
export function intOption(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got "${value}"`);
    return n;
  };
}
