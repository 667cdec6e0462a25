import type Database from 'better-sqlite3';
import { EXECUTION_SUMMARIES } from '../sql/views.js';

export interface Migration {
  /** Stored in `PRAGMA user_version` once applied; strictly increasing from 1. */
  version: number;
  up: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    up: `
      CREATE TABLE registries (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        insecure INTEGER NOT NULL CHECK (insecure IN (0, 1)),
        ca TEXT,
        username TEXT,
        password TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        CHECK ((username IS NULL) = (password IS NULL))
      );

      CREATE TABLE policies (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        source_registry_id TEXT NOT NULL REFERENCES registries (id),
        destination_registry_id TEXT NOT NULL REFERENCES registries (id),
        repositories TEXT NOT NULL,
        tags TEXT NOT NULL,
        rewrite TEXT NOT NULL,
        override INTEGER NOT NULL CHECK (override IN (0, 1)),
        platforms TEXT NOT NULL,
        replicate_deletions INTEGER NOT NULL CHECK (replicate_deletions IN (0, 1)),
        bandwidth_kibps REAL,
        trigger TEXT NOT NULL,
        priority INTEGER NOT NULL,
        last_cron_slot TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX policies_source_registry ON policies (source_registry_id);
      CREATE INDEX policies_destination_registry ON policies (destination_registry_id);

      CREATE TABLE executions (
        id TEXT PRIMARY KEY,
        policy_id TEXT REFERENCES policies (id) ON DELETE SET NULL,
        trigger TEXT NOT NULL CHECK (trigger IN ('manual', 'cron', 'event')),
        created_at TEXT NOT NULL
      );
      CREATE INDEX executions_policy ON executions (policy_id);
      CREATE INDEX executions_created ON executions (created_at);

      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
        policy_id TEXT REFERENCES policies (id) ON DELETE SET NULL,
        operation TEXT NOT NULL CHECK (operation IN ('copy', 'delete')),
        source TEXT,
        destination TEXT NOT NULL,
        input TEXT NOT NULL,
        status TEXT NOT NULL
          CHECK (status IN ('pending', 'running', 'retrying', 'finished', 'error', 'stopped')),
        phase TEXT,
        attempt INTEGER NOT NULL,
        progress TEXT NOT NULL,
        error TEXT,
        snapshot TEXT,
        priority INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX jobs_queue ON jobs (status, priority, created_at);
      CREATE INDEX jobs_execution ON jobs (execution_id);
      CREATE INDEX jobs_policy ON jobs (policy_id, status);
      CREATE INDEX jobs_created ON jobs (created_at);

      CREATE TABLE job_transitions (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        "from" TEXT,
        "to" TEXT NOT NULL,
        event TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
      ) WITHOUT ROWID;

      CREATE TABLE job_logs (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        fields TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
      ) WITHOUT ROWID;

      -- An execution's status is never stored: it is derived here from its jobs. Pending jobs
      -- beside started or ended ones mean the execution is still under way, hence running.
      CREATE VIEW execution_summaries AS
      SELECT
        id, policy_id, trigger, created_at, position,
        pending, running, retrying, finished, error, stopped,
        CASE
          WHEN running + retrying > 0 THEN 'running'
          WHEN pending > 0 AND pending = total THEN 'pending'
          WHEN pending > 0 THEN 'running'
          WHEN error > 0 THEN 'error'
          WHEN stopped > 0 THEN 'stopped'
          ELSE 'finished'
        END AS status,
        CASE
          WHEN pending + running + retrying = 0 THEN coalesce(last_finished_at, created_at)
        END AS finished_at
      FROM (
        SELECT
          e.id, e.policy_id, e.trigger, e.created_at, e.rowid AS position,
          count(j.id) AS total,
          count(j.id) FILTER (WHERE j.status = 'pending') AS pending,
          count(j.id) FILTER (WHERE j.status = 'running') AS running,
          count(j.id) FILTER (WHERE j.status = 'retrying') AS retrying,
          count(j.id) FILTER (WHERE j.status = 'finished') AS finished,
          count(j.id) FILTER (WHERE j.status = 'error') AS error,
          count(j.id) FILTER (WHERE j.status = 'stopped') AS stopped,
          max(j.finished_at) AS last_finished_at
        FROM executions e LEFT JOIN jobs j ON j.execution_id = e.id
        GROUP BY e.id, e.policy_id
      );
    `,
  },
  {
    version: 2,
    up: `CREATE UNIQUE INDEX registries_url ON registries (url);`,
  },
  {
    version: 3,
    // Leases, fencing and nodes (see store/types.ts, JobStore); the feed of job changes; the
    // machine version of each snapshot (those stored so far are version 1). Executions are
    // ordered by their time-ordered ids now, not by rowid, as on PostgreSQL.
    up: `
      ALTER TABLE jobs ADD COLUMN snapshot_version INTEGER;
      UPDATE jobs SET snapshot_version = 1 WHERE snapshot IS NOT NULL;
      ALTER TABLE jobs ADD COLUMN owner TEXT;
      ALTER TABLE jobs ADD COLUMN lease_until TEXT;
      ALTER TABLE jobs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0 CHECK (stop_requested IN (0, 1));
      CREATE INDEX jobs_owner ON jobs (owner, status);
      ALTER TABLE job_transitions ADD COLUMN node TEXT;

      CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL,
        draining INTEGER NOT NULL DEFAULT 0 CHECK (draining IN (0, 1))
      );

      CREATE TABLE job_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        change TEXT NOT NULL,
        at TEXT NOT NULL
      );
      CREATE INDEX job_changes_at ON job_changes (at);

      CREATE TABLE blob_uploads (
        registry TEXT NOT NULL,
        digest TEXT NOT NULL,
        repository TEXT NOT NULL,
        node TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('uploading', 'done')),
        expires_at TEXT NOT NULL,
        PRIMARY KEY (registry, digest)
      ) WITHOUT ROWID;

      DROP VIEW execution_summaries;
      ${EXECUTION_SUMMARIES}
    `,
  },
  {
    version: 4,
    // Policies written before copy every referrer and require no signature, as ferry copy does by default.
    up: `
      ALTER TABLE policies ADD COLUMN referrers TEXT NOT NULL DEFAULT '"all"';
      ALTER TABLE policies ADD COLUMN require_signature TEXT;
    `,
  },
  {
    version: 5,
    // Registries written before log in as they did: with their credentials, or anonymously.
    up: `ALTER TABLE registries ADD COLUMN credential_helper TEXT CHECK (credential_helper IS NULL OR username IS NULL);`,
  },
  {
    version: 6,
    // Each registry's ceiling, and its budget as every node's limiter shares it (registry/budget.ts).
    up: `
      ALTER TABLE registries ADD COLUMN requests_per_second REAL CHECK (requests_per_second > 0);

      CREATE TABLE registry_budgets (
        registry TEXT PRIMARY KEY,
        rate REAL,
        decreased_at TEXT,
        paused_until TEXT,
        pulls TEXT NOT NULL CHECK (pulls IN ('unknown', 'none', 'counted')),
        pull_limit INTEGER,
        pull_remaining INTEGER,
        window_seconds REAL,
        reset_at TEXT,
        probe_until TEXT,
        updated_at TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 7,
    // At most one pending job per key: repeated notifications of a tag queue one copy, whichever node takes them.
    up: `
      ALTER TABLE jobs ADD COLUMN coalesce_key TEXT;
      CREATE UNIQUE INDEX jobs_pending_coalesce_key ON jobs (coalesce_key) WHERE status = 'pending';
    `,
  },
  {
    version: 8,
    // A value sealed with the key of the first process: a process given another key is refused at start.
    up: `
      CREATE TABLE secret_key_check (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        sealed TEXT NOT NULL
      );
    `,
  },
];

/**
 * Brings the schema up to date in one IMMEDIATE transaction, so two processes opening the
 * same file at once apply each migration exactly once.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): void {
  const latest = migrations.at(-1)?.version ?? 0;
  const apply = db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > latest) {
      throw new Error(`the database schema is at version ${current}, newer than this ferry knows (${latest})`);
    }
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      db.exec(migration.up);
      db.pragma(`user_version = ${migration.version}`);
    }
  });
  apply.immediate();
}
