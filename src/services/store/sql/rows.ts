import type { Insertable, Selectable } from 'kysely';
import { v7 as uuidv7 } from 'uuid';
import type { ErrorInfo } from '../../registry/errors.js';
import type { Execution, ExecutionStatus, ExecutionTrigger, Job, JobLogEntry, JobOperation, JobStatus, Policy, Registry, StoredJobChange, Timestamp, Transition, StoredSnapshot } from '../types.js';
import type { ExecutionSummariesView, JobChangesTable, JobLogsTable, JobsTable, PoliciesTable, RegistriesTable, JobTransitionsTable } from './schema.js';

/**
 * Rows to records and back. Ids are UUIDv7: ordered by creation, so listings that order by
 * (created_at, id) keep the order things were made in within one millisecond.
 */

export const newId = (): string => uuidv7();

export const now = (): Timestamp => new Date().toISOString();

/** SQLite hands booleans back as 0/1. */
export const flag = (value: boolean | number): boolean => value === true || value === 1;

export const json = (value: unknown): string => JSON.stringify(value);

export function jsonOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

export function parsed<T>(text: string): T {
  return JSON.parse(text) as T;
}

export function parsedOrNull<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/** A copy without the keys whose value is undefined, so that spreading it keeps what it leaves out. */
export function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}

export type RegistryRow = Selectable<RegistriesTable>;
export type NewRegistryRow = Insertable<RegistriesTable>;
export type PublicRegistryRow = Omit<RegistryRow, 'password'>;

export function toRegistry(row: PublicRegistryRow): Registry {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    insecure: flag(row.insecure),
    ca: row.ca,
    hasCredentials: row.username !== null,
    username: row.username,
    credentialHelper: row.credential_helper,
    requestsPerSecond: row.requests_per_second,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export type PolicyRow = Selectable<PoliciesTable>;

export function policyRow(policy: Policy): Insertable<PoliciesTable> {
  return {
    id: policy.id,
    name: policy.name,
    enabled: policy.enabled,
    source_registry_id: policy.sourceRegistryId,
    destination_registry_id: policy.destinationRegistryId,
    repositories: json(policy.repositories),
    tags: json(policy.tags),
    rewrite: json(policy.rewrite),
    override: policy.override,
    platforms: json(policy.platforms),
    replicate_deletions: policy.replicateDeletions,
    bandwidth_kibps: policy.bandwidthKiBps,
    trigger: json(policy.trigger),
    priority: policy.priority,
    referrers: json(policy.referrers),
    require_signature: jsonOrNull(policy.requireSignature),
    created_at: policy.createdAt,
    updated_at: policy.updatedAt,
  };
}

export function toPolicy(row: Omit<PolicyRow, 'last_cron_slot'>): Policy {
  return {
    id: row.id,
    name: row.name,
    enabled: flag(row.enabled),
    sourceRegistryId: row.source_registry_id,
    destinationRegistryId: row.destination_registry_id,
    repositories: parsed(row.repositories),
    tags: parsed(row.tags),
    rewrite: parsed(row.rewrite),
    override: flag(row.override),
    platforms: parsed(row.platforms),
    replicateDeletions: flag(row.replicate_deletions),
    bandwidthKiBps: row.bandwidth_kibps,
    trigger: parsed(row.trigger),
    priority: row.priority,
    referrers: parsed(row.referrers),
    requireSignature: parsedOrNull(row.require_signature),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function toExecution(row: Selectable<ExecutionSummariesView>): Execution {
  return {
    id: row.id,
    policyId: row.policy_id,
    trigger: row.trigger as ExecutionTrigger,
    status: row.status as ExecutionStatus,
    jobs: {
      pending: Number(row.pending),
      running: Number(row.running),
      retrying: Number(row.retrying),
      finished: Number(row.finished),
      error: Number(row.error),
      stopped: Number(row.stopped),
    },
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

/** The columns a job record is made of (not its snapshot, which can be large). */
export const JOB_COLUMNS = [
  'id',
  'execution_id',
  'policy_id',
  'operation',
  'source',
  'destination',
  'input',
  'status',
  'phase',
  'attempt',
  'progress',
  'error',
  'priority',
  'owner',
  'created_at',
  'started_at',
  'finished_at',
  'updated_at',
] as const satisfies ReadonlyArray<keyof JobsTable>;

export type JobRow = Pick<Selectable<JobsTable>, (typeof JOB_COLUMNS)[number]>;

export function toJob(row: JobRow): Job {
  return {
    id: row.id,
    executionId: row.execution_id,
    policyId: row.policy_id,
    operation: row.operation as JobOperation,
    source: row.source,
    destination: row.destination,
    input: parsed(row.input),
    status: row.status as JobStatus,
    phase: row.phase,
    attempt: row.attempt,
    progress: parsed(row.progress),
    error: parsedOrNull<ErrorInfo>(row.error),
    priority: row.priority,
    node: row.owner,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    updatedAt: row.updated_at,
  };
}

/** A job row's snapshot with the version of the machine that wrote it (those stored before versions count as 0). */
export function toStoredSnapshot(row: { snapshot: string | null; snapshot_version: number | null }): StoredSnapshot | null {
  return row.snapshot === null ? null : { version: row.snapshot_version ?? 0, snapshot: parsed(row.snapshot) };
}

export function toTransition(row: Omit<Selectable<JobTransitionsTable>, 'job_id'>): Transition {
  return { seq: row.seq, from: row.from, to: row.to, event: row.event, node: row.node, at: row.at };
}

export function toLogEntry(row: Omit<Selectable<JobLogsTable>, 'job_id'>): JobLogEntry {
  return { seq: Number(row.seq), at: row.at, level: row.level, message: row.message, fields: parsed(row.fields) };
}

export function toStoredChange(row: Pick<Selectable<JobChangesTable>, 'seq' | 'change'>): StoredJobChange {
  return { seq: Number(row.seq), ...parsed<Omit<StoredJobChange, 'seq'>>(row.change) };
}
