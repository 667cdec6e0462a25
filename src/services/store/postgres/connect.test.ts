import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { POSTGRES_ADMIN_URL, createTestDatabase, type TestDatabase } from '../../../../test/support/postgres.js';
import { POLICY_BEFORE_REFERRERS, REGISTRY_BEFORE_HELPERS } from '../../../../test/support/stored-rows.js';
import type { Store } from '../types.js';
import { openPostgresStore, redactedUrl } from './connect.js';
import { MIGRATIONS, migrate } from './migrations.js';

const LATEST_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

let database: TestDatabase;
let logged: string[];
let opened: Store[];

beforeEach(async () => {
  database = await createTestDatabase('connect');
  logged = [];
  opened = [];
});

afterEach(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await database.drop();
});

async function open(): Promise<Store> {
  const store = await openPostgresStore(database.url, (message, error) => logged.push(`${message}: ${(error as Error).message}`));
  opened.push(store);
  return store;
}

/** The database as an older ferry left it: migrated up to `version`, holding the rows `sql` inserts. */
async function storedAt(version: number, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await migrate(client, MIGRATIONS.filter((migration) => migration.version <= version));
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function query<T extends pg.QueryResultRow>(text: string, values: unknown[] = [], url = database.url): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Connections to the test's database other than the one asking, once their number settles (a closed connection's backend takes a moment to go). */
async function connections(expected: number): Promise<number> {
  let count = -1;
  for (let tries = 0; tries < 40 && count !== expected; tries++) {
    if (tries > 0) await sleep(50);
    const [row] = await query<{ count: number }>(
      'SELECT count(*)::int AS count FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [database.name],
      POSTGRES_ADMIN_URL,
    );
    count = row!.count;
  }
  return count;
}

describe('opening a PostgreSQL store', () => {
  it('migrates once when several nodes start at once on a fresh database', async () => {
    const stores = await Promise.all([open(), open(), open()]);
    expect(await query('SELECT version FROM ferry_schema ORDER BY version')).toStrictEqual(MIGRATIONS.map(({ version }) => ({ version })));
    const registry = await stores[0]!.registries.create({ name: 'hub', url: 'docker.io' });
    for (const store of stores) expect((await store.registries.list()).items).toStrictEqual([registry]);

    await Promise.all(opened.splice(0).map((store) => store.close()));
    expect(await (await open()).registries.get(registry.id)).toStrictEqual(registry);
    expect(await query('SELECT count(*)::int AS count FROM ferry_schema')).toStrictEqual([{ count: MIGRATIONS.length }]);
    expect(logged).toStrictEqual([]);
  });

  it('brings the policies of a version 1 database up to date: every referrer, no signature required', async () => {
    await storedAt(1, POLICY_BEFORE_REFERRERS);
    expect(await (await open()).policies.get('p1')).toMatchObject({ name: 'old', referrers: 'all', requireSignature: null });
    expect(await query('SELECT version FROM ferry_schema ORDER BY version')).toStrictEqual(MIGRATIONS.map(({ version }) => ({ version })));
  });

  it('brings the registries of a version 4 database up to date: their credentials kept, no helper', async () => {
    await storedAt(4, REGISTRY_BEFORE_HELPERS);
    const store = await open();
    expect(await store.registries.get('r2')).toMatchObject({ name: 'private', username: 'robot', credentialHelper: null });
    expect(await store.registries.reseal()).toBe(1);
    expect(await store.registries.credentials('r2')).toStrictEqual({ username: 'robot', password: 'stored-pass' });
    expect(await query('SELECT version FROM ferry_schema ORDER BY version')).toStrictEqual(MIGRATIONS.map(({ version }) => ({ version })));
  });

  it('refuses a database whose schema is newer than this ferry, and leaves no connection open', async () => {
    await (await open()).close();
    opened.length = 0;
    await query('INSERT INTO ferry_schema (version) VALUES ($1)', [LATEST_VERSION + 1]);
    await expect(open()).rejects.toThrow(`the database schema is at version ${LATEST_VERSION + 1}, newer than this ferry knows (${LATEST_VERSION})`);
    expect(await connections(0)).toBe(0);
  });

  it('ends all its connections when closed, even if it ran no query', async () => {
    const idle = await open();
    const used = await open();
    await used.registries.list();
    await used.signals.publish({ type: 'queued' });
    expect(await connections(4)).toBeGreaterThanOrEqual(4);
    await Promise.all([idle.close(), used.close()]);
    opened.length = 0;
    expect(await connections(0)).toBe(0);
    expect(logged).toStrictEqual([]);
  });

  it('keeps a change it stored when telling the other nodes fails, and logs the failure', async () => {
    const store = await open();
    await store.executions.create({ policyId: null, trigger: 'manual', jobs: [{ operation: 'copy', source: 'a/b', destination: 'c/b', input: {} }] });
    // NOTIFY fails, as when the connection it went out on drops.
    store.signals.publish = async () => {
      throw new Error('Connection terminated unexpectedly');
    };
    const claimed = await store.jobs.claim('A', 60_000);
    expect(claimed?.job.status).toBe('running');
    await sleep(50);
    expect(logged).toStrictEqual(['telling the other nodes of a change failed: Connection terminated unexpectedly']);
    expect((await store.jobs.changesSince(0)).map((change) => change.status)).toStrictEqual(['pending', 'running']);
  });

  it('connects again when its connections are cut: queries go on, signals come back and onReconnect runs', async () => {
    const [store, other] = [await open(), await open()];
    await store.registries.list();
    const reconnected = new Promise<void>((resolve) => store.signals.onReconnect(resolve));
    const [mine] = await query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query = 'LISTEN ferry' ORDER BY backend_start LIMIT 1",
      [database.name],
    );
    // Every connection of `store` (the first opened): its pool's and the one it listens on.
    await query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_start <= (SELECT backend_start FROM pg_stat_activity WHERE pid = $2)',
      [database.name, mine!.pid],
    );
    await reconnected;
    expect((await store.registries.list()).items).toStrictEqual([]);
    const received = new Promise((resolve) => store.signals.subscribe(resolve));
    await other.signals.publish({ type: 'policies' });
    expect(await received).toStrictEqual({ type: 'policies' });
    expect(logged).toContain('the PostgreSQL connection for signals failed: terminating connection due to administrator command');
  });

  it('shows where it is without the password', async () => {
    const store = await open();
    expect(store).toMatchObject({ engine: 'postgres', location: expect.stringContaining(`/${database.name}`) });
    expect(store.location).not.toContain(':ferry@');
    expect(redactedUrl('postgres://ferry:secret@db:5432/ferry')).toBe('postgres://ferry:***@db:5432/ferry');
    expect(redactedUrl('postgres://db/ferry')).toBe('postgres://db/ferry');
  });
});
