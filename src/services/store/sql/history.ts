import { sql } from 'kysely';
import type { Job, JobChange, NodeId, Timestamp } from '../types.js';
import { batches, type Executor } from './database.js';
import type { SqlDialect } from './dialect.js';
import { json } from './rows.js';

/** Appends a row to a job's history, numbered after the last. */
export async function recordTransition(
  trx: Executor,
  jobId: string,
  transition: { from: string | null; to: string; event: string; node: NodeId | null },
  at: Timestamp,
): Promise<void> {
  await trx
    .insertInto('job_transitions')
    .columns(['job_id', 'seq', 'from', 'to', 'event', 'node', 'at'])
    .expression((eb) =>
      eb
        .selectFrom('job_transitions')
        .select([
          eb.val(jobId).as('job_id'),
          sql<number>`coalesce(max(seq), 0) + 1`.as('seq'),
          eb.val(transition.from).as('from'),
          eb.val(transition.to).as('to'),
          eb.val(transition.event).as('event'),
          eb.val(transition.node).as('node'),
          eb.val(at).as('at'),
        ])
        .where('job_id', '=', jobId),
    )
    .execute();
}

function changeOf(job: Job): JobChange {
  return { jobId: job.id, executionId: job.executionId, status: job.status, phase: job.phase, attempt: job.attempt, progress: job.progress, error: job.error, node: job.node };
}

/**
 * Adds changes to the live feed, in the transaction that made them, as its last write. Where
 * the dialect says so (PostgreSQL), the feed is locked first until the transaction ends: its
 * numbers are handed out at insert, so without the lock a transaction that numbered its change
 * first could commit after another, and a reader that had resumed past the later number would
 * never see it. Readers are not blocked.
 */
export async function recordChanges(
  trx: Executor,
  dialect: SqlDialect,
  jobs: Job[],
  at: Timestamp,
): Promise<void> {
  if (jobs.length === 0) return;
  if (dialect.lockFeed) await sql`LOCK TABLE job_changes IN EXCLUSIVE MODE`.execute(trx);
  for (const batch of batches(jobs)) {
    await trx
      .insertInto('job_changes')
      .values(batch.map((job) => ({ job_id: job.id, change: json(changeOf(job)), at })))
      .execute();
  }
}

/** A step of one job: the row of its history and its change on the feed, the change last. */
export async function recordStep(
  trx: Executor,
  dialect: SqlDialect,
  job: Job,
  transition: { from: string | null; to: string; event: string; node: NodeId | null },
  at: Timestamp,
): Promise<void> {
  await recordTransition(trx, job.id, transition, at);
  await recordChanges(trx, dialect, [job], at);
}
