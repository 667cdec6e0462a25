import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export type LogFormat = 'text' | 'json';

/** Never logged, wherever they appear in a log object. */
export const REDACTED_PATHS = [
  'password', '*.password', 'credentials', '*.credentials', 'token', '*.token', 'access_token', '*.access_token',
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
];

/**
 * JSON lines (pino) on `out`, or for people: plain `level: message` lines on stderr, from
 * `textLevel` up (a one-off command shows warnings; the service shows what it does).
 */
export function createLogger(format: LogFormat, out: NodeJS.WritableStream, textLevel: 'info' | 'warn' = 'warn'): Logger {
  const redact = { paths: REDACTED_PATHS, censor: '[redacted]' };
  if (format === 'json') return pino({ redact, base: { name: 'ferry' } }, out);
  const plain = new Writable({
    write(line: Buffer, _encoding, done) {
      const record = JSON.parse(line.toString()) as { level: number; msg?: string; time: number };
      process.stderr.write(`${new Date(record.time).toISOString()} ${pino.levels.labels[record.level] ?? 'log'}: ${record.msg ?? ''}\n`);
      done();
    },
  });
  return pino({ redact, level: textLevel }, plain);
}
