import type { Logger } from 'pino';
import { createLogger, type LogFormat } from '../services/logger.js';
import { UsageError } from './usage.js';

export function logFormat(value: string | undefined): LogFormat {
  const format = value ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`--log-format is text or json, not "${format}"`);
  return format;
}

export interface LogOptions {
  logFormat?: string;
  logLevel?: string;
}

/** The logger of a command: its format, and the level asked for or the command's own. */
export function commandLogger(options: LogOptions, out: NodeJS.WritableStream, textLevel?: 'info' | 'warn'): Logger {
  const logger = createLogger(logFormat(options.logFormat), out, textLevel);
  if (options.logLevel) logger.level = options.logLevel;
  return logger;
}
