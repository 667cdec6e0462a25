import type { ReferrerSelection, SignatureRequirement } from '../../actors/types.js';
import type { ExecutionStatus, JobStatus } from '../../machines/status.js';
import type { BudgetState } from '../registry/budget.js';
import type { Credentials } from '../registry/credentials.js';
import type { ErrorInfo } from '../registry/errors.js';
import type { Filter, TagFilter } from '../tag-filter.js';

/**
 * What ferry keeps: registries, policies, executions (one per policy run), jobs (one per
 * repository) with their persisted machine snapshot, transition history and logs, and the
 * nodes that run them. One interface per aggregate, asynchronous and free of any engine's
 * types: `sqlite/` and `postgres/` implement them.
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
  /** A docker credential helper (`ecr-login` runs `docker-credential-ecr-login`) asked for the login instead. */
  credentialHelper?: string | null;
  /** The most requests per second each node sends it; null: no ceiling (its 429s still slow ferry down). */
  requestsPerSecond?: number | null;
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
  credentialHelper: string | null;
  requestsPerSecond: number | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export type { Filter, TagFilter } from '../tag-filter.js';
export type { ReferrerSelection, SignatureRequirement } from '../../actors/types.js';

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
  /** Which referrers (signatures, SBOMs, attestations) travel with each image. */
  referrers?: ReferrerSelection;
  /** Copy only the images with a cosign signature that verifies with this key; null copies them all. */
  requireSignature?: SignatureRequirement | null;
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
  /** Jobs with the same key do the same: while one is pending, another is not queued. */
  coalesceKey?: string;
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
  /** The node that holds it (running or retrying), or held it last. */
  node: NodeId | null;
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
  /** The node that took the step; null for steps no node took (created, stopped while pending, retried). */
  node: NodeId | null;
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

/** A node: one `ferry serve` process. */
export type NodeId = string;

/** A job as its holder owns it: every write of its steps carries the fence it was claimed with. */
export interface Lease {
  jobId: Id;
  node: NodeId;
  fence: number;
}

/** A persisted machine snapshot and the version of the machine definition that wrote it. */
export interface StoredSnapshot {
  version: number;
  snapshot: unknown;
}

/** A job claimed by a node: start it afresh, or resume it from `snapshot`. */
export interface ClaimedJob {
  job: Job;
  lease: Lease;
  /** Null for a job that has not taken a step yet. */
  snapshot: StoredSnapshot | null;
  /** It was running on another node whose lease ran out (or that handed it back). */
  takenOver: boolean;
  /** STOP was asked through another node while the previous holder had it: stop it once resumed. */
  stopRequested: boolean;
}

/** What a worker writes after every step of a job's machine, in one transaction. */
export interface JobStep {
  status: JobStatus;
  phase: string | null;
  attempt: number;
  progress: Record<string, number>;
  error: ErrorInfo | null;
  /** The machine's persisted snapshot, or null to start over (a retry). */
  snapshot: StoredSnapshot | null;
  transition?: { from: string | null; to: string; event: string };
}

/** A change of a job as the live feed carries it, numbered (`seq`) when it is stored. */
export interface JobChange {
  jobId: Id;
  executionId: Id;
  status: JobStatus;
  phase: string | null;
  attempt: number;
  progress: Record<string, number>;
  error: ErrorInfo | null;
  /** The node that holds the job, or held it last (as Job.node). */
  node: NodeId | null;
}

export interface StoredJobChange extends JobChange {
  seq: number;
}

/** A job its node still holds after renewing its leases. */
export interface HeldJob {
  jobId: Id;
  fence: number;
  /** STOP was asked through another node. */
  stopRequested: boolean;
}

export interface NodeInput {
  id: NodeId;
  host: string;
  pid: number;
}

export interface Node extends NodeInput {
  startedAt: Timestamp;
  heartbeatAt: Timestamp;
  draining: boolean;
  /** Jobs it holds now (running or retrying). */
  jobsHeld: number;
}

export interface Page {
  /** No limit when left out. */
  limit?: number;
  offset?: number;
}

export interface RegistryStore {
  create(input: RegistryInput): Promise<Registry>;
  get(id: Id): Promise<Registry | undefined>;
  findByName(name: string): Promise<Registry | undefined>;
  findByUrl(url: string): Promise<Registry | undefined>;
  list(page?: Page): Promise<{ items: Registry[]; total: number }>;
  /** Fields left out keep their value; `credentials: null` removes them. */
  update(id: Id, patch: Partial<RegistryInput>): Promise<Registry | undefined>;
  /** False when policies still use it. */
  delete(id: Id): Promise<boolean>;
  /** For connecting only: never for the API or logs. Throws SecretKeyError when the keyring cannot open the password. */
  credentials(id: Id): Promise<Credentials | undefined>;
  /**
   * Seals every password that is not sealed with the keyring's sealing key: plain text from
   * before ferry sealed them, or an older key's (rotation). Returns how many. Then checks the
   * keyring against the database's key check, sealed by the first keyring that opened it, so
   * that a node given another key is refused before it stores a password nobody else can open.
   */
  reseal(): Promise<number>;
}

export interface PolicyStore {
  create(input: PolicyInput): Promise<Policy>;
  get(id: Id): Promise<Policy | undefined>;
  findByName(name: string): Promise<Policy | undefined>;
  list(page?: Page): Promise<{ items: Policy[]; total: number }>;
  update(id: Id, patch: Partial<PolicyInput>): Promise<Policy | undefined>;
  /**
   * Deletes the policy; its executions stay, without it. With `ifIdle`, not while any of its
   * executions is under way: then nothing is deleted and `underWay` says how many are. The
   * check and the delete are one transaction, which an execution being created waits for.
   */
  delete(id: Id, options?: { ifIdle?: boolean }): Promise<{ deleted: boolean; underWay: number }>;
  /**
   * Claims a cron slot: true once per (policy, slot), however many times or nodes ask, so a
   * schedule never fires twice for the same time.
   */
  claimCronSlot(policyId: Id, slot: Timestamp): Promise<boolean>;
}

export interface ExecutionStore {
  /** The execution and its jobs, created together (all pending). */
  create(execution: { policyId: Id | null; trigger: ExecutionTrigger; jobs: NewJob[] }): Promise<{ execution: Execution; jobs: Job[] }>;
  /**
   * As create, leaving out each job whose coalesce key a pending job has (racing writers
   * included: a unique index decides); no execution when that leaves no job.
   */
  createCoalesced(execution: { policyId: Id | null; trigger: ExecutionTrigger; jobs: NewJob[] }): Promise<{ execution: Execution; jobs: Job[] } | undefined>;
  get(id: Id): Promise<Execution | undefined>;
  list(filter?: Page & { policyId?: Id; status?: ExecutionStatus }): Promise<{ items: Execution[]; total: number }>;
}

/**
 * Jobs, their history and logs, and the queue: the jobs table is the queue. A node claims a
 * job with a lease it renews; every write of the job's steps checks the lease; a job whose
 * lease ran out is claimed again by any node and resumed from its last step.
 */
export interface JobStore {
  get(id: Id): Promise<Job | undefined>;
  /** `node`: the jobs a node holds, or held last. */
  list(filter?: Page & { executionId?: Id; status?: JobStatus; node?: NodeId }): Promise<{ items: Job[]; total: number }>;
  history(id: Id): Promise<Transition[]>;
  /** The last persisted machine snapshot, as a resumed job would get it. */
  snapshot(id: Id): Promise<StoredSnapshot | null>;
  appendLogs(id: Id, entries: Array<Omit<JobLogEntry, 'seq'>>): Promise<void>;
  logs(id: Id, options?: { after?: number; limit?: number }): Promise<JobLogEntry[]>;

  /**
   * The next job for `node` to run, held for `leaseMs`: a pending one, or one whose holder's
   * lease ran out. Fewest running-or-retrying jobs in its policy first (so one slow policy
   * cannot hold every node), then priority, then age.
   */
  claim(node: NodeId, leaseMs: number): Promise<ClaimedJob | undefined>;
  /** Writes a step of a held job; throws LeaseLostError when the lease is no longer this one. */
  saveStep(lease: Lease, step: JobStep): Promise<void>;
  /** Extends the leases of every job `node` holds and whose lease has not run out; returns them (a job missing here is lost). */
  renewLeases(node: NodeId, leaseMs: number): Promise<HeldJob[]>;
  /** Hands a held job back at once (draining): any node may claim it and resume it. */
  release(lease: Lease): Promise<void>;
  /** Back to pending with no snapshot (a retry), from error or stopped only. */
  requeue(id: Id): Promise<Job | undefined>;
  /** Ends a pending job without running it; undefined when it is not pending. */
  stopPending(id: Id): Promise<Job | undefined>;
  /**
   * STOP for a running or retrying job that this node does not hold: asks its holder, or
   * ends it at once when no live node holds it. Undefined when it is not running or retrying.
   */
  requestStop(id: Id): Promise<Job | undefined>;

  /** Stored changes after `seq`, oldest first. */
  changesSince(seq: number, limit?: number): Promise<StoredJobChange[]>;
  /** The number of the newest stored change (0 when none). */
  lastChange(): Promise<number>;
  /** Drops the changes older than `ms` (the newest is kept, so numbering goes on); returns how many. */
  forgetChanges(olderThanMs: number): Promise<number>;
}

/** Who is uploading a blob to a registry, or where it landed. */
export interface BlobUpload {
  repository: string;
  node: NodeId;
  state: 'uploading' | 'done';
}

/**
 * Uploads under way, one per blob and destination registry across every node: a copy that
 * finds the blob being uploaded waits and mounts it. A claim holds for `ttlMs`, renewed while
 * the upload runs, and only while its node is alive (a heartbeat younger than `staleAfterMs`):
 * the upload of a node that died is claimed again at once, as its jobs are taken over.
 */
export interface BlobUploadStore {
  /** Claims the upload; when another live upload of the blob holds it (or just finished), returns that one. */
  claim(upload: { registry: string; digest: string; repository: string; node: NodeId }, ttlMs: number, staleAfterMs: number): Promise<BlobUpload | undefined>;
  renew(upload: { registry: string; digest: string; node: NodeId }, ttlMs: number): Promise<void>;
  /** Ends a claim: done (others mount from its repository for `ttlMs` more) or given up. */
  finish(upload: { registry: string; digest: string; node: NodeId }, uploaded: boolean, ttlMs: number): Promise<void>;
  /** The live claim or recent result for the blob, if any. */
  find(registry: string, digest: string, staleAfterMs: number): Promise<BlobUpload | undefined>;
  /** Drops claims and results that ran out; returns how many. */
  forgetExpired(): Promise<number>;
}

/**
 * Each registry's budget (pause, slow-down, pulls left), one row per registry URL, which every
 * node's limiter reads and changes: see registry/budget.ts.
 */
export interface RegistryBudgetStore {
  /**
   * Applies `change` to the registry's budget in one transaction, the row locked, on the
   * database's clock (epoch ms); returning the state it was given writes nothing.
   */
  update<T>(registry: string, change: (state: BudgetState, now: number) => [BudgetState, T]): Promise<T>;
}

export interface NodeStore {
  /** Adds the node, or brings it back to life. */
  register(node: NodeInput): Promise<void>;
  heartbeat(id: NodeId): Promise<void>;
  drain(id: NodeId): Promise<void>;
  /** Forgets a node that has stopped. */
  remove(id: NodeId): Promise<void>;
  /** Nodes whose heartbeat is newer than `staleAfterMs`, with the jobs each holds. */
  list(staleAfterMs: number, page?: Page): Promise<{ items: Node[]; total: number }>;
}

/** A message to every node: wake up to claim, stop a job, reload schedules, reconnect to registries, read new changes, live bytes, a registry's budget. */
export type Signal =
  | { type: 'queued' }
  | { type: 'stop'; jobId: Id }
  | { type: 'policies' }
  | { type: 'registries'; urls: string[] }
  | { type: 'changed' }
  | { type: 'progress'; change: JobChange }
  | { type: 'budget'; registry: string; node: NodeId };

/**
 * Signals between nodes: PostgreSQL's LISTEN/NOTIFY, or within the process for SQLite. They
 * wake and hint; what they announce is always read back from the store.
 */
export interface Signals {
  publish(signal: Signal): Promise<void>;
  subscribe(listener: (signal: Signal) => void): () => void;
  /** Runs after the connection that carries signals came back: some may have been missed. */
  onReconnect(listener: () => void): () => void;
}

export type Engine = 'sqlite' | 'postgres';

export interface Store {
  engine: Engine;
  /** Where it is, without a password: for logs. */
  location: string;
  registries: RegistryStore;
  policies: PolicyStore;
  executions: ExecutionStore;
  jobs: JobStore;
  nodes: NodeStore;
  blobUploads: BlobUploadStore;
  registryBudgets: RegistryBudgetStore;
  signals: Signals;
  close(): Promise<void>;
}
