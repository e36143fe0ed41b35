// Logs: pino, JSON in production, pretty on a terminal. Built once per process and passed down.
import { pino, type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  level: string;
  format: 'auto' | 'json' | 'pretty';
  /** where log lines go: stderr by default, so stdout stays for command output */
  destination?: 1 | 2;
}

export function createLogger(options: LogOptions): Logger {
  const destination = options.destination ?? 2;
  const pretty = options.format === 'pretty' || (options.format === 'auto' && process.stderr.isTTY === true);
  if (pretty) {
    return pino({
      level: options.level,
      transport: { target: 'pino-pretty', options: { destination, colorize: true, ignore: 'pid,hostname' } },
    });
  }
  return pino({ level: options.level }, pino.destination(destination));
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
