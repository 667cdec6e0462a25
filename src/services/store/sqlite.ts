import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Credentials } from '../registry/credentials.js';
import type { ErrorInfo } from '../registry/errors.js';
import { ConflictError, NotFoundError } from './errors.js';
import { migrate } from './migrations.js';
import type {
  Execution,
  ExecutionStatus,
  ExecutionTrigger,
  Id,
  Job,
  JobLogEntry,
  JobOperation,
  JobStatus,
  JobStep,
  JobStore,
  NewJob,
  Page,
  Policy,
  PolicyInput,
  Registry,
  RegistryInput,
  Timestamp,
  Transition,
} from './types.js';
import { ENDED_STATUSES, RETRYABLE_STATUSES } from '../../machines/status.js';

const BUSY_TIMEOUT_MS = 5_000;
const DEFAULT_LOG_LIMIT = 1_000;

/**
 * A JobStore on one SQLite file (or `:memory:`), safe to share between processes: every write
 * is an IMMEDIATE transaction, and a busy file is waited for rather than failed on.
 */
export function openSqliteStore(path: string): JobStore {
  return new SqliteJobStore(connect(path));
}

function connect(path: string): Database.Database {
  if (path !== ':memory:') createPrivateFile(path);
  const db = new Database(path);
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** The file holds registry passwords: only its owner may read it (SQLite gives -wal and -shm the same mode). */
function createPrivateFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
}

const now = (): Timestamp => new Date().toISOString();
const flag = (value: boolean): 0 | 1 => (value ? 1 : 0);

function toJson(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/** A copy without the keys whose value is undefined, so that spreading it keeps what it leaves out. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}

function whereEqual(conditions: Record<string, string | undefined>): { clause: string; values: string[] } {
  const present = Object.entries(conditions).filter((entry): entry is [string, string] => entry[1] !== undefined);
  return {
    clause: present.length === 0 ? '' : `WHERE ${present.map(([column]) => `${column} = ?`).join(' AND ')}`,
    values: present.map(([, value]) => value),
  };
}

function missingJob(id: Id): NotFoundError {
  return new NotFoundError(`job ${id} does not exist`);
}

// Registries

interface RegistryRow {
  id: Id;
  name: string;
  url: string;
  insecure: 0 | 1;
  ca: string | null;
  username: string | null;
  password: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

type PublicRegistryRow = Omit<RegistryRow, 'password'>;

type RegistrySettings = Required<RegistryInput>;

const REGISTRY_COLUMNS = 'id, name, url, insecure, ca, username, created_at, updated_at';

function credentialsOf(row: Pick<RegistryRow, 'username' | 'password'>): Credentials | null {
  return row.username === null || row.password === null ? null : { username: row.username, password: row.password };
}

function registryRow(id: Id, settings: RegistrySettings, createdAt: Timestamp, updatedAt: Timestamp): RegistryRow {
  return {
    id,
    name: settings.name,
    url: settings.url,
    insecure: flag(settings.insecure),
    ca: settings.ca,
    username: settings.credentials?.username ?? null,
    password: settings.credentials?.password ?? null,
    created_at: createdAt,
    updated_at: updatedAt,
  };
}

function registrySettings(row: RegistryRow): RegistrySettings {
  return { name: row.name, url: row.url, insecure: row.insecure === 1, ca: row.ca, credentials: credentialsOf(row) };
}

function toRegistry(row: PublicRegistryRow): Registry {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    insecure: row.insecure === 1,
    ca: row.ca,
    hasCredentials: row.username !== null,
    username: row.username,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

// Policies

interface PolicyRow {
  id: Id;
  name: string;
  enabled: 0 | 1;
  source_registry_id: Id;
  destination_registry_id: Id;
  repositories: string;
  tags: string;
  rewrite: string;
  override: 0 | 1;
  platforms: string;
  replicate_deletions: 0 | 1;
  bandwidth_kibps: number | null;
  trigger: string;
  priority: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

const POLICY_COLUMNS =
  'id, name, enabled, source_registry_id, destination_registry_id, repositories, tags, rewrite, override, ' +
  'platforms, replicate_deletions, bandwidth_kibps, trigger, priority, created_at, updated_at';

const POLICY_DEFAULTS: Omit<Policy, 'id' | 'name' | 'sourceRegistryId' | 'destinationRegistryId' | 'createdAt' | 'updatedAt'> = {
  enabled: true,
  repositories: { include: ['**'], exclude: [] },
  tags: { include: ['*'], exclude: [], syntax: 'glob' },
  rewrite: { namespace: null, flatten: 0 },
  override: true,
  platforms: [],
  replicateDeletions: false,
  bandwidthKiBps: null,
  trigger: { type: 'manual' },
  priority: 0,
};

function policyRow(policy: Policy): PolicyRow {
  return {
    id: policy.id,
    name: policy.name,
    enabled: flag(policy.enabled),
    source_registry_id: policy.sourceRegistryId,
    destination_registry_id: policy.destinationRegistryId,
    repositories: JSON.stringify(policy.repositories),
    tags: JSON.stringify(policy.tags),
    rewrite: JSON.stringify(policy.rewrite),
    override: flag(policy.override),
    platforms: JSON.stringify(policy.platforms),
    replicate_deletions: flag(policy.replicateDeletions),
    bandwidth_kibps: policy.bandwidthKiBps,
    trigger: JSON.stringify(policy.trigger),
    priority: policy.priority,
    created_at: policy.createdAt,
    updated_at: policy.updatedAt,
  };
}

function toPolicy(row: PolicyRow): Policy {
  return {
    id: row.id,
    name: row.name,
    enabled: row.enabled === 1,
    sourceRegistryId: row.source_registry_id,
    destinationRegistryId: row.destination_registry_id,
    repositories: JSON.parse(row.repositories) as Policy['repositories'],
    tags: JSON.parse(row.tags) as Policy['tags'],
    rewrite: JSON.parse(row.rewrite) as Policy['rewrite'],
    override: row.override === 1,
    platforms: JSON.parse(row.platforms) as string[],
    replicateDeletions: row.replicate_deletions === 1,
    bandwidthKiBps: row.bandwidth_kibps,
    trigger: JSON.parse(row.trigger) as Policy['trigger'],
    priority: row.priority,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

// Executions and jobs

interface ExecutionRow extends Record<JobStatus, number> {
  id: Id;
  policy_id: Id | null;
  trigger: ExecutionTrigger;
  status: ExecutionStatus;
  created_at: Timestamp;
  finished_at: Timestamp | null;
}

function toExecution(row: ExecutionRow): Execution {
  return {
    id: row.id,
    policyId: row.policy_id,
    trigger: row.trigger,
    status: row.status,
    jobs: {
      pending: row.pending,
      running: row.running,
      retrying: row.retrying,
      finished: row.finished,
      error: row.error,
      stopped: row.stopped,
    },
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

interface JobRow {
  id: Id;
  execution_id: Id;
  policy_id: Id | null;
  operation: JobOperation;
  source: string | null;
  destination: string;
  input: string;
  status: JobStatus;
  phase: string | null;
  attempt: number;
  progress: string;
  error: string | null;
  priority: number;
  created_at: Timestamp;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  updated_at: Timestamp;
}

const JOB_COLUMNS =
  'id, execution_id, policy_id, operation, source, destination, input, status, phase, attempt, progress, ' +
  'error, priority, created_at, started_at, finished_at, updated_at';

function newJobRow(job: NewJob, executionId: Id, policyId: Id | null, defaultPriority: number, at: Timestamp): JobRow {
  return {
    id: randomUUID(),
    execution_id: executionId,
    policy_id: policyId,
    operation: job.operation,
    source: job.source,
    destination: job.destination,
    input: JSON.stringify(job.input ?? null),
    status: 'pending',
    phase: null,
    attempt: 0,
    progress: '{}',
    error: null,
    priority: job.priority ?? defaultPriority,
    created_at: at,
    started_at: null,
    finished_at: null,
    updated_at: at,
  };
}

function toJob(row: JobRow): Job {
  return {
    id: row.id,
    executionId: row.execution_id,
    policyId: row.policy_id,
    operation: row.operation,
    source: row.source,
    destination: row.destination,
    input: JSON.parse(row.input) as unknown,
    status: row.status,
    phase: row.phase,
    attempt: row.attempt,
    progress: JSON.parse(row.progress) as Record<string, number>,
    error: parseJson<ErrorInfo>(row.error),
    priority: row.priority,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    updatedAt: row.updated_at,
  };
}

interface LogRow extends Omit<JobLogEntry, 'fields'> {
  fields: string;
}

class SqliteJobStore implements JobStore {
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Each distinct SQL text is prepared once, on first use. */
  #sql<Row = unknown>(source: string): Database.Statement<unknown[], Row> {
    let statement = this.#statements.get(source);
    if (statement === undefined) {
      statement = this.#db.prepare(source);
      this.#statements.set(source, statement);
    }
    return statement as Database.Statement<unknown[], Row>;
  }

  #write<T>(work: () => T): T {
    return this.#db.transaction(work).immediate();
  }

  #list<Row>(
    query: { columns: string; from: string; order: string },
    conditions: Record<string, string | undefined>,
    page: Page,
  ): { rows: Row[]; total: number } {
    const { columns, from, order } = query;
    const { clause, values } = whereEqual(conditions);
    const total = this.#sql<{ total: number }>(`SELECT count(*) AS total FROM ${from} ${clause}`).get(...values)?.total ?? 0;
    const rows = this.#sql<Row>(`SELECT ${columns} FROM ${from} ${clause} ORDER BY ${order} LIMIT ? OFFSET ?`).all(
      ...values,
      page.limit ?? -1,
      page.offset ?? 0,
    );
    return { rows, total };
  }

  // Registries

  /** Names identify registries for people, URLs for jobs (their settings are found by URL). */
  #assertRegistryFree({ name, url }: { name?: string | undefined; url?: string | undefined }, id?: Id): void {
    const byName = name === undefined ? undefined : this.#sql<{ id: Id }>('SELECT id FROM registries WHERE name = ?').get(name);
    if (byName !== undefined && byName.id !== id) throw new ConflictError(`registry name ${JSON.stringify(name)} is already taken`);
    const byUrl = url === undefined ? undefined : this.#sql<{ name: string; id: Id }>('SELECT id, name FROM registries WHERE url = ?').get(url);
    if (byUrl !== undefined && byUrl.id !== id) throw new ConflictError(`registry ${byUrl.name} already has URL ${url}`);
  }

  async createRegistry(input: RegistryInput): Promise<Registry> {
    return this.#write(() => {
      this.#assertRegistryFree(input);
      const at = now();
      const row = registryRow(randomUUID(), { insecure: false, ca: null, credentials: null, ...defined(input) }, at, at);
      this.#sql(
        `INSERT INTO registries (id, name, url, insecure, ca, username, password, created_at, updated_at)
         VALUES (@id, @name, @url, @insecure, @ca, @username, @password, @created_at, @updated_at)`,
      ).run(row);
      return toRegistry(row);
    });
  }

  async getRegistry(id: Id): Promise<Registry | undefined> {
    const row = this.#sql<PublicRegistryRow>(`SELECT ${REGISTRY_COLUMNS} FROM registries WHERE id = ?`).get(id);
    return row && toRegistry(row);
  }

  async findRegistryByName(name: string): Promise<Registry | undefined> {
    const row = this.#sql<PublicRegistryRow>(`SELECT ${REGISTRY_COLUMNS} FROM registries WHERE name = ?`).get(name);
    return row && toRegistry(row);
  }

  async listRegistries(): Promise<Registry[]> {
    return this.#sql<PublicRegistryRow>(`SELECT ${REGISTRY_COLUMNS} FROM registries ORDER BY name`).all().map(toRegistry);
  }

  async updateRegistry(id: Id, patch: Partial<RegistryInput>): Promise<Registry | undefined> {
    return this.#write(() => {
      const current = this.#sql<RegistryRow>(`SELECT ${REGISTRY_COLUMNS}, password FROM registries WHERE id = ?`).get(id);
      if (current === undefined) return undefined;
      this.#assertRegistryFree(patch, id);
      const row = registryRow(id, { ...registrySettings(current), ...defined(patch) }, current.created_at, now());
      this.#sql(
        `UPDATE registries SET name = @name, url = @url, insecure = @insecure, ca = @ca, username = @username,
         password = @password, updated_at = @updated_at WHERE id = @id`,
      ).run(row);
      return toRegistry(row);
    });
  }

  async deleteRegistry(id: Id): Promise<boolean> {
    return this.#write(() => {
      const used = this.#sql('SELECT 1 FROM policies WHERE source_registry_id = @id OR destination_registry_id = @id LIMIT 1').get({ id });
      return used === undefined && this.#sql('DELETE FROM registries WHERE id = ?').run(id).changes > 0;
    });
  }

  async registryCredentials(id: Id): Promise<Credentials | undefined> {
    const row = this.#sql<Pick<RegistryRow, 'username' | 'password'>>('SELECT username, password FROM registries WHERE id = ?').get(id);
    return (row && credentialsOf(row)) ?? undefined;
  }

  // Policies

  #readPolicy(id: Id): Policy | undefined {
    const row = this.#sql<PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM policies WHERE id = ?`).get(id);
    return row && toPolicy(row);
  }

  #assertPolicyWritable(policy: Policy): void {
    const holder = this.#sql<{ id: Id }>('SELECT id FROM policies WHERE name = ?').get(policy.name);
    if (holder !== undefined && holder.id !== policy.id) {
      throw new ConflictError(`policy name ${JSON.stringify(policy.name)} is already taken`);
    }
    for (const registryId of [policy.sourceRegistryId, policy.destinationRegistryId]) {
      if (this.#sql('SELECT 1 FROM registries WHERE id = ?').get(registryId) === undefined) {
        throw new NotFoundError(`registry ${registryId} does not exist`);
      }
    }
  }

  async createPolicy(input: PolicyInput): Promise<Policy> {
    return this.#write(() => {
      const at = now();
      const policy: Policy = { ...POLICY_DEFAULTS, ...defined(input), id: randomUUID(), createdAt: at, updatedAt: at };
      this.#assertPolicyWritable(policy);
      const row = policyRow(policy);
      this.#sql(
        `INSERT INTO policies (${POLICY_COLUMNS}) VALUES (@id, @name, @enabled, @source_registry_id,
         @destination_registry_id, @repositories, @tags, @rewrite, @override, @platforms, @replicate_deletions,
         @bandwidth_kibps, @trigger, @priority, @created_at, @updated_at)`,
      ).run(row);
      return toPolicy(row);
    });
  }

  async getPolicy(id: Id): Promise<Policy | undefined> {
    return this.#readPolicy(id);
  }

  async findPolicyByName(name: string): Promise<Policy | undefined> {
    const row = this.#sql<PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM policies WHERE name = ?`).get(name);
    return row && toPolicy(row);
  }

  async listPolicies(): Promise<Policy[]> {
    return this.#sql<PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM policies ORDER BY name`).all().map(toPolicy);
  }

  async updatePolicy(id: Id, patch: Partial<PolicyInput>): Promise<Policy | undefined> {
    return this.#write(() => {
      const current = this.#readPolicy(id);
      if (current === undefined) return undefined;
      const policy: Policy = { ...current, ...defined(patch), id, createdAt: current.createdAt, updatedAt: now() };
      this.#assertPolicyWritable(policy);
      const row = policyRow(policy);
      this.#sql(
        `UPDATE policies SET name = @name, enabled = @enabled, source_registry_id = @source_registry_id,
         destination_registry_id = @destination_registry_id, repositories = @repositories, tags = @tags,
         rewrite = @rewrite, override = @override, platforms = @platforms, replicate_deletions = @replicate_deletions,
         bandwidth_kibps = @bandwidth_kibps, trigger = @trigger, priority = @priority, updated_at = @updated_at
         WHERE id = @id`,
      ).run(row);
      return toPolicy(row);
    });
  }

  async deletePolicy(id: Id): Promise<boolean> {
    return this.#sql('DELETE FROM policies WHERE id = ?').run(id).changes > 0;
  }

  async claimCronSlot(policyId: Id, slot: Timestamp): Promise<boolean> {
    const claimed = this.#sql(
      `UPDATE policies SET last_cron_slot = @slot
       WHERE id = @policyId AND (last_cron_slot IS NULL OR last_cron_slot < @slot)`,
    ).run({ policyId, slot: new Date(slot).toISOString() });
    return claimed.changes === 1;
  }

  // Executions

  #readExecution(id: Id): Execution | undefined {
    const row = this.#sql<ExecutionRow>('SELECT * FROM execution_summaries WHERE id = ?').get(id);
    return row && toExecution(row);
  }

  /** The priority a policy's jobs get unless they set their own. */
  #policyPriority(policyId: Id | null): number {
    if (policyId === null) return 0;
    const policy = this.#sql<{ priority: number }>('SELECT priority FROM policies WHERE id = ?').get(policyId);
    if (policy === undefined) throw new NotFoundError(`policy ${policyId} does not exist`);
    return policy.priority;
  }

  async createExecution(execution: {
    policyId: Id | null;
    trigger: ExecutionTrigger;
    jobs: NewJob[];
  }): Promise<{ execution: Execution; jobs: Job[] }> {
    return this.#write(() => {
      const priority = this.#policyPriority(execution.policyId);
      const id = randomUUID();
      const at = now();
      this.#sql('INSERT INTO executions (id, policy_id, trigger, created_at) VALUES (?, ?, ?, ?)').run(
        id,
        execution.policyId,
        execution.trigger,
        at,
      );
      const rows = execution.jobs.map((job) => newJobRow(job, id, execution.policyId, priority, at));
      for (const row of rows) {
        this.#sql(
          `INSERT INTO jobs (${JOB_COLUMNS}) VALUES (@id, @execution_id, @policy_id, @operation, @source, @destination,
           @input, @status, @phase, @attempt, @progress, @error, @priority, @created_at, @started_at, @finished_at,
           @updated_at)`,
        ).run(row);
        this.#appendTransition(row.id, { from: null, to: 'pending', event: 'created' }, at);
      }
      return { execution: this.#readExecution(id) as Execution, jobs: rows.map(toJob) };
    });
  }

  async getExecution(id: Id): Promise<Execution | undefined> {
    return this.#readExecution(id);
  }

  async listExecutions(
    filter: Page & { policyId?: Id; status?: ExecutionStatus } = {},
  ): Promise<{ items: Execution[]; total: number }> {
    const { rows, total } = this.#list<ExecutionRow>(
      { columns: '*', from: 'execution_summaries', order: 'created_at DESC, position DESC' },
      { policy_id: filter.policyId, status: filter.status },
      filter,
    );
    return { items: rows.map(toExecution), total };
  }

  // Jobs

  #appendTransition(jobId: Id, transition: Omit<Transition, 'seq' | 'at'>, at: Timestamp): void {
    this.#sql(
      `INSERT INTO job_transitions (job_id, seq, "from", "to", event, at)
       SELECT @jobId, coalesce(max(seq), 0) + 1, @from, @to, @event, @at FROM job_transitions WHERE job_id = @jobId`,
    ).run({ jobId, from: transition.from, to: transition.to, event: transition.event, at });
  }

  async getJob(id: Id): Promise<Job | undefined> {
    const row = this.#sql<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`).get(id);
    return row && toJob(row);
  }

  async listJobs(filter: Page & { executionId?: Id; status?: JobStatus } = {}): Promise<{ items: Job[]; total: number }> {
    const { rows, total } = this.#list<JobRow>(
      { columns: JOB_COLUMNS, from: 'jobs', order: 'created_at DESC, rowid DESC' },
      { execution_id: filter.executionId, status: filter.status },
      filter,
    );
    return { items: rows.map(toJob), total };
  }

  async jobSnapshot(id: Id): Promise<unknown> {
    const row = this.#sql<{ snapshot: string | null }>('SELECT snapshot FROM jobs WHERE id = ?').get(id);
    return parseJson(row?.snapshot ?? null);
  }

  async claimNextJob(): Promise<Job | undefined> {
    return this.#write(() => {
      const next = this.#sql<{ id: Id }>(
        `SELECT j.id FROM jobs j
         LEFT JOIN (
           SELECT policy_id, count(*) AS active FROM jobs WHERE status IN ('running', 'retrying') GROUP BY policy_id
         ) busy ON busy.policy_id IS j.policy_id
         WHERE j.status = 'pending'
         ORDER BY coalesce(busy.active, 0), j.priority DESC, j.created_at, j.rowid
         LIMIT 1`,
      ).get();
      if (next === undefined) return undefined;
      const at = now();
      const row = this.#sql<JobRow>(
        `UPDATE jobs SET status = 'running', started_at = coalesce(started_at, @at), updated_at = @at
         WHERE id = @id RETURNING ${JOB_COLUMNS}`,
      ).get({ id: next.id, at });
      this.#appendTransition(next.id, { from: 'pending', to: 'running', event: 'claimed' }, at);
      return row && toJob(row);
    });
  }

  async interruptedJobs(): Promise<Job[]> {
    return this.#sql<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE status IN ('running', 'retrying') ORDER BY created_at, rowid`,
    )
      .all()
      .map(toJob);
  }

  async saveStep(id: Id, step: JobStep): Promise<void> {
    this.#write(() => {
      const at = now();
      const saved = this.#sql(
        `UPDATE jobs SET status = @status, phase = @phase, attempt = @attempt, progress = @progress, error = @error,
         snapshot = @snapshot, updated_at = @at,
         finished_at = CASE WHEN @final THEN coalesce(finished_at, @at) END
         WHERE id = @id`,
      ).run({
        id,
        status: step.status,
        phase: step.phase,
        attempt: step.attempt,
        progress: JSON.stringify(step.progress),
        error: toJson(step.error),
        snapshot: toJson(step.snapshot),
        final: flag(ENDED_STATUSES.has(step.status)),
        at,
      });
      if (saved.changes === 0) throw missingJob(id);
      if (step.transition !== undefined) this.#appendTransition(id, step.transition, at);
    });
  }

  async requeueJob(id: Id): Promise<boolean> {
    return this.#write(() => {
      const job = this.#sql<{ status: JobStatus }>('SELECT status FROM jobs WHERE id = ?').get(id);
      if (!job || !RETRYABLE_STATUSES.has(job.status)) return false;
      const at = now();
      this.#sql(
        `UPDATE jobs SET status = 'pending', phase = NULL, attempt = 0, progress = '{}', error = NULL, snapshot = NULL,
         finished_at = NULL, updated_at = ? WHERE id = ?`,
      ).run(at, id);
      this.#appendTransition(id, { from: job.status, to: 'pending', event: 'retry' }, at);
      return true;
    });
  }

  async stopPendingJob(id: Id): Promise<boolean> {
    return this.#write(() => {
      const at = now();
      const stopped = this.#sql(
        `UPDATE jobs SET status = 'stopped', finished_at = @at, updated_at = @at WHERE id = @id AND status = 'pending'`,
      ).run({ id, at });
      if (stopped.changes === 0) return false;
      this.#appendTransition(id, { from: 'pending', to: 'stopped', event: 'STOP' }, at);
      return true;
    });
  }

  async history(id: Id): Promise<Transition[]> {
    return this.#sql<Transition>('SELECT seq, "from", "to", event, at FROM job_transitions WHERE job_id = ? ORDER BY seq').all(id);
  }

  async appendLogs(id: Id, entries: Array<Omit<JobLogEntry, 'seq'>>): Promise<void> {
    this.#write(() => {
      if (this.#sql('SELECT 1 FROM jobs WHERE id = ?').get(id) === undefined) throw missingJob(id);
      for (const entry of entries) {
        this.#sql(
          `INSERT INTO job_logs (job_id, seq, at, level, message, fields)
           SELECT @id, coalesce(max(seq), 0) + 1, @at, @level, @message, @fields FROM job_logs WHERE job_id = @id`,
        ).run({ id, at: entry.at, level: entry.level, message: entry.message, fields: JSON.stringify(entry.fields) });
      }
    });
  }

  async logs(id: Id, options: { after?: number; limit?: number } = {}): Promise<JobLogEntry[]> {
    return this.#sql<LogRow>(
      'SELECT seq, at, level, message, fields FROM job_logs WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?',
    )
      .all(id, options.after ?? 0, options.limit ?? DEFAULT_LOG_LIMIT)
      .map((row) => ({ ...row, fields: JSON.parse(row.fields) as Record<string, unknown> }));
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
