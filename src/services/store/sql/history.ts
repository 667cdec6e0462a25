import type { Job, JobChange, NodeId, Timestamp } from '../types.js';
import type { Executor } from './database.js';
import { json } from './rows.js';

/** Appends a row to a job's history, numbered after the last. */
export async function recordTransition(
  trx: Executor,
  jobId: string,
  transition: { from: string | null; to: string; event: string; node: NodeId | null },
  at: Timestamp,
): Promise<void> {
  const last = await trx.selectFrom('job_transitions').select((eb) => eb.fn.max('seq').as('seq')).where('job_id', '=', jobId).executeTakeFirst();
  await trx
    .insertInto('job_transitions')
    .values({ job_id: jobId, seq: Number(last?.seq ?? 0) + 1, from: transition.from, to: transition.to, event: transition.event, node: transition.node, at })
    .execute();
}

export function changeOf(job: Pick<Job, 'id' | 'executionId' | 'status' | 'phase' | 'attempt' | 'progress' | 'error' | 'node'>): JobChange {
  return { jobId: job.id, executionId: job.executionId, status: job.status, phase: job.phase, attempt: job.attempt, progress: job.progress, error: job.error, node: job.node };
}

/** Adds a change to the live feed, in the transaction that made it. */
export async function recordChange(trx: Executor, job: Pick<Job, 'id' | 'executionId' | 'status' | 'phase' | 'attempt' | 'progress' | 'error' | 'node'>, at: Timestamp): Promise<void> {
  await trx.insertInto('job_changes').values({ job_id: job.id, change: json(changeOf(job)), at }).execute();
}
