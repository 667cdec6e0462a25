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

export function changeOf(job: Pick<Job, 'id' | 'executionId' | 'status' | 'phase' | 'attempt' | 'progress' | 'error' | 'node'>): JobChange {
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
  jobs: Array<Pick<Job, 'id' | 'executionId' | 'status' | 'phase' | 'attempt' | 'progress' | 'error' | 'node'>>,
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
