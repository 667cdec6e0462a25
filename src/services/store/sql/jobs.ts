import { sql } from 'kysely';
import { LeaseLostError, NotFoundError } from '../errors.js';
import { ENDED_STATUSES, isRetryable, statePath } from '../../../machines/status.js';
import type { Id, Job, JobStatus, JobStore } from '../types.js';
import { announce, batches, paged, write, type Database, type Executor } from './database.js';
import { recordStep } from './history.js';
import { flag, JOB_COLUMNS, jsonOrNull, json, now, toJob, toLogEntry, toStoredChange, toStoredSnapshot, toTransition } from './rows.js';

const DEFAULT_LOG_LIMIT = 1_000;
const HELD: JobStatus[] = ['running', 'retrying'];

export function jobStore(database: Database): JobStore {
  const { db, dialect } = database;

  const lastChange = async (): Promise<number> => {
    const last = await db.selectFrom('job_changes').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return Number(last?.seq ?? 0);
  };

  const read = async (trx: Executor, id: Id): Promise<Job | undefined> => {
    const found = await trx.selectFrom('jobs').select(JOB_COLUMNS).where('id', '=', id).executeTakeFirst();
    return found && toJob(found);
  };

  return {
    get: (id) => read(db, id),

    list: async (filter = {}) => {
      let query = db.selectFrom('jobs');
      if (filter.executionId !== undefined) query = query.where('execution_id', '=', filter.executionId);
      if (filter.status !== undefined) query = query.where('status', '=', filter.status);
      if (filter.node !== undefined) query = query.where('owner', '=', filter.node);
      const { total } = await query.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
      const rows = await paged(query.select(JOB_COLUMNS).orderBy('created_at', 'desc').orderBy('id', 'desc'), filter).execute();
      return { items: rows.map(toJob), total: Number(total) };
    },

    history: async (id) =>
      (await db.selectFrom('job_transitions').select(['seq', 'from', 'to', 'event', 'node', 'at']).where('job_id', '=', id).orderBy('seq').execute()).map(toTransition),

    snapshot: async (id) => {
      const row = await db.selectFrom('jobs').select(['snapshot', 'snapshot_version']).where('id', '=', id).executeTakeFirst();
      return row ? toStoredSnapshot(row) : null;
    },

    appendLogs: (id, entries) =>
      write(database, async (trx) => {
        // The job's row is the lock that numbers its log lines (a late flush of a node that lost the job may race its new holder).
        const job = await trx
          .selectFrom('jobs')
          .select('id')
          .where('id', '=', id)
          .$if(dialect.rowLocks, (q) => q.forUpdate())
          .executeTakeFirst();
        if (job === undefined) throw new NotFoundError(`job ${id} does not exist`);
        if (entries.length === 0) return;
        const last = await trx.selectFrom('job_logs').select((eb) => eb.fn.max('seq').as('seq')).where('job_id', '=', id).executeTakeFirst();
        const first = Number(last?.seq ?? 0) + 1;
        const rows = entries.map((entry, index) => ({ job_id: id, seq: first + index, at: entry.at, level: entry.level, message: entry.message, fields: json(entry.fields) }));
        for (const batch of batches(rows)) await trx.insertInto('job_logs').values(batch).execute();
      }),

    logs: async (id, options = {}) =>
      (
        await db
          .selectFrom('job_logs')
          .select(['seq', 'at', 'level', 'message', 'fields'])
          .where('job_id', '=', id)
          .where('seq', '>', options.after ?? 0)
          .orderBy('seq')
          .limit(options.limit ?? DEFAULT_LOG_LIMIT)
          .execute()
      ).map(toLogEntry),

    claim: async (node, leaseMs) => {
      const claimed = await write(database, async (trx) => {
        // Claimable: queued, or held by a lease that ran out (its node died, hung or handed it back).
        const busy = trx
          .selectFrom('jobs')
          .select(['policy_id', (eb) => eb.fn.countAll<number>().as('active')])
          .where('status', 'in', HELD)
          .groupBy('policy_id')
          .as('busy');
        const next = await trx
          .selectFrom('jobs as j')
          .leftJoin(busy, (join) => join.on((eb) => eb('busy.policy_id', 'is not distinct from', eb.ref('j.policy_id'))))
          .select(['j.id', 'j.status', 'j.phase'])
          .where((eb) =>
            eb.or([
              eb('j.status', '=', 'pending'),
              eb.and([eb('j.status', 'in', HELD), eb.or([eb('j.lease_until', 'is', null), eb('j.lease_until', '<', dialect.now())])]),
            ]),
          )
          .orderBy((eb) => eb.fn.coalesce('busy.active', sql<number>`0`))
          .orderBy('j.priority', 'desc')
          .orderBy('j.created_at')
          .orderBy('j.id')
          .limit(1)
          .$if(dialect.rowLocks, (q) => q.forUpdate('j').skipLocked())
          .executeTakeFirst();
        if (next === undefined) return undefined;
        const at = now();
        const takenOver = next.status !== 'pending';
        const row = await trx
          .updateTable('jobs')
          .set((eb) => ({
            status: takenOver ? next.status : 'running',
            owner: node,
            lease_until: dialect.later(leaseMs),
            fence: eb('fence', '+', 1),
            started_at: eb.fn.coalesce('started_at', eb.val(at)),
            updated_at: at,
          }))
          .where('id', '=', next.id)
          .returning([...JOB_COLUMNS, 'snapshot', 'snapshot_version', 'fence', 'stop_requested'])
          .executeTakeFirstOrThrow();
        const job = toJob(row);
        const state = statePath(next.status as JobStatus, next.phase);
        await recordStep(trx, dialect, job, takenOver ? { from: state, to: state, event: 'takeover', node } : { from: 'pending', to: 'running', event: 'claimed', node }, at);
        return { job, lease: { jobId: job.id, node, fence: Number(row.fence) }, snapshot: toStoredSnapshot(row), takenOver, stopRequested: flag(row.stop_requested) };
      });
      if (claimed) announce(database);
      return claimed;
    },

    saveStep: async (lease, step) => {
      await write(database, async (trx) => {
        const at = now();
        const ended = ENDED_STATUSES.has(step.status);
        const saved = await trx
          .updateTable('jobs')
          .set((eb) => ({
            status: step.status,
            phase: step.phase,
            attempt: step.attempt,
            progress: json(step.progress),
            error: jsonOrNull(step.error),
            snapshot: jsonOrNull(step.snapshot?.snapshot),
            snapshot_version: step.snapshot?.version ?? null,
            updated_at: at,
            finished_at: ended ? eb.fn.coalesce('finished_at', eb.val(at)) : null,
            ...(ended ? { lease_until: null } : {}),
          }))
          .where('id', '=', lease.jobId)
          .where('owner', '=', lease.node)
          .where('fence', '=', lease.fence)
          // Ended by a step (and the job perhaps queued again since): the lease is over.
          .where('lease_until', 'is not', null)
          .returning(JOB_COLUMNS)
          .executeTakeFirst();
        if (saved === undefined) throw new LeaseLostError(`job ${lease.jobId}: node ${lease.node} no longer holds it (fence ${lease.fence})`);
        if (step.transition === undefined) return;
        await recordStep(trx, dialect, toJob(saved), { ...step.transition, node: lease.node }, at);
      });
      if (step.transition !== undefined) announce(database);
    },

    renewLeases: async (node, leaseMs) =>
      (
        await db
          .updateTable('jobs')
          .set({ lease_until: dialect.later(leaseMs) })
          .where('owner', '=', node)
          .where('status', 'in', HELD)
          // A lease that ran out is lost, even before another node claims the job: its node may
          // have halted it already (the store out of reach for a whole lease), and renewing it
          // would keep every node from resuming it.
          .where('lease_until', '>', dialect.now())
          .returning(['id', 'fence', 'stop_requested'])
          .execute()
      ).map((row) => ({ jobId: row.id, fence: Number(row.fence), stopRequested: flag(row.stop_requested) })),

    release: async (lease) => {
      await db
        .updateTable('jobs')
        .set((eb) => ({ lease_until: null, fence: eb('fence', '+', 1) }))
        .where('id', '=', lease.jobId)
        .where('owner', '=', lease.node)
        .where('fence', '=', lease.fence)
        .execute();
    },

    requeue: async (id) => {
      const job = await write(database, async (trx) => {
        const current = await read(trx, id);
        if (current === undefined || !isRetryable(current)) return undefined;
        const at = now();
        const row = await trx
          .updateTable('jobs')
          // A retried job coalesces nothing: another job with its key may be pending.
          .set({ status: 'pending', phase: null, attempt: 0, progress: '{}', error: null, snapshot: null, snapshot_version: null, lease_until: null, stop_requested: false, coalesce_key: null, finished_at: null, updated_at: at })
          .where('id', '=', id)
          .where('status', '=', current.status)
          .returning(JOB_COLUMNS)
          .executeTakeFirst();
        if (row === undefined) return undefined;
        const requeued = toJob(row);
        await recordStep(trx, dialect, requeued, { from: current.status, to: 'pending', event: 'retry', node: null }, at);
        return requeued;
      });
      if (job) announce(database);
      return job;
    },

    stopPending: async (id) => {
      const job = await write(database, async (trx) => {
        const at = now();
        const row = await trx
          .updateTable('jobs')
          .set({ status: 'stopped', finished_at: at, updated_at: at })
          .where('id', '=', id)
          .where('status', '=', 'pending')
          .returning(JOB_COLUMNS)
          .executeTakeFirst();
        if (row === undefined) return undefined;
        const stopped = toJob(row);
        await recordStep(trx, dialect, stopped, { from: 'pending', to: 'stopped', event: 'STOP', node: null }, at);
        return stopped;
      });
      if (job) announce(database);
      return job;
    },

    requestStop: async (id) => {
      const result = await write(database, async (trx) => {
        const held = await trx
          .selectFrom('jobs')
          .select((eb) => ['status', 'phase', eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', dialect.now())]).as('free')])
          .where('id', '=', id)
          .where('status', 'in', HELD)
          .$if(dialect.rowLocks, (q) => q.forUpdate())
          .executeTakeFirst();
        if (held === undefined) return undefined;
        if (!flag(held.free as boolean | number)) {
          const row = await trx.updateTable('jobs').set({ stop_requested: true }).where('id', '=', id).returning(JOB_COLUMNS).executeTakeFirstOrThrow();
          return { job: toJob(row), ended: false };
        }
        // No live node holds it: nothing runs to be stopped, so it ends here, fenced off from a holder that might come back.
        const at = now();
        const row = await trx
          .updateTable('jobs')
          .set((eb) => ({ status: 'stopped', lease_until: null, fence: eb('fence', '+', 1), finished_at: at, updated_at: at }))
          .where('id', '=', id)
          .returning(JOB_COLUMNS)
          .executeTakeFirstOrThrow();
        const stopped = toJob(row);
        await recordStep(trx, dialect, stopped, { from: statePath(held.status as JobStatus, held.phase), to: 'stopped', event: 'STOP', node: null }, at);
        return { job: stopped, ended: true };
      });
      if (result?.ended) announce(database);
      return result?.job;
    },

    changesSince: async (seq, limit = 1_000) =>
      (await db.selectFrom('job_changes').select(['seq', 'change']).where('seq', '>', seq).orderBy('seq').limit(limit).execute()).map(toStoredChange),

    forgetChanges: async (olderThanMs) => {
      const cutoff = new Date(Date.now() - olderThanMs).toISOString();
      const forgotten = await db.deleteFrom('job_changes').where('at', '<', cutoff).where('seq', '<', await lastChange()).executeTakeFirst();
      return Number(forgotten.numDeletedRows);
    },

    lastChange,
  };
}
