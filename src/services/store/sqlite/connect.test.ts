import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { POLICY_BEFORE_REFERRERS, REGISTRY_BEFORE_HELPERS } from '../../../../test/support/stored-rows.js';
import type { Id, Store } from '../types.js';
import { openSqliteStore } from './connect.js';
import { MIGRATIONS, migrate } from './migrations.js';

const LATEST_VERSION = MIGRATIONS.at(-1)?.version ?? 0;
const HOLD_MS = 60_000;

let dir: string;
let path: string;
let opened: Store[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-sqlite-'));
  path = join(dir, 'state', 'ferry.db');
  opened = [];
});

afterEach(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await rm(dir, { recursive: true, force: true });
});

function open(file = path): Store {
  const store = openSqliteStore(file);
  opened.push(store);
  return store;
}

async function closeAll(): Promise<void> {
  await Promise.all(opened.splice(0).map((store) => store.close()));
}

/** The database as an older ferry left it: migrated up to `version`, holding the rows `sql` inserts. */
async function storedAt(version: number, sql: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const raw = new Database(path);
  try {
    migrate(raw, MIGRATIONS.filter((migration) => migration.version <= version));
    raw.exec(sql);
  } finally {
    raw.close();
  }
}

function rawPragma(name: string): unknown {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma(name, { simple: true });
  } finally {
    db.close();
  }
}

async function fileMode(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}

function jobs(count: number) {
  return Array.from({ length: count }, (_, index) => ({
    operation: 'copy' as const,
    source: `docker.io/library/r${index}`,
    destination: `registry.example.com:5000/library/r${index}`,
    input: { repository: `library/r${index}` },
  }));
}

describe('opening a SQLite store', () => {
  it('creates the parent directory and a database file only its owner can read, WAL included', async () => {
    const store = open();
    await store.registries.create({ name: 'hub', url: 'docker.io', credentials: { username: 'alice', password: 'secret' } });
    expect(await fileMode(path)).toBe(0o600);
    expect(await fileMode(`${path}-wal`)).toBe(0o600);
    if (existsSync(`${path}-shm`)) expect(await fileMode(`${path}-shm`)).toBe(0o600);
    expect((await stat(join(dir, 'state'))).isDirectory()).toBe(true);
  });

  it('puts the database in WAL mode', () => {
    open();
    expect(rawPragma('journal_mode')).toBe('wal');
  });

  it('applies the migrations once and keeps the data across reopenings', async () => {
    const registry = await open().registries.create({ name: 'hub', url: 'docker.io' });
    await closeAll();
    open();
    await closeAll();
    expect(rawPragma('user_version')).toBe(LATEST_VERSION);
    expect(await open().registries.get(registry.id)).toStrictEqual(registry);
  });

  it('applies only the migrations newer than the stored version, and refuses a newer database', () => {
    const db = new Database(join(dir, 'raw.db'));
    try {
      const next = [...MIGRATIONS, { version: LATEST_VERSION + 1, up: 'CREATE TABLE added (x INTEGER)' }];
      migrate(db);
      migrate(db, next);
      migrate(db, next);
      expect(db.pragma('user_version', { simple: true })).toBe(LATEST_VERSION + 1);
      expect(db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'added'").get()).toStrictEqual({ n: 1 });
      expect(() => migrate(db)).toThrow(`the database schema is at version ${LATEST_VERSION + 1}, newer than this ferry knows (${LATEST_VERSION})`);
    } finally {
      db.close();
    }
    expect(() => openSqliteStore(join(dir, 'raw.db'))).toThrow(/newer than this ferry knows/);
  });

  it('brings a version 2 database up to date: a job it left running is taken over from its snapshot, as version 1', async () => {
    await mkdir(dirname(path), { recursive: true });
    const raw = new Database(path);
    const snapshot = { status: 'active', value: { running: 'copying' }, context: { blobs: ['sha256:1'] } };
    try {
      migrate(raw, MIGRATIONS.slice(0, 2));
      expect(raw.pragma('user_version', { simple: true })).toBe(2);
      const at = '2025-01-01T10:00:00.000Z';
      raw.prepare("INSERT INTO executions (id, policy_id, trigger, created_at) VALUES ('e1', NULL, 'manual', ?)").run(at);
      raw
        .prepare(
          `INSERT INTO jobs (id, execution_id, policy_id, operation, source, destination, input, status, phase, attempt, progress, error, snapshot, priority, created_at, started_at, finished_at, updated_at)
           VALUES ('j1', 'e1', NULL, 'copy', 'docker.io/a', 'mirror/a', '{"repository":"a"}', 'running', 'copying', 1, '{"bytes":7}', NULL, ?, 0, ?, ?, NULL, ?)`,
        )
        .run(JSON.stringify(snapshot), at, at, at);
      raw.prepare(`INSERT INTO job_transitions (job_id, seq, "from", "to", event, at) VALUES ('j1', 1, NULL, 'pending', 'created', ?), ('j1', 2, 'pending', 'running', 'claimed', ?)`).run(at, at);
    } finally {
      raw.close();
    }

    const store = open();
    expect(rawPragma('user_version')).toBe(LATEST_VERSION);
    expect(await store.executions.get('e1')).toMatchObject({ status: 'running', jobs: { running: 1 } });
    const claimed = await store.jobs.claim('n2', HOLD_MS);
    expect(claimed).toMatchObject({
      job: { id: 'j1', status: 'running', phase: 'copying', attempt: 1, progress: { bytes: 7 }, node: 'n2', startedAt: '2025-01-01T10:00:00.000Z' },
      takenOver: true,
      stopRequested: false,
      snapshot: { version: 1, snapshot },
    });
    expect((await store.jobs.history('j1')).map(({ from, to, event, node }) => [from, to, event, node])).toStrictEqual([
      [null, 'pending', 'created', null],
      ['pending', 'running', 'claimed', null],
      ['running.copying', 'running.copying', 'takeover', 'n2'],
    ]);
    await store.jobs.saveStep(claimed!.lease, { status: 'finished', phase: 'copying', attempt: 1, progress: { bytes: 7 }, error: null, snapshot: null });
    expect(await store.jobs.get('j1')).toMatchObject({ status: 'finished' });
  });

  it('brings the policies of a version 3 database up to date: every referrer, no signature required', async () => {
    await storedAt(3, POLICY_BEFORE_REFERRERS);
    expect(await open().policies.get('p1')).toMatchObject({ name: 'old', referrers: 'all', requireSignature: null });
    expect(rawPragma('user_version')).toBe(LATEST_VERSION);
  });

  it('brings the registries of a version 4 database up to date: their credentials kept, no helper', async () => {
    await storedAt(4, REGISTRY_BEFORE_HELPERS);
    const store = open();
    expect(await store.registries.get('r2')).toMatchObject({ name: 'private', username: 'robot', credentialHelper: null });
    expect(await store.registries.reseal()).toBe(1);
    expect(await store.registries.credentials('r2')).toStrictEqual({ username: 'robot', password: 'stored-pass' });
    expect(rawPragma('user_version')).toBe(LATEST_VERSION);
  });

  it('works in memory', async () => {
    const first = open(':memory:');
    const second = open(':memory:');
    await first.registries.create({ name: 'hub', url: 'docker.io' });
    expect((await first.registries.list()).items).toHaveLength(1);
    // Each in-memory store is a database of its own.
    expect((await second.registries.list()).items).toHaveLength(0);
  });

  it('shares one connection between the stores of a process on one file, until the last one closes', async () => {
    const [first, second] = [open(), open(join(dir, 'state', '..', 'state', 'ferry.db'))];
    await first.executions.create({ policyId: null, trigger: 'manual', jobs: jobs(20) });
    // Transactions of both at once: neither waits on the other's lock.
    const claims = await Promise.all(Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? first : second).jobs.claim(`n${index % 2}`, HOLD_MS)));
    expect(new Set(claims.map((claimed) => claimed?.job.id)).size).toBe(20);

    await first.close();
    expect((await second.jobs.list({ status: 'running' })).total).toBe(20);
    await second.close();
    await expect(second.registries.list()).rejects.toThrow();
    expect((await open().jobs.list()).total).toBe(20);
  });
});

describe('SQLite stores in several processes', () => {
  it('never hand the same job to two processes claiming at once', async () => {
    const total = 300;
    const store = open();
    await store.executions.create({ policyId: null, trigger: 'manual', jobs: jobs(total) });
    const claimed = await claimInProcesses(2);
    const all = claimed.flat();
    expect(claimed.map((ids) => ids.length).every((count) => count > 0)).toBe(true);
    expect(all).toHaveLength(total);
    expect(new Set(all).size).toBe(total);
    expect((await store.jobs.list({ status: 'pending' })).total).toBe(0);
    const nodes = new Map((await store.jobs.list()).items.map((job) => [job.id, job.node]));
    for (const [index, ids] of claimed.entries()) for (const id of ids) expect(nodes.get(id)).toBe(`p${index}`);
  });
});

const STORE_MODULE = fileURLToPath(new URL('./connect.ts', import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const CLAIMER = `
  import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
  const [path, node] = process.argv.slice(2);
  const store = openSqliteStore(path);
  process.stdout.write('ready\\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  const ids = [];
  for (let claimed = await store.jobs.claim(node, ${HOLD_MS}); claimed !== undefined; claimed = await store.jobs.claim(node, ${HOLD_MS})) {
    ids.push(claimed.job.id);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await store.close();
  process.stdout.write(JSON.stringify(ids) + '\\n');
  process.exit(0);
`;

/**
 * Each child process opens the store, says `ready`, and on `go` claims until nothing is
 * pending, pausing after each claim as a worker would (a tight loop would keep the write lock
 * to itself); all of them are told to go at once, so that their claims interleave.
 */
async function claimInProcesses(count: number): Promise<Id[][]> {
  const script = join(dir, 'claim.mts');
  await writeFile(script, CLAIMER);
  const children = Array.from({ length: count }, (_, index) => {
    const child = spawn(process.execPath, ['--import', TSX_LOADER, script, path, `p${index}`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const nextLine = async (): Promise<string> => {
      const line = await lines.next();
      if (line.done === true) throw new Error('a claiming process ended early (its stderr is above)');
      return line.value;
    };
    return { stdin: child.stdin, nextLine };
  });
  expect(await Promise.all(children.map(({ nextLine }) => nextLine()))).toStrictEqual(children.map(() => 'ready'));
  for (const { stdin } of children) stdin.write('go\n');
  const results = await Promise.all(children.map(({ nextLine }) => nextLine()));
  return results.map((line) => JSON.parse(line) as Id[]);
}
