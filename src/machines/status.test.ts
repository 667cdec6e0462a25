import Database from 'better-sqlite3';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { migrate } from '../services/store/sqlite/migrations.js';
import { deletionMachine } from './deletion.js';
import { replicationMachine } from './replication.js';
import {
  ACTIVE_STATUSES,
  ENDED_STATUSES,
  EXECUTION_STATUSES,
  JOB_STATUSES,
  RETRYABLE_STATUSES,
  executionStatus,
  jobPhase,
  jobStatus,
  type ExecutionStatus,
  type JobStatus,
  type StatusOf,
} from './status.js';

const countsOf = (statuses: JobStatus[]) =>
  Object.fromEntries(JOB_STATUSES.map((status) => [status, statuses.filter((each) => each === status).length])) as Record<JobStatus, number>;

describe('job statuses', () => {
  it('are the top-level states of both machines, in their order', () => {
    expect(JOB_STATUSES).toEqual(Object.keys(replicationMachine.root.states));
    expect(Object.keys(deletionMachine.root.states)).toEqual(JOB_STATUSES);
    expectTypeOf<StatusOf<typeof deletionMachine>>().toEqualTypeOf<JobStatus>();
  });

  it('split into active and ended by the final states; a retry starts from some ended ones', () => {
    for (const machine of [replicationMachine, deletionMachine]) {
      const finals = Object.values(machine.root.states).filter((state) => state.type === 'final').map((state) => state.key);
      expect([...ENDED_STATUSES]).toEqual(finals);
    }
    expect([...ACTIVE_STATUSES, ...ENDED_STATUSES].sort()).toEqual([...JOB_STATUSES].sort());
    expect([...ACTIVE_STATUSES].filter((status) => ENDED_STATUSES.has(status))).toEqual([]);
    expect([...RETRYABLE_STATUSES].every((status) => ENDED_STATUSES.has(status))).toBe(true);
    expect(RETRYABLE_STATUSES.has('finished')).toBe(false);
  });

  it('read status and phase off a snapshot value', () => {
    expect([jobStatus({ value: 'pending' }), jobPhase({ value: 'pending' })]).toEqual(['pending', undefined]);
    expect([jobStatus({ value: { running: 'check' } }), jobPhase({ value: { running: 'check' } })]).toEqual(['running', 'check']);
    expect([jobStatus({ value: 'retrying' }), jobPhase({ value: 'retrying' })]).toEqual(['retrying', undefined]);
  });
});

describe('execution status', () => {
  it('is a job status but retrying', () => {
    expect(EXECUTION_STATUSES).toEqual(JOB_STATUSES.filter((status) => status !== 'retrying'));
  });

  // One case a clause of the rule, as counts of jobs per status.
  const cases: Array<[Partial<Record<JobStatus, number>>, ExecutionStatus]> = [
    [{ pending: 2 }, 'pending'],
    [{ pending: 1, finished: 1 }, 'running'],
    [{ retrying: 1, error: 1 }, 'running'],
    [{ error: 1, stopped: 1, finished: 1 }, 'error'],
    [{ stopped: 1, finished: 2 }, 'stopped'],
    [{ finished: 2 }, 'finished'],
    [{}, 'finished'],
  ];

  it.each(cases)('of jobs %j is %s', (counts, expected) => {
    expect(executionStatus({ ...countsOf([]), ...counts })).toBe(expected);
  });

  it('agrees with the store view execution_summaries on every mix of up to two jobs per status', () => {
    const db = new Database(':memory:');
    migrate(db);
    const at = new Date(0).toISOString();
    const addExecution = db.prepare(`INSERT INTO executions (id, policy_id, trigger, created_at) VALUES (?, NULL, 'manual', ?)`);
    const addJob = db.prepare(
      `INSERT INTO jobs (id, execution_id, operation, destination, input, status, attempt, progress, priority, created_at, updated_at)
       VALUES (?, ?, 'copy', 'registry/repository', '{}', ?, 0, '{}', 0, ?, ?)`,
    );
    const derived = db.prepare<[string], { status: ExecutionStatus }>('SELECT status FROM execution_summaries WHERE id = ?');

    let mixes: JobStatus[][] = [[]];
    for (const status of JOB_STATUSES) mixes = mixes.flatMap((mix) => [mix, [...mix, status], [...mix, status, status]]);
    expect(mixes).toHaveLength(3 ** JOB_STATUSES.length);
    for (const [index, mix] of mixes.entries()) {
      const id = `execution-${index}`;
      addExecution.run(id, at);
      for (const [n, status] of mix.entries()) addJob.run(`${id}-job-${n}`, id, status, at, at);
      expect(executionStatus(countsOf(mix)), JSON.stringify(mix)).toBe(derived.get(id)?.status);
    }
    db.close();
  });
});
