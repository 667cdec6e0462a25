import type pg from 'pg';
import { EXECUTION_SUMMARIES } from '../sql/views.js';

/** Versioned like SQLite's (sqlite/migrations.ts), applied in order, each once. */
export const MIGRATIONS: ReadonlyArray<{ version: number; up: string }> = [
  {
    version: 1,
    up: `
      CREATE TABLE registries (
        id text PRIMARY KEY,
        name text NOT NULL UNIQUE,
        url text NOT NULL UNIQUE,
        insecure boolean NOT NULL,
        ca text,
        username text,
        password text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        CHECK ((username IS NULL) = (password IS NULL))
      );

      CREATE TABLE policies (
        id text PRIMARY KEY,
        name text NOT NULL UNIQUE,
        enabled boolean NOT NULL,
        source_registry_id text NOT NULL REFERENCES registries (id),
        destination_registry_id text NOT NULL REFERENCES registries (id),
        repositories jsonb NOT NULL,
        tags jsonb NOT NULL,
        rewrite jsonb NOT NULL,
        override boolean NOT NULL,
        platforms jsonb NOT NULL,
        replicate_deletions boolean NOT NULL,
        bandwidth_kibps double precision,
        trigger jsonb NOT NULL,
        priority integer NOT NULL,
        last_cron_slot timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      );
      CREATE INDEX policies_source_registry ON policies (source_registry_id);
      CREATE INDEX policies_destination_registry ON policies (destination_registry_id);

      CREATE TABLE executions (
        id text PRIMARY KEY,
        policy_id text REFERENCES policies (id) ON DELETE SET NULL,
        trigger text NOT NULL CHECK (trigger IN ('manual', 'cron', 'event')),
        created_at timestamptz NOT NULL
      );
      CREATE INDEX executions_policy ON executions (policy_id);
      CREATE INDEX executions_created ON executions (created_at);

      CREATE TABLE jobs (
        id text PRIMARY KEY,
        execution_id text NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
        policy_id text REFERENCES policies (id) ON DELETE SET NULL,
        operation text NOT NULL CHECK (operation IN ('copy', 'delete')),
        source text,
        destination text NOT NULL,
        input jsonb NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'running', 'retrying', 'finished', 'error', 'stopped')),
        phase text,
        attempt integer NOT NULL,
        progress jsonb NOT NULL,
        error jsonb,
        -- text, not jsonb: written at every step and read back whole, never queried into.
        snapshot text,
        snapshot_version integer,
        priority integer NOT NULL,
        owner text,
        lease_until timestamptz,
        fence bigint NOT NULL DEFAULT 0,
        stop_requested boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz,
        updated_at timestamptz NOT NULL
      );
      CREATE INDEX jobs_queue ON jobs (status, priority, created_at);
      CREATE INDEX jobs_execution ON jobs (execution_id);
      CREATE INDEX jobs_policy ON jobs (policy_id, status);
      CREATE INDEX jobs_created ON jobs (created_at);
      CREATE INDEX jobs_owner ON jobs (owner, status);

      CREATE TABLE job_transitions (
        job_id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq integer NOT NULL,
        "from" text,
        "to" text NOT NULL,
        event text NOT NULL,
        node text,
        at timestamptz NOT NULL,
        PRIMARY KEY (job_id, seq)
      );

      CREATE TABLE job_logs (
        job_id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq integer NOT NULL,
        at timestamptz NOT NULL,
        level text NOT NULL,
        message text NOT NULL,
        fields jsonb NOT NULL,
        PRIMARY KEY (job_id, seq)
      );

      CREATE TABLE nodes (
        id text PRIMARY KEY,
        host text NOT NULL,
        pid integer NOT NULL,
        started_at timestamptz NOT NULL,
        heartbeat_at timestamptz NOT NULL,
        draining boolean NOT NULL DEFAULT false
      );

      CREATE TABLE job_changes (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id text NOT NULL,
        change jsonb NOT NULL,
        at timestamptz NOT NULL
      );
      CREATE INDEX job_changes_at ON job_changes (at);

      CREATE TABLE blob_uploads (
        registry text NOT NULL,
        digest text NOT NULL,
        repository text NOT NULL,
        node text NOT NULL,
        state text NOT NULL CHECK (state IN ('uploading', 'done')),
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (registry, digest)
      );

      ${EXECUTION_SUMMARIES}
    `,
  },
  {
    // Numbered as on SQLite (whose version 3 is this engine's version 1), so that a version means one schema on both.
    version: 4,
    // Policies written before copy every referrer and require no signature, as ferry copy does by default.
    up: `
      ALTER TABLE policies ADD COLUMN referrers jsonb NOT NULL DEFAULT '"all"';
      ALTER TABLE policies ADD COLUMN require_signature jsonb;
    `,
  },
  {
    version: 5,
    // Registries written before log in as they did: with their credentials, or anonymously.
    up: `ALTER TABLE registries ADD COLUMN credential_helper text CHECK (credential_helper IS NULL OR username IS NULL);`,
  },
  {
    version: 6,
    // Each registry's ceiling, and its budget as every node's limiter shares it (registry/budget.ts).
    up: `
      ALTER TABLE registries ADD COLUMN requests_per_second double precision CHECK (requests_per_second > 0);

      CREATE TABLE registry_budgets (
        registry text PRIMARY KEY,
        rate double precision,
        decreased_at timestamptz,
        paused_until timestamptz,
        pulls text NOT NULL CHECK (pulls IN ('unknown', 'none', 'counted')),
        pull_limit integer,
        pull_remaining integer,
        window_seconds double precision,
        reset_at timestamptz,
        probe_until timestamptz,
        updated_at timestamptz NOT NULL
      );
    `,
  },
  {
    version: 7,
    // At most one pending job per key: repeated notifications of a tag queue one copy, whichever node takes them.
    up: `
      ALTER TABLE jobs ADD COLUMN coalesce_key text;
      CREATE UNIQUE INDEX jobs_pending_coalesce_key ON jobs (coalesce_key) WHERE status = 'pending';
    `,
  },
  {
    version: 8,
    // A value sealed with the key of the first node: a node given another key is refused at start.
    up: `
      CREATE TABLE secret_key_check (
        id integer PRIMARY KEY CHECK (id = 1),
        sealed text NOT NULL
      );
    `,
  },
];

/** Any constant both sides agree on: the key of the advisory lock that migrations run under. */
const MIGRATION_LOCK = 0x6665_7272; // "ferr"

/**
 * Brings the schema up to date under an advisory lock, so that nodes starting together
 * migrate once: the others wait for the lock, then find nothing left to do.
 */
export async function migrate(client: pg.ClientBase, migrations: typeof MIGRATIONS = MIGRATIONS): Promise<void> {
  const latest = migrations.at(-1)?.version ?? 0;
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS ferry_schema (version integer NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT max(version) AS version FROM ferry_schema');
    const current = rows[0]?.version ?? 0;
    if (current > latest) throw new Error(`the database schema is at version ${current}, newer than this ferry knows (${latest})`);
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.up);
        await client.query('INSERT INTO ferry_schema (version) VALUES ($1)', [migration.version]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}
