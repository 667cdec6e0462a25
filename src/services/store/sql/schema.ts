import type { ColumnType, Generated } from 'kysely';

/**
 * The tables as the shared queries see them, on either engine. Each engine stores values its
 * own way (SQLite: ISO text, 0/1, JSON text; PostgreSQL: timestamptz, boolean, jsonb) and its
 * connection hands them back in one form: timestamps as ISO strings, JSON as its text.
 * Booleans come back as 0/1 from SQLite, hence `Flag`.
 */

/** ISO 8601, as written and as read back. */
type Timestamp = string;
/** JSON text. */
type Json = string;
type Flag = ColumnType<boolean | number, boolean, boolean>;
/** A flag the database defaults. */
type DefaultFlag = ColumnType<boolean | number, boolean | undefined, boolean>;

export interface RegistriesTable {
  id: string;
  name: string;
  url: string;
  insecure: Flag;
  ca: string | null;
  username: string | null;
  password: string | null;
  credential_helper: string | null;
  requests_per_second: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PoliciesTable {
  id: string;
  name: string;
  enabled: Flag;
  source_registry_id: string;
  destination_registry_id: string;
  repositories: Json;
  tags: Json;
  rewrite: Json;
  override: Flag;
  platforms: Json;
  replicate_deletions: Flag;
  bandwidth_kibps: number | null;
  trigger: Json;
  priority: number;
  /** `"all"`, `"none"` or a list of artifact types. */
  referrers: Json;
  /** `{ key, source }`; null: no signature required. */
  require_signature: Json | null;
  last_cron_slot: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ExecutionsTable {
  id: string;
  policy_id: string | null;
  trigger: string;
  created_at: Timestamp;
}

/** An execution with its jobs counted per status: a view, so its status is never stored. */
export interface ExecutionSummariesView {
  id: string;
  policy_id: string | null;
  trigger: string;
  created_at: Timestamp;
  pending: number;
  running: number;
  retrying: number;
  finished: number;
  error: number;
  stopped: number;
  status: string;
  finished_at: Timestamp | null;
}

export interface JobsTable {
  id: string;
  execution_id: string;
  policy_id: string | null;
  operation: string;
  source: string | null;
  destination: string;
  input: Json;
  status: string;
  phase: string | null;
  attempt: number;
  progress: Json;
  error: Json | null;
  snapshot: Json | null;
  /** The version of the machine definition that wrote `snapshot`. */
  snapshot_version: number | null;
  priority: number;
  /** The node that holds the job, or held it last. */
  owner: string | null;
  /** Until when `owner` holds it (the database's clock); past it, any node may take it over. */
  lease_until: Timestamp | null;
  /** Raised by every claim: a write that carries an older fence is refused. */
  fence: Generated<number>;
  /** STOP asked through a node that does not hold the job; the holder acts on it. */
  stop_requested: DefaultFlag;
  /** What the job does, when a job doing the same while pending makes it redundant (see `NewJob.coalesceKey`). */
  coalesce_key: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  updated_at: Timestamp;
}

export interface JobTransitionsTable {
  job_id: string;
  seq: number;
  from: string | null;
  to: string;
  event: string;
  /** The node that took the step (null: none, such as a job created or stopped while pending). */
  node: string | null;
  at: Timestamp;
}

export interface JobLogsTable {
  job_id: string;
  seq: number;
  at: Timestamp;
  level: string;
  message: string;
  fields: Json;
}

export interface NodesTable {
  id: string;
  host: string;
  pid: number;
  started_at: Timestamp;
  heartbeat_at: Timestamp;
  /** Draining: it claims nothing more and hands its jobs back. */
  draining: DefaultFlag;
}

/** The feed of job changes, numbered so that a client resumes where it left off. */
export interface JobChangesTable {
  seq: Generated<number>;
  job_id: string;
  change: Json;
  at: Timestamp;
}

export interface BlobUploadsTable {
  registry: string;
  digest: string;
  repository: string;
  node: string;
  state: 'uploading' | 'done';
  /** The database's clock: past it the claim (or the news that it is done) no longer counts. */
  expires_at: Timestamp;
}

/** Times on the database's clock; see registry/budget.ts for what each column means. */
/** One row: a constant sealed with the key the passwords are sealed with (see RegistryStore.reseal). */
export interface SecretKeyCheckTable {
  id: number;
  sealed: string;
}

export interface RegistryBudgetsTable {
  registry: string;
  rate: number | null;
  decreased_at: Timestamp | null;
  paused_until: Timestamp | null;
  pulls: 'unknown' | 'none' | 'counted';
  pull_limit: number | null;
  pull_remaining: number | null;
  window_seconds: number | null;
  reset_at: Timestamp | null;
  probe_until: Timestamp | null;
  updated_at: Timestamp;
}

export interface Tables {
  registries: RegistriesTable;
  policies: PoliciesTable;
  executions: ExecutionsTable;
  execution_summaries: ExecutionSummariesView;
  jobs: JobsTable;
  job_transitions: JobTransitionsTable;
  job_logs: JobLogsTable;
  nodes: NodesTable;
  job_changes: JobChangesTable;
  blob_uploads: BlobUploadsTable;
  registry_budgets: RegistryBudgetsTable;
  secret_key_check: SecretKeyCheckTable;
}
