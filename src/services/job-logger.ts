import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { REDACTED_PATHS } from './logger.js';
import type { Id, JobLogEntry, JobStore } from './store/types.js';

export interface JobLogger {
  logger: Logger;
  /** Resolves once every line logged so far is in the store. */
  flush(): Promise<void>;
}

/**
 * A job's own logger: its lines (secrets redacted) go to the store, to be served per job,
 * to `onEntry` (live views), and to the service's log with the job's ids and repository bound,
 * so that every line of it there names the job among the others'.
 */
export function jobLogger(
  jobs: JobStore,
  service: Logger,
  ids: { jobId: Id; executionId: Id; repository: string; node?: string },
  onEntry?: (entry: Omit<JobLogEntry, 'seq'>) => void,
): JobLogger {
  let pending: Array<Omit<JobLogEntry, 'seq'>> = [];
  let writing = Promise.resolve();
  const toStore = new Writable({
    write(line: Buffer, _encoding, done) {
      const { level, time, msg, jobId: _job, executionId: _execution, repository: _repository, ...fields } = JSON.parse(line.toString()) as Record<string, unknown>;
      const entry = {
        at: new Date(time as number).toISOString(),
        level: pino.levels.labels[level as number] ?? String(level),
        message: String(msg ?? ''),
        fields,
      };
      pending.push(entry);
      onEntry?.(entry);
      if (pending.length === 1) queueMicrotask(save);
      done();
    },
  });
  const save = () => {
    const entries = pending;
    pending = [];
    if (entries.length > 0) writing = writing.then(() => jobs.appendLogs(ids.jobId, entries)).catch((error: unknown) => service.error({ err: error, ...ids }, 'job log not stored'));
  };
  const logger = pino(
    { level: 'info', redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, base: ids },
    pino.multistream([{ stream: toStore, level: 'info' }, { stream: serviceStream(service), level: 'info' }]),
  );
  return {
    logger,
    async flush() {
      save();
      await writing;
    },
  };
}

/** Lines for the service's own log, through its logger so its level and format apply. */
function serviceStream(service: Logger): Writable {
  return new Writable({
    write(line: Buffer, _encoding, done) {
      const { level, msg, time: _time, ...fields } = JSON.parse(line.toString()) as Record<string, unknown>;
      const method = (pino.levels.labels[level as number] ?? 'info') as 'info';
      service[method](fields, String(msg ?? ''));
      done();
    },
  });
}
