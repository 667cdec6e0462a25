import type { AnyStateMachine, StateValueFrom } from 'xstate';
import { replicationMachine } from './replication.js';

/**
 * The job vocabulary, read off the job machines so that it is said once: a job's status is
 * the top-level state of its machine, and an execution's status is derived from its jobs'.
 */

/** The statuses of a job machine: its top-level states (`{ running: 'check' }` is `running`). */
export type StatusOf<TMachine extends AnyStateMachine> = TopLevel<StateValueFrom<TMachine>>;
type TopLevel<Value> = Value extends string ? Value : keyof Value;

/** Both machines have the same top-level states (status.test.ts): the replication machine speaks for both. */
export type JobStatus = StatusOf<typeof replicationMachine>;

const topLevel = Object.values(replicationMachine.root.states);

/** In the machine's order: pending, running, retrying, then the ends. */
export const JOB_STATUSES: readonly JobStatus[] = topLevel.map((state) => state.key as JobStatus);

/** The final states: a job does not leave them on its own (only a retry requeues it). */
export const ENDED_STATUSES: ReadonlySet<JobStatus> = new Set(topLevel.filter((state) => state.type === 'final').map((state) => state.key as JobStatus));

/** The others: a job can still leave them, so STOP applies to them. */
export const ACTIVE_STATUSES: ReadonlySet<JobStatus> = new Set(JOB_STATUSES.filter((status) => !ENDED_STATUSES.has(status)));

/**
 * The ended statuses a retry starts over from. Not `finished`: that job did all it was asked,
 * and copying what changed since is the next execution's work, not this job's.
 */
export const RETRYABLE_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>(['error', 'stopped']);

/**
 * Whether a retry may requeue the job: a failed or stopped one, or a finished one some of whose
 * tags failed alone (a retry then copies only what is still missing).
 */
export function isRetryable(job: { status: JobStatus; progress: Record<string, number> }): boolean {
  return RETRYABLE_STATUSES.has(job.status) || (job.status === 'finished' && (job.progress.tagsFailed ?? 0) > 0);
}

/** An execution is never retrying: a job waiting to retry has not failed, so its execution is still running. */
export type ExecutionStatus = Exclude<JobStatus, 'retrying'>;

export const EXECUTION_STATUSES: readonly ExecutionStatus[] = JOB_STATUSES.filter((status): status is ExecutionStatus => status !== 'retrying');

/**
 * An execution's status, never stored but derived from how many of its jobs are in each
 * status: pending while every job is pending; running while any is pending, running or
 * retrying (pending jobs beside started ones mean it is under way); then error if any job
 * failed, stopped if any was stopped, else finished (so is an execution without jobs). The
 * store's view `execution_summaries` says the same in SQL (status.test.ts holds the two
 * together).
 */
export function executionStatus(jobs: Readonly<Record<JobStatus, number>>): ExecutionStatus {
  const total = JOB_STATUSES.reduce((sum, status) => sum + jobs[status], 0);
  if (jobs.pending > 0 && jobs.pending === total) return 'pending';
  if ([...ACTIVE_STATUSES].some((status) => jobs[status] > 0)) return 'running';
  if (jobs.error > 0) return 'error';
  if (jobs.stopped > 0) return 'stopped';
  return 'finished';
}

/** The job's status: the top-level state of either machine. */
export function jobStatus(snapshot: { value: unknown }): JobStatus {
  const value = snapshot.value;
  return (typeof value === 'string' ? value : Object.keys(value as object)[0]) as JobStatus;
}

/** The phase inside `running`, if any. */
export function jobPhase(snapshot: { value: unknown }): string | undefined {
  const value = snapshot.value;
  if (typeof value !== 'object' || value === null) return undefined;
  const inner = (value as Record<string, unknown>).running;
  return typeof inner === 'string' ? inner : undefined;
}

/** The phase of each batch a replication has under way (`retrying` for one waiting to retry). */
export function batchPhases(snapshot: { children: Record<string, unknown> }): string[] {
  return Object.values(snapshot.children).flatMap((child) => {
    // The job's other children are its phase actors (initialize, check), which have no state value.
    const state = (child as { getSnapshot?: () => { value?: unknown; status: string } } | undefined)?.getSnapshot?.();
    return state?.value !== undefined && state.status === 'active' ? [jobPhase(state as { value: unknown }) ?? jobStatus(state as { value: unknown })] : [];
  });
}

/** `running.pullManifest`: a job's state as its history and the console name it. */
export function statePath(status: JobStatus, phase: string | null): string {
  return phase && !ENDED_STATUSES.has(status) ? `${status}.${phase}` : status;
}
