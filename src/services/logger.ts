import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export type LogFormat = 'text' | 'json';

/** Never logged, wherever they appear in a log object. */
export const REDACTED_PATHS = [
  'password', '*.password', 'credentials', '*.credentials', 'token', '*.token', 'access_token', '*.access_token',
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
];

/**
 * JSON lines (pino) on `out`, or for people: plain `time level: message` lines on stderr, from
 * `textLevel` up (a one-off command shows warnings; the service shows what it does). A job's
 * lines say `job <id> <repository>:` before the message, as concurrent jobs' lines interleave.
 */
export function createLogger(format: LogFormat, out: NodeJS.WritableStream, textLevel: 'info' | 'warn' = 'warn'): Logger {
  const redact = { paths: REDACTED_PATHS, censor: '[redacted]' };
  if (format === 'json') return pino({ redact, base: { name: 'ferry' } }, out);
  const plain = new Writable({
    write(line: Buffer, _encoding, done) {
      const record = JSON.parse(line.toString()) as TextRecord;
      process.stderr.write(`${new Date(record.time).toISOString()} ${pino.levels.labels[record.level] ?? 'log'}: ${jobPrefix(record)}${record.msg ?? ''}\n`);
      done();
    },
  });
  return pino({ redact, level: textLevel }, plain);
}

interface TextRecord {
  level: number;
  msg?: string;
  time: number;
  jobId?: string;
  repository?: string;
}

function jobPrefix({ jobId, repository }: TextRecord): string {
  if (jobId === undefined) return '';
  return repository === undefined ? `job ${jobId}: ` : `job ${jobId} ${repository}: `;
}
