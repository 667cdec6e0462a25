import { applyConfig, readConfigFile } from '../services/config-file.js';
import { executionJobs } from '../services/application/jobs.js';
import { FerryService } from '../services/service.js';
import { ENDED_STATUSES } from '../machines/status.js';
import type { Execution, Policy } from '../services/store/types.js';
import type { CommandIO } from './io.js';
import { count, formatBytes, formatDuration } from './format.js';
import { commandLogger, type LogOptions } from './options.js';
import { table } from './table.js';
import { positiveInteger, UsageError } from './usage.js';

export interface SyncOptions extends LogOptions {
  config: string;
  policy?: string[];
  db: string;
  workers?: string;
}

export async function syncCommand(values: SyncOptions, io: CommandIO): Promise<number> {
  const logger = commandLogger(values, io.stdout, 'info');
  const config = await readConfigFile(values.config, io.env);
  const started = Date.now();
  const service = await FerryService.start({ database: values.db, workers: positiveInteger(values.workers, '--workers', 4), logger });
  try {
    const { policies } = await applyConfig(service.store, service.settings, config);
    const chosen = choose(policies, values.policy);
    const runs: Array<{ policy: Policy; execution: Execution }> = [];
    for (const policy of chosen) runs.push({ policy, execution: (await service.scheduler.trigger(policy, 'manual')).execution });

    let interrupted = false;
    void io.interrupted.then(async () => {
      interrupted = true;
      await Promise.all(runs.map((run) => service.control.stopExecution(run.execution.id).catch(() => undefined)));
    });
    const ended = async () => (await Promise.all(runs.map((run) => service.store.executions.get(run.execution.id)))).every((e) => e && ENDED_STATUSES.has(e.status));
    await new Promise<void>((resolve) => {
      const check = () => void ended().then((done) => done && (unsubscribe(), resolve()));
      const unsubscribe = service.feed.subscribe(check);
      check();
    });

    const rows: string[][] = [];
    let failed = false;
    for (const { policy, execution } of runs) {
      const now = (await service.store.executions.get(execution.id))!;
      const jobs = await executionJobs(service.store, execution.id);
      const sum = (key: string) => jobs.reduce((total, job) => total + (job.progress[key] ?? 0), 0);
      // A tag that failed alone, or was refused for want of a verified signature, fails the sync as it fails ferry copy.
      failed ||= now.status !== 'finished' || sum('tagsRefused') > 0 || sum('tagsFailed') > 0;
      rows.push([
        policy.name, now.status, String(jobs.length), String(now.jobs.finished), String(now.jobs.error), String(now.jobs.stopped),
        String(sum('tagsCopied')), String(sum('tagsUnchanged')), String(sum('tagsFailed')), String(sum('tagsRefused')), String(sum('referrersCopied')), formatBytes(sum('bytesCopied')),
      ]);
      for (const job of jobs.filter((j) => j.status === 'error')) io.stderr.write(`${policy.name}: ${job.source ?? job.destination}: ${job.error?.message}\n`);
      for (const job of jobs.filter((j) => (j.progress.tagsFailed ?? 0) > 0)) {
        io.stderr.write(`${policy.name}: ${job.source}: ${count(job.progress.tagsFailed ?? 0, 'tag')} failed (the job's log says which and why; a retry copies only what is missing)\n`);
      }
      for (const job of jobs.filter((j) => (j.progress.tagsRefused ?? 0) > 0)) {
        io.stderr.write(`${policy.name}: ${job.source}: ${count(job.progress.tagsRefused ?? 0, 'image')} refused, no signature verifies with the required key (the job's log says which)\n`);
      }
    }
    io.stdout.write(table(['POLICY', 'STATUS', 'JOBS', 'FINISHED', 'ERROR', 'STOPPED', 'COPIED', 'UNCHANGED', 'FAILED', 'REFUSED', 'REFERRERS', 'BYTES'], rows));
    io.stdout.write(`${runs.length} policies in ${formatDuration(Date.now() - started)}\n`);
    if (interrupted) return 130;
    return failed ? 1 : 0;
  } finally {
    await service.close();
  }
}

function choose(policies: Policy[], names: string[] | undefined): Policy[] {
  if (!names) return policies.filter((p) => p.enabled);
  return names.map((name) => {
    const policy = policies.find((p) => p.name === name);
    if (!policy) throw new UsageError(`--policy ${name}: no such policy in the config (${policies.map((p) => p.name).join(', ')})`);
    return policy;
  });
}
