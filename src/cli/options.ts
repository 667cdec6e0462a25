import type { LogFormat } from '../services/logger.js';
import { UsageError } from './usage.js';

export function logFormat(value: string | undefined): LogFormat {
  const format = value ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`--log-format is text or json, not "${format}"`);
  return format;
}
