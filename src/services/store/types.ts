import type { ExecutionStatus, JobStatus } from '../../machines/status.js';
import type { Credentials } from '../registry/credentials.js';
import type { ErrorInfo } from '../registry/errors.js';
import type { Filter, TagFilter } from '../tag-filter.js';

/**
 * What ferry keeps: registries, policies, executions (one per policy run), jobs (one per
 * repository) with their persisted machine snapshot, transition history and logs. The
 * interface is asynchronous and free of SQLite types: a PostgreSQL store will implement it
 * for running several ferry instances.
 */

export type Id = string;

/** ISO 8601 timestamps throughout. */
export type Timestamp = string;

export interface RegistryInput {
  name: string;
  /** As in references: `ghcr.io`, `registry.example.com:5000`, `docker.io`. */
  url: string;
  insecure?: boolean;
  /** PEM bundle trusted besides the system CAs. */
  ca?: string | null;
  credentials?: Credentials | null;
}

/** A registry as the API shows it: whether it has credentials, never what they are. */
export interface Registry {
  id: Id;
  name: string;
  url: string;
  insecure: boolean;
  ca: string | null;
  hasCredentials: boolean;
  /** Who the credentials are for; the password is never read back except by `registryCredentials`. */
  username: string | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export type { Filter, TagFilter } from '../tag-filter.js';

/**
 * Harbor's flattening: the source path minus its first `flatten` components (-1: all but the
 * last), under `namespace` when one is set.
 */
export interface NamespaceRewrite {
  namespace: string | null;
  flatten: number;
}

export type Trigger = { type: 'manual' } | { type: 'cron'; schedule: string } | { type: 'event' };

export interface PolicyInput {
  name: string;
  enabled?: boolean;
  sourceRegistryId: Id;
  destinationRegistryId: Id;
  repositories?: Filter;
  tags?: TagFilter;
  rewrite?: NamespaceRewrite;
  /** Replace a destination tag that points at another digest. */
  override?: boolean;
  /** `os/arch[/variant]`; empty copies every platform. */
  platforms?: string[];
  /** Delete on the destination what is deleted on the source (event triggers). */
  replicateDeletions?: boolean;
  /** KiB/s per job; null for no limit. */
  bandwidthKiBps?: number | null;
  trigger?: Trigger;
  /** Higher runs first. */
  priority?: number;
}

export interface Policy extends Required<Omit<PolicyInput, 'bandwidthKiBps'>> {
  id: Id;
  bandwidthKiBps: number | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export type ExecutionTrigger = 'manual' | 'cron' | 'event';

/** Job and execution statuses are the job machines' vocabulary, said once there. */
export type { ExecutionStatus, JobStatus };

export interface Execution {
  id: Id;
  policyId: Id | null;
  trigger: ExecutionTrigger;
  status: ExecutionStatus;
  /** Jobs per status. */
  jobs: Record<JobStatus, number>;
  createdAt: Timestamp;
  /** Set once no job is pending, running or retrying (an execution with no jobs: its creation). */
  finishedAt: Timestamp | null;
}

export type JobOperation = 'copy' | 'delete';

export interface NewJob {
  operation: JobOperation;
  /** `registry/repository` the job reads from (the destination for deletions). */
  source: string | null;
  destination: string;
  /** The machine input (ReplicationInput or DeletionInput), stored as JSON. */
  input: unknown;
  /** Defaults to the policy's priority. */
  priority?: number;
}

export interface Job {
  id: Id;
  executionId: Id;
  policyId: Id | null;
  operation: JobOperation;
  source: string | null;
  destination: string;
  input: unknown;
  status: JobStatus;
  /** The phase inside `running` (or the one a retry will resume). */
  phase: string | null;
  attempt: number;
  progress: Record<string, number>;
  error: ErrorInfo | null;
  priority: number;
  createdAt: Timestamp;
  startedAt: Timestamp | null;
  finishedAt: Timestamp | null;
  updatedAt: Timestamp;
}

/** One row of a job's history: a change of status or phase and the event that caused it. */
export interface Transition {
  seq: number;
  from: string | null;
  to: string;
  event: string;
  at: Timestamp;
}

export interface JobLogEntry {
  seq: number;
  at: Timestamp;
  level: string;
  message: string;
  /** The record's other fields (secrets already redacted by the logger). */
  fields: Record<string, unknown>;
}

/** What a worker writes after every step of a job's machine, in one transaction. */
export interface JobStep {
  status: JobStatus;
  phase: string | null;
  attempt: number;
  progress: Record<string, number>;
  error: ErrorInfo | null;
  /** `actor.getPersistedSnapshot()`, or null to start over (a retry). */
  snapshot: unknown;
  transition?: { from: string | null; to: string; event: string };
}

export interface Page {
  /** No limit when left out. */
  limit?: number;
  offset?: number;
}

export interface JobStore {
  createRegistry(input: RegistryInput): Promise<Registry>;
  getRegistry(id: Id): Promise<Registry | undefined>;
  findRegistryByName(name: string): Promise<Registry | undefined>;
  listRegistries(): Promise<Registry[]>;
  /** Fields left out keep their value; `credentials: null` removes them. */
  updateRegistry(id: Id, patch: Partial<RegistryInput>): Promise<Registry | undefined>;
  /** False when policies still use it. */
  deleteRegistry(id: Id): Promise<boolean>;
  /** For connecting only: never for the API or logs. */
  registryCredentials(id: Id): Promise<Credentials | undefined>;

  createPolicy(input: PolicyInput): Promise<Policy>;
  getPolicy(id: Id): Promise<Policy | undefined>;
  findPolicyByName(name: string): Promise<Policy | undefined>;
  listPolicies(): Promise<Policy[]>;
  updatePolicy(id: Id, patch: Partial<PolicyInput>): Promise<Policy | undefined>;
  deletePolicy(id: Id): Promise<boolean>;
  /**
   * Claims a cron slot: true once per (policy, slot), however many times or instances ask,
   * so a schedule never fires twice for the same time.
   */
  claimCronSlot(policyId: Id, slot: Timestamp): Promise<boolean>;

  /** The execution and its jobs, created together (all pending). */
  createExecution(execution: { policyId: Id | null; trigger: ExecutionTrigger; jobs: NewJob[] }): Promise<{ execution: Execution; jobs: Job[] }>;
  getExecution(id: Id): Promise<Execution | undefined>;
  listExecutions(filter?: Page & { policyId?: Id; status?: ExecutionStatus }): Promise<{ items: Execution[]; total: number }>;

  getJob(id: Id): Promise<Job | undefined>;
  listJobs(filter?: Page & { executionId?: Id; status?: JobStatus }): Promise<{ items: Job[]; total: number }>;
  /** The persisted machine snapshot, to resume the job. */
  jobSnapshot(id: Id): Promise<unknown>;
  /**
   * The next pending job to run: fewest running-or-retrying jobs in its policy first (so one
   * slow policy cannot hold every worker), then priority, then age. Marks it running.
   */
  claimNextJob(): Promise<Job | undefined>;
  /** Jobs that were running or retrying when the process died, to resume from their snapshots. */
  interruptedJobs(): Promise<Job[]>;
  saveStep(id: Id, step: JobStep): Promise<void>;
  /** Back to pending with no snapshot (a retry), from error or stopped only; false otherwise. */
  requeueJob(id: Id): Promise<boolean>;
  /** Ends a pending job without running it; false when it is not pending. */
  stopPendingJob(id: Id): Promise<boolean>;
  history(id: Id): Promise<Transition[]>;
  appendLogs(id: Id, entries: Array<Omit<JobLogEntry, 'seq'>>): Promise<void>;
  logs(id: Id, options?: { after?: number; limit?: number }): Promise<JobLogEntry[]>;

  close(): Promise<void>;
}
