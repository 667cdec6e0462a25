import { sql } from 'kysely';
import { NotFoundError } from '../errors.js';
import type { ExecutionStore, Id, NewJob } from '../types.js';
import { announce, batches, paged, write, type Database, type Executor } from './database.js';
import { recordChanges, recordTransition } from './history.js';
import { json, newId, now, toExecution, toJob, type JobRow } from './rows.js';

/** The priority a policy's jobs get unless they set their own. */
async function policyPriority(trx: Executor, rowLocks: boolean, policyId: Id | null): Promise<number> {
  if (policyId === null) return 0;
  // FOR SHARE: a policy being deleted is not given a new execution (see PolicyStore.delete).
  const policy = await trx.selectFrom('policies').select('priority').where('id', '=', policyId).$if(rowLocks, (q) => q.forShare()).executeTakeFirst();
  if (policy === undefined) throw new NotFoundError(`policy ${policyId} does not exist`);
  return policy.priority;
}

function newJobRow(job: NewJob, executionId: Id, policyId: Id | null, defaultPriority: number, at: string): JobRow {
  return {
    id: newId(),
    execution_id: executionId,
    policy_id: policyId,
    operation: job.operation,
    source: job.source,
    destination: job.destination,
    input: json(job.input ?? null),
    status: 'pending',
    phase: null,
    attempt: 0,
    progress: '{}',
    error: null,
    priority: job.priority ?? defaultPriority,
    owner: null,
    created_at: at,
    started_at: null,
    finished_at: null,
    updated_at: at,
  };
}

/** The rows a pending job's key already covers are left out: the unique index on pending keys decides, so racing nodes queue one. */
async function insertCoalesced(trx: Executor, rows: JobRow[], jobs: readonly NewJob[]): Promise<JobRow[]> {
  const inserted: JobRow[] = [];
  for (const [index, row] of rows.entries()) {
    const result = await trx
      .insertInto('jobs')
      .values({ ...row, coalesce_key: jobs[index]!.coalesceKey ?? null })
      // The predicate of the partial index, said as a literal: SQLite matches it to the index only so.
      .onConflict((conflict) => conflict.column('coalesce_key').where('status', '=', sql.lit('pending')).doNothing())
      .executeTakeFirst();
    if (result.numInsertedOrUpdatedRows !== 0n) inserted.push(row);
  }
  return inserted;
}

/** Rolls back an execution whose every job was coalesced. */
class NothingQueued extends Error {}

export function executionStore(database: Database): ExecutionStore {
  const { db } = database;
  const read = async (trx: Executor, id: Id) => {
    const found = await trx.selectFrom('execution_summaries').selectAll().where('id', '=', id).executeTakeFirst();
    return found && toExecution(found);
  };
  const create = async (execution: Parameters<ExecutionStore['create']>[0], coalesce: boolean) => {
    const created = await write(database, async (trx) => {
      const priority = await policyPriority(trx, database.dialect.rowLocks, execution.policyId);
      const id = newId();
      const at = now();
      await trx.insertInto('executions').values({ id, policy_id: execution.policyId, trigger: execution.trigger, created_at: at }).execute();
      let rows = execution.jobs.map((job) => newJobRow(job, id, execution.policyId, priority, at));
      if (coalesce) {
        rows = await insertCoalesced(trx, rows, execution.jobs);
        if (rows.length === 0) throw new NothingQueued();
      } else {
        for (const batch of batches(rows)) await trx.insertInto('jobs').values(batch).execute();
      }
      const jobs = rows.map(toJob);
      for (const job of jobs) await recordTransition(trx, job.id, { from: null, to: 'pending', event: 'created', node: null }, at);
      await recordChanges(trx, database.dialect, jobs, at);
      return { execution: (await read(trx, id))!, jobs };
    });
    // Every node reads the new jobs' first changes now, not at the next change.
    announce(database);
    return created;
  };

  return {
    create: (execution) => create(execution, false),
    createCoalesced: async (execution) => {
      try {
        return await create(execution, true);
      } catch (error) {
        if (error instanceof NothingQueued) return undefined;
        throw error;
      }
    },
    get: (id) => read(db, id),
    list: async (filter = {}) => {
      let query = db.selectFrom('execution_summaries');
      if (filter.policyId !== undefined) query = query.where('policy_id', '=', filter.policyId);
      if (filter.status !== undefined) query = query.where('status', '=', filter.status);
      const { total } = await query.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
      const rows = await paged(query.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc'), filter).execute();
      return { items: rows.map(toExecution), total: Number(total) };
    },
  };
}
