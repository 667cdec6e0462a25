import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/postgres.js';
import { INITIAL_BUDGET, takePulls } from '../registry/budget.js';
import { ConflictError, LeaseLostError, NotFoundError } from './errors.js';
import { openPostgresStore } from './postgres/connect.js';
import { Keyring, SecretKeyError } from './secrets.js';
import { openSqliteStore } from './sqlite/connect.js';
import type {
  ClaimedJob,
  Engine,
  ExecutionStatus,
  HeldJob,
  Id,
  Job,
  JobOperation,
  JobStatus,
  JobStep,
  NewJob,
  NodeId,
  Policy,
  PolicyInput,
  Registry,
  Signal,
  Store,
} from './types.js';

const PASSWORD = 'S3CRET-hunter2';
/** A lease no test outlives. */
const HOLD_MS = 60_000;
/** A lease a test waits out. */
const SHORT_MS = 300;
/** How long a test waits for a SHORT_MS lease to run out, with a margin for a loaded machine. */
const EXPIRY_WAIT_MS = 600;

/**
 * One engine under the suite: every test gets an empty database, and opens as many stores on
 * it as it needs nodes.
 */
interface TestEngine {
  name: Engine;
  setUp(): Promise<void>;
  /** Before each test: an empty database. */
  reset(): Promise<void>;
  /** With a keyring of its own unless given one. */
  open(keyring?: Keyring): Promise<Store>;
  /** What the database holds of registry passwords, raw: the SQLite file (and its log) as bytes, or PostgreSQL's column. */
  storedPasswords(): Promise<string>;
  /** After each test, its stores closed. */
  clean(): Promise<void>;
  tearDown(): Promise<void>;
  /** What the stores logged during the test (PostgreSQL's connection errors). */
  logged: string[];
  /** The database's URL, for tests that act beside the store (PostgreSQL only). */
  url(): string;
}

/** A temporary file per test. */
function sqliteEngine(): TestEngine {
  let dir: string | undefined;
  return {
    name: 'sqlite',
    logged: [],
    setUp: async () => {},
    reset: async () => {
      dir = await mkdtemp(join(tmpdir(), 'ferry-store-'));
    },
    open: async (keyring) => openSqliteStore(join(dir!, 'ferry.db'), keyring),
    storedPasswords: async () => {
      const files = await Promise.all(['ferry.db', 'ferry.db-wal'].map((file) => readFile(join(dir!, file)).catch(() => Buffer.alloc(0))));
      return Buffer.concat(files).toString('latin1');
    },
    clean: async () => {
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    },
    tearDown: async () => {},
    url: () => {
      throw new Error('SQLite has no URL');
    },
  };
}

/** Every table, children before the tables they refer to: the order that empties them. */
const TABLES = ['blob_uploads', 'job_changes', 'job_logs', 'job_transitions', 'jobs', 'executions', 'policies', 'registries', 'nodes', 'registry_budgets', 'secret_key_check'];

/**
 * A database per file, migrated once and emptied before each test: DELETE takes ~2 ms, TRUNCATE
 * ~50 ms (it makes new files), a fresh database ~300 ms (create, migrate, drop).
 */
function postgresEngine(): TestEngine {
  let database: TestDatabase | undefined;
  let admin: pg.Client | undefined;
  const engine: TestEngine = {
    name: 'postgres',
    logged: [],
    setUp: async () => {
      database = await createTestDatabase('store');
      await (await engine.open()).close();
      admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      const { rows } = await admin.query<{ name: string }>(
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'ferry_schema' ORDER BY tablename",
      );
      expect(rows.map(({ name }) => name)).toStrictEqual(TABLES.toSorted());
    },
    reset: async () => {
      await admin!.query(`${TABLES.map((table) => `DELETE FROM ${table};`).join(' ')} ALTER TABLE job_changes ALTER COLUMN seq RESTART`);
    },
    open: (keyring) => openPostgresStore(database!.url, (message, error) => engine.logged.push(`${message}: ${(error as Error).message}`), keyring),
    storedPasswords: async () => (await admin!.query<{ password: string | null }>('SELECT password FROM registries')).rows.map((row) => row.password).join('\n'),
    clean: async () => {},
    url: () => database!.url,
    tearDown: async () => {
      await admin?.end();
      await database?.drop();
    },
  };
  return engine;
}

async function registries(store: Store): Promise<{ source: Registry; destination: Registry }> {
  return {
    source: await store.registries.create({ name: 'hub', url: 'docker.io', credentials: { username: 'alice', password: PASSWORD } }),
    destination: await store.registries.create({ name: 'mirror', url: 'registry.example.com:5000', insecure: true }),
  };
}

/** A policy from `hub` to `mirror`, creating them first when missing. */
async function policy(store: Store, name: string, fields: Pick<PolicyInput, 'priority' | 'referrers' | 'requireSignature'> = {}): Promise<Policy> {
  const [source, destination] = [await store.registries.findByName('hub'), await store.registries.findByName('mirror')];
  const ends = source !== undefined && destination !== undefined ? { source, destination } : await registries(store);
  return store.policies.create({ name, sourceRegistryId: ends.source.id, destinationRegistryId: ends.destination.id, ...fields });
}

function newJob(repository: string, priority?: number): NewJob {
  return {
    operation: 'copy',
    source: `docker.io/${repository}`,
    destination: `registry.example.com:5000/${repository}`,
    input: { repository },
    ...(priority === undefined ? {} : { priority }),
  };
}

function jobs(count: number): NewJob[] {
  return Array.from({ length: count }, (_, index) => newJob(`library/r${index}`));
}

function createExecution(store: Store, created: NewJob[], policyId: Id | null = null) {
  return store.executions.create({ policyId, trigger: 'manual', jobs: created });
}

/** The job of a new execution of one. */
async function oneJob(store: Store): Promise<Job> {
  const { jobs: [job] } = await createExecution(store, jobs(1));
  return job!;
}

function step(status: JobStatus, fields: Partial<JobStep> = {}): JobStep {
  return { status, phase: null, attempt: 0, progress: {}, error: null, snapshot: null, ...fields };
}

async function claim(store: Store, node: NodeId = 'n1', leaseMs = HOLD_MS): Promise<ClaimedJob> {
  const claimed = await store.jobs.claim(node, leaseMs);
  if (claimed === undefined) throw new Error('no job to claim');
  return claimed;
}

async function claimAll(store: Store, count: number, node: NodeId = 'n1'): Promise<Id[]> {
  const ids: Id[] = [];
  for (let index = 0; index < count; index++) ids.push((await claim(store, node)).job.id);
  return ids;
}

/** Claims the next job, which the test has queued to be `id`, and saves a step in `status`. */
async function advance(store: Store, id: Id, status: JobStatus, fields: Partial<JobStep> = {}, node: NodeId = 'n1'): Promise<ClaimedJob> {
  const claimed = await claim(store, node);
  expect(claimed.job.id).toBe(id);
  await store.jobs.saveStep(claimed.lease, step(status, fields));
  return claimed;
}

/** An execution whose jobs are in `statuses`: the ones to advance are queued first (higher priority), in order. */
async function executionIn(store: Store, statuses: JobStatus[]) {
  const created = await createExecution(
    store,
    statuses.map((status, index) => newJob(`library/r${index}`, status === 'pending' ? 0 : statuses.length - index)),
  );
  for (const [index, status] of statuses.entries()) {
    if (status !== 'pending') await advance(store, created.jobs[index]!.id, status);
  }
  return created;
}

const byJob = (held: HeldJob[]): HeldJob[] => held.toSorted((a, b) => a.jobId.localeCompare(b.jobId));

/** The next signal `store` receives that `wanted` accepts. */
function nextSignal(store: Store, wanted: (signal: Signal) => boolean, timeoutMs = 5_000): Promise<Signal> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no such signal within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = store.signals.subscribe((signal) => {
      if (!wanted(signal)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(signal);
    });
  });
}

describe.each([sqliteEngine(), postgresEngine()])('store on $name', (engine) => {
  let opened: Store[] = [];

  beforeAll(() => engine.setUp());
  afterAll(() => engine.tearDown());

  beforeEach(async () => {
    opened = [];
    engine.logged.length = 0;
    await engine.reset();
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
    await engine.clean();
    expect(engine.logged).toStrictEqual([]);
  });

  /** A store on the test's database: one per node the test plays. */
  async function open(keyring?: Keyring): Promise<Store> {
    const store = await engine.open(keyring);
    opened.push(store);
    return store;
  }

  describe('registries', () => {
    it('never returns the password, only whether there are credentials and for whom', async () => {
      const store = await open();
      const { source, destination } = await registries(store);
      const updated = await store.registries.update(source.id, { url: 'index.docker.io' });
      const shown = [
        source,
        updated,
        await store.registries.get(source.id),
        await store.registries.findByName('hub'),
        await store.registries.findByUrl('index.docker.io'),
        await store.registries.list(),
      ];
      expect(JSON.stringify(shown)).not.toContain(PASSWORD);
      expect(await store.registries.get(source.id)).toMatchObject({ hasCredentials: true, username: 'alice' });
      expect(await store.registries.get(destination.id)).toMatchObject({ hasCredentials: false, username: null, insecure: true });
      expect(await store.registries.credentials(source.id)).toStrictEqual({ username: 'alice', password: PASSWORD });
      expect(await store.registries.credentials(destination.id)).toBeUndefined();
      expect(await store.registries.credentials('missing')).toBeUndefined();
    });

    it('keeps the password sealed: the database holds it in no clear form', async () => {
      const store = await open();
      const { source } = await registries(store);
      const stored = await engine.storedPasswords();
      expect(stored).toContain('aes256gcm:');
      expect(stored).not.toContain(PASSWORD);
      expect(stored).not.toContain(Buffer.from(PASSWORD).toString('base64'));
      expect(await store.registries.credentials(source.id)).toStrictEqual({ username: 'alice', password: PASSWORD });
      // Another change keeps the sealed password as it is.
      await store.registries.update(source.id, { name: 'hub-renamed' });
      expect(await store.registries.credentials(source.id)).toStrictEqual({ username: 'alice', password: PASSWORD });
    });

    it('seals the passwords again under a new key, and a key that cannot open one names its registry, never the password', async () => {
      const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
      const { source } = await registries(await open(new Keyring([oldKey])));
      const rotated = await open(new Keyring([newKey, oldKey]));
      expect(await rotated.registries.reseal()).toBe(1);
      expect(await rotated.registries.reseal()).toBe(0);
      expect(await engine.storedPasswords()).toContain(`aes256gcm:${new Keyring([newKey]).id}:`);
      expect(await (await open(new Keyring([newKey]))).registries.credentials(source.id)).toStrictEqual({ username: 'alice', password: PASSWORD });

      const stale = await open(new Keyring([oldKey]));
      const failure: unknown = await stale.registries.credentials(source.id).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(SecretKeyError);
      expect((failure as Error).message).toMatch(/^the password of registry hub was sealed with secret key [0-9a-f]{12}, which is not among the keys given/);
      expect((failure as Error).message).not.toContain(PASSWORD);
      await expect(stale.registries.reseal()).rejects.toThrow(/registry hub/);
    });

    it('refuses a keyring other than the one the database was first opened with, before any password is stored, and follows a rotation', async () => {
      const [first, other, next] = [randomBytes(32), randomBytes(32), randomBytes(32)];
      expect(await (await open(new Keyring([first]))).registries.reseal()).toBe(0);
      const refused: unknown = await (await open(new Keyring([other]))).registries.reseal().catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(SecretKeyError);
      expect((refused as Error).message).toBe(
        `this database's key check (the secret key every node of the database must share) was sealed with secret key ${new Keyring([first]).id}, which is not among the keys given (${new Keyring([other]).id}): set FERRY_SECRET_KEY or --secret-key-file to that key`,
      );
      // Rotation: the new key with the old one seals the check again; then the new key alone is the database's.
      expect(await (await open(new Keyring([next, first]))).registries.reseal()).toBe(0);
      expect(await (await open(new Keyring([next]))).registries.reseal()).toBe(0);
      await expect((await open(new Keyring([first]))).registries.reseal()).rejects.toThrow(SecretKeyError);
    });

    it('pages its listing by name, counting every registry', async () => {
      const store = await open();
      await registries(store);
      await store.registries.create({ name: 'zed', url: 'zed.example.com' });
      const first = await store.registries.list({ limit: 2 });
      expect({ names: first.items.map((r) => r.name), total: first.total }).toStrictEqual({ names: ['hub', 'mirror'], total: 3 });
      expect((await store.registries.list({ offset: 2 })).items.map((r) => r.name)).toStrictEqual(['zed']);
    });

    it('finds a registry by name and by URL', async () => {
      const store = await open();
      const { source, destination } = await registries(store);
      expect(await store.registries.findByUrl('docker.io')).toStrictEqual(source);
      expect(await store.registries.findByUrl('registry.example.com:5000')).toStrictEqual(destination);
      expect(await store.registries.findByName('mirror')).toStrictEqual(destination);
      expect(await store.registries.findByUrl('quay.io')).toBeUndefined();
      expect(await store.registries.findByName('quay')).toBeUndefined();
      expect(await store.registries.list()).toStrictEqual({ items: [source, destination], total: 2 });
    });

    it('patches only the fields given; null credentials and ca remove them', async () => {
      const store = await open();
      const created = await store.registries.create({
        name: 'hub',
        url: 'docker.io',
        ca: 'PEM',
        credentials: { username: 'alice', password: PASSWORD },
      });
      const renamed = await store.registries.update(created.id, { name: 'dockerhub', url: undefined });
      expect(renamed).toMatchObject({ name: 'dockerhub', url: 'docker.io', ca: 'PEM', hasCredentials: true, createdAt: created.createdAt });
      expect(await store.registries.credentials(created.id)).toStrictEqual({ username: 'alice', password: PASSWORD });

      await store.registries.update(created.id, { credentials: { username: 'bob', password: 'other' } });
      expect(await store.registries.credentials(created.id)).toStrictEqual({ username: 'bob', password: 'other' });

      const cleared = await store.registries.update(created.id, { credentials: null, ca: null });
      expect(cleared).toMatchObject({ name: 'dockerhub', ca: null, hasCredentials: false, username: null });
      expect(await store.registries.credentials(created.id)).toBeUndefined();
      expect(await store.registries.get(created.id)).toStrictEqual(cleared);
      expect(await store.registries.update('missing', { url: 'x' })).toBeUndefined();
    });

    it('keeps a credential helper in place of credentials, and never both', async () => {
      const store = await open();
      const created = await store.registries.create({ name: 'ecr', url: 'ecr.example.com', credentialHelper: 'ecr-login' });
      expect(created).toMatchObject({ credentialHelper: 'ecr-login', hasCredentials: false, username: null });
      expect(await store.registries.get(created.id)).toStrictEqual(created);
      expect(await store.registries.credentials(created.id)).toBeUndefined();
      await expect(store.registries.update(created.id, { credentials: { username: 'alice', password: PASSWORD } })).rejects.toThrow();
      expect(await store.registries.get(created.id)).toStrictEqual(created);
      const switched = await store.registries.update(created.id, { credentials: { username: 'alice', password: PASSWORD }, credentialHelper: null });
      expect(switched).toMatchObject({ credentialHelper: null, hasCredentials: true, username: 'alice' });
      expect(await store.registries.update(created.id, { credentials: null, credentialHelper: 'gcr' })).toMatchObject({ credentialHelper: 'gcr', hasCredentials: false });
      expect(await store.registries.credentials(created.id)).toBeUndefined();
    });

    it('refuses a name or a URL another registry has', async () => {
      const store = await open();
      const { source } = await registries(store);
      await expect(store.registries.create({ name: 'mirror', url: 'quay.io' })).rejects.toThrow(ConflictError);
      await expect(store.registries.create({ name: 'quay', url: 'docker.io' })).rejects.toThrow(/registry hub already has URL docker.io/);
      await expect(store.registries.update(source.id, { name: 'mirror' })).rejects.toThrow(/registry name "mirror" is already taken/);
      await expect(store.registries.update(source.id, { url: 'registry.example.com:5000' })).rejects.toThrow(ConflictError);
      expect(await store.registries.update(source.id, { name: 'hub', url: 'quay.io' })).toMatchObject({ name: 'hub', url: 'quay.io' });
    });

    it('is not deleted while a policy uses it, as source or destination', async () => {
      const store = await open();
      const { source, destination } = await registries(store);
      const spare = await store.registries.create({ name: 'spare', url: 'quay.io' });
      const used = await store.policies.create({ name: 'p', sourceRegistryId: source.id, destinationRegistryId: destination.id });
      expect(await store.registries.delete(source.id)).toBe(false);
      expect(await store.registries.delete(destination.id)).toBe(false);
      expect(await store.registries.delete(spare.id)).toBe(true);
      expect(await store.registries.delete(spare.id)).toBe(false);
      expect(await store.policies.delete(used.id)).toStrictEqual({ deleted: true, underWay: 0 });
      expect(await store.registries.delete(source.id)).toBe(true);
      expect((await store.registries.list()).items).toStrictEqual([await store.registries.get(destination.id)]);
    });
  });

  describe('policies', () => {
    it('fills in the defaults', async () => {
      const store = await open();
      const created = await policy(store, 'p');
      expect(created).toMatchObject({
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
        referrers: 'all',
        requireSignature: null,
      });
      expect(await store.policies.get(created.id)).toStrictEqual(created);
      expect(await store.policies.findByName('p')).toStrictEqual(created);
    });

    it('patches only the fields given', async () => {
      const store = await open();
      const created = await policy(store, 'p', { priority: 4 });
      const updated = await store.policies.update(created.id, {
        trigger: { type: 'cron', schedule: '0 * * * *' },
        tags: { include: ['v.*'], exclude: [], syntax: 'regex', semver: { range: '>=1.2 <2', includePrerelease: false }, latest: { count: 3, by: 'created' } },
        bandwidthKiBps: 512,
        enabled: undefined,
      });
      expect(updated).toStrictEqual({
        ...created,
        trigger: { type: 'cron', schedule: '0 * * * *' },
        tags: { include: ['v.*'], exclude: [], syntax: 'regex', semver: { range: '>=1.2 <2', includePrerelease: false }, latest: { count: 3, by: 'created' } },
        bandwidthKiBps: 512,
        updatedAt: updated?.updatedAt,
      });
      expect(await store.policies.get(created.id)).toStrictEqual(updated);
      expect(await store.policies.update(created.id, { bandwidthKiBps: null })).toMatchObject({ bandwidthKiBps: null, priority: 4 });
      expect(await store.policies.update('missing', { enabled: false })).toBeUndefined();
    });

    it('keeps the referrers chosen and the key signatures must verify with, until null removes the key', async () => {
      const store = await open();
      const requireSignature = { key: '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n', source: 'cosign.pub' };
      const created = await policy(store, 'p', { referrers: ['application/spdx+json', 'application/vnd.dev.cosign.artifact.sig.v1+json'], requireSignature });
      expect(await store.policies.get(created.id)).toMatchObject({ referrers: ['application/spdx+json', 'application/vnd.dev.cosign.artifact.sig.v1+json'], requireSignature });
      expect(await store.policies.update(created.id, { referrers: 'none' })).toMatchObject({ referrers: 'none', requireSignature });
      expect(await store.policies.update(created.id, { requireSignature: null })).toMatchObject({ referrers: 'none', requireSignature: null });
      expect(await store.policies.get(created.id)).toMatchObject({ referrers: 'none', requireSignature: null });
    });

    it('pages its listing by name, counting every policy', async () => {
      const store = await open();
      for (const name of ['c', 'a', 'b']) await policy(store, name);
      const page = await store.policies.list({ limit: 1, offset: 1 });
      expect({ names: page.items.map((p) => p.name), total: page.total }).toStrictEqual({ names: ['b'], total: 3 });
    });

    it('refuses a taken name and unknown registries', async () => {
      const store = await open();
      const first = await policy(store, 'first');
      const second = await policy(store, 'second');
      await expect(policy(store, 'first')).rejects.toThrow(/policy name "first" is already taken/);
      await expect(store.policies.update(second.id, { name: 'first' })).rejects.toThrow(ConflictError);
      await expect(store.policies.update(first.id, { sourceRegistryId: 'missing' })).rejects.toThrow(NotFoundError);
      await expect(
        store.policies.create({ name: 'third', sourceRegistryId: first.sourceRegistryId, destinationRegistryId: 'missing' }),
      ).rejects.toThrow(/registry missing does not exist/);
      expect((await store.policies.list()).items.map((listed) => listed.name)).toStrictEqual(['first', 'second']);
    });

    it('leaves its executions and jobs without a policy when deleted', async () => {
      const store = await open();
      const deleted = await policy(store, 'p');
      const {
        execution,
        jobs: [job],
      } = await createExecution(store, jobs(1), deleted.id);
      expect(await store.policies.delete(deleted.id, { ifIdle: true })).toStrictEqual({ deleted: false, underWay: 1 });
      expect(await store.policies.delete(deleted.id)).toStrictEqual({ deleted: true, underWay: 0 });
      expect(await store.policies.delete(deleted.id)).toStrictEqual({ deleted: false, underWay: 0 });
      expect(await store.executions.get(execution.id)).toMatchObject({ policyId: null });
      expect(await store.jobs.get(job!.id)).toMatchObject({ policyId: null });
      await expect(createExecution(store, jobs(1), deleted.id)).rejects.toThrow(NotFoundError);
    });

    it('is either deleted while idle or gets its execution, never both, when the two race across store instances', async () => {
      const [first, second] = [await open(), await open()];
      for (let round = 0; round < 20; round++) {
        const raced = await policy(first, `raced-${round}`);
        const [created, removed] = await Promise.allSettled([
          createExecution(round % 2 ? first : second, jobs(3), raced.id),
          (round % 2 ? second : first).policies.delete(raced.id, { ifIdle: true }),
        ]);
        if (removed.status === 'rejected') throw removed.reason;
        if (created.status === 'fulfilled') {
          expect(removed.value).toStrictEqual({ deleted: false, underWay: 1 });
          expect((await first.executions.get(created.value.execution.id))?.policyId).toBe(raced.id);
        } else {
          expect(created.reason).toBeInstanceOf(NotFoundError);
          expect(removed.value).toStrictEqual({ deleted: true, underWay: 0 });
        }
      }
    });

    it('claims each cron slot once, across store instances, and never an older one', async () => {
      const [first, second] = [await open(), await open()];
      const scheduled = await policy(first, 'p');
      expect(await first.policies.claimCronSlot(scheduled.id, '2025-01-01T10:00:00.000Z')).toBe(true);
      expect(await second.policies.claimCronSlot(scheduled.id, '2025-01-01T10:00:00Z')).toBe(false);
      expect(await first.policies.claimCronSlot(scheduled.id, '2025-01-01T10:00:00.000Z')).toBe(false);
      expect(await second.policies.claimCronSlot(scheduled.id, '2025-01-01T09:00:00.000Z')).toBe(false);
      expect(await second.policies.claimCronSlot(scheduled.id, '2025-01-01T11:00:00.000Z')).toBe(true);
      expect(await first.policies.claimCronSlot('missing', '2025-01-01T12:00:00.000Z')).toBe(false);
    });

    it('hands a cron slot to exactly one of many stores asking at once', async () => {
      const stores = [await open(), await open(), await open()];
      const scheduled = await policy(stores[0]!, 'p');
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, index) => stores[index % stores.length]!.policies.claimCronSlot(scheduled.id, '2025-01-01T10:00:00.000Z')),
      );
      expect(answers.filter(Boolean)).toHaveLength(1);
    });
  });

  describe('executions', () => {
    it('queues one pending job per coalesce key, however many writers race, and the key again once it runs', async () => {
      const [store, other] = [await open(), await open()];
      const owner = await policy(store, 'events');
      const keyed = (tag: string): NewJob => ({ ...newJob('app'), coalesceKey: `copy ${owner.id} app:${tag}` });
      const event = (tag: string) => ({ policyId: owner.id, trigger: 'event' as const, jobs: [keyed(tag)] });

      const raced = await Promise.all([store, other, store, other].map((node) => node.executions.createCoalesced(event('v1'))));
      const queued = raced.filter((created) => created !== undefined);
      expect(queued).toHaveLength(1);
      expect(await store.executions.list()).toMatchObject({ total: 1 });
      expect(await store.jobs.list()).toMatchObject({ total: 1 });

      const running = await claim(store);
      expect(running.job.id).toBe(queued[0]!.jobs[0]!.id);
      const again = await store.executions.createCoalesced(event('v1'));
      expect(again?.jobs).toHaveLength(1);
      expect(await store.executions.createCoalesced(event('v2'))).toBeDefined();

      // A stopped job retried beside a pending one of its key is queued all the same.
      const stopped = await store.jobs.stopPending(again!.jobs[0]!.id);
      expect(stopped?.status).toBe('stopped');
      expect(await store.executions.createCoalesced(event('v1'))).toBeDefined();
      expect((await store.jobs.requeue(stopped!.id))?.status).toBe('pending');
    });

    it('creates the execution and its pending jobs, each with a first transition and change', async () => {
      const store = await open();
      const owner = await policy(store, 'p', { priority: 7 });
      const { execution, jobs: created } = await store.executions.create({
        policyId: owner.id,
        trigger: 'cron',
        jobs: [newJob('library/a'), newJob('library/b', 2)],
      });
      expect(execution).toMatchObject({
        policyId: owner.id,
        trigger: 'cron',
        status: 'pending',
        jobs: { pending: 2, running: 0, retrying: 0, finished: 0, error: 0, stopped: 0 },
        finishedAt: null,
      });
      expect(await store.executions.get(execution.id)).toStrictEqual(execution);
      expect(created.map((job) => [job.status, job.attempt, job.policyId, job.executionId, job.priority, job.node])).toStrictEqual([
        ['pending', 0, owner.id, execution.id, 7, null],
        ['pending', 0, owner.id, execution.id, 2, null],
      ]);
      const [first] = created;
      expect(first).toMatchObject({ input: { repository: 'library/a' }, progress: {}, error: null, phase: null, startedAt: null });
      expect(await store.jobs.get(first!.id)).toStrictEqual(first);
      expect(await store.jobs.history(first!.id)).toStrictEqual([
        { seq: 1, from: null, to: 'pending', event: 'created', node: null, at: execution.createdAt },
      ]);
      expect((await store.jobs.changesSince(0)).map((change) => [change.jobId, change.status])).toStrictEqual(
        created.map((job) => [job.id, 'pending']),
      );
    });

    it('writes nothing when a job cannot be stored, or the policy does not exist', async () => {
      const store = await open();
      const invalid = { ...newJob('library/b'), operation: 'move' as JobOperation };
      await expect(createExecution(store, [newJob('library/a'), invalid])).rejects.toThrow(
        /CHECK constraint failed|violates check constraint/,
      );
      await expect(createExecution(store, jobs(2), 'missing')).rejects.toThrow(NotFoundError);
      expect(await store.executions.list()).toStrictEqual({ items: [], total: 0 });
      expect((await store.jobs.list()).total).toBe(0);
      expect(await store.jobs.lastChange()).toBe(0);
    });

    // More rows than one statement binds values for (SQLite: 32766 values, a job has 18; PostgreSQL: 65535).
    it('creates an execution of 4000 jobs', async () => {
      const store = await open();
      const { execution, jobs: created } = await createExecution(store, jobs(4_000));
      expect(execution.jobs.pending).toBe(4_000);
      expect(new Set(created.map((job) => job.id)).size).toBe(4_000);
      expect((await store.jobs.list({ executionId: execution.id, limit: 1 })).total).toBe(4_000);
      expect(await store.jobs.changesSince(0, 5_000)).toHaveLength(4_000);
      expect(await store.jobs.history(created[3_999]!.id)).toMatchObject([{ seq: 1, event: 'created' }]);
    });

    const cases: Array<[JobStatus[], ExecutionStatus]> = [
      [[], 'finished'],
      [['pending', 'pending'], 'pending'],
      [['running', 'pending'], 'running'],
      [['retrying', 'finished'], 'running'],
      [['running', 'error'], 'running'],
      [['pending', 'finished'], 'running'],
      [['pending', 'error'], 'running'],
      [['finished', 'finished'], 'finished'],
      [['error', 'finished'], 'error'],
      [['stopped', 'finished'], 'stopped'],
      [['error', 'stopped', 'finished'], 'error'],
    ];

    it.each(cases)('derives the status of jobs %j as %s', async (statuses, expected) => {
      const store = await open();
      const { execution } = await executionIn(store, statuses);
      const derived = await store.executions.get(execution.id);
      expect(derived?.status).toBe(expected);
      for (const status of ['pending', 'running', 'retrying', 'finished', 'error', 'stopped'] as const) {
        expect(derived?.jobs[status]).toBe(statuses.filter((each) => each === status).length);
      }
      const unfinished = statuses.some((status) => ['pending', 'running', 'retrying'].includes(status));
      const finishedAts = (await store.jobs.list({ executionId: execution.id })).items.map((job) => job.finishedAt ?? '');
      const lastFinished = finishedAts.sort().at(-1) ?? execution.createdAt;
      expect(derived?.finishedAt).toBe(unfinished ? null : lastFinished);
      expect((await store.executions.list({ status: expected })).items.map((listed) => listed.id)).toStrictEqual([execution.id]);
    });

    it('lists newest first, filtered by policy and derived status, a page at a time', async () => {
      const store = await open();
      const [a, b] = [await policy(store, 'a'), await policy(store, 'b')];
      const created: Id[] = [];
      for (const owner of [a, b, a, a, b]) created.push((await createExecution(store, jobs(1), owner.id)).execution.id);
      const {
        jobs: [only],
      } = await store.executions.create({ policyId: a.id, trigger: 'event', jobs: [newJob('library/x', 1)] });
      await advance(store, only!.id, 'error');

      const all = await store.executions.list();
      expect(all.total).toBe(6);
      expect(all.items.slice(1).map((execution) => execution.id)).toStrictEqual(created.toReversed());

      const ofA = await store.executions.list({ policyId: a.id, limit: 2, offset: 1 });
      expect(ofA.total).toBe(4);
      expect(ofA.items.map((execution) => execution.id)).toStrictEqual([created[3], created[2]]);
      // An offset alone: the rest of the list (SQLite has no OFFSET without LIMIT).
      expect((await store.executions.list({ policyId: a.id, offset: 3 })).items.map((execution) => execution.id)).toStrictEqual([created[0]]);

      expect(await store.executions.list({ policyId: a.id, status: 'error' })).toMatchObject({ total: 1, items: [{ trigger: 'event' }] });
      expect((await store.executions.list({ policyId: b.id, status: 'pending' })).total).toBe(2);
      expect((await store.executions.list({ status: 'running' })).total).toBe(0);
    });
  });

  describe('jobs', () => {
    it('lists newest first, filtered by execution and status, a page at a time', async () => {
      const store = await open();
      const first = await createExecution(store, [newJob('a'), newJob('b', 1), newJob('c')]);
      const second = await createExecution(store, jobs(2));
      await advance(store, first.jobs[1]!.id, 'finished');
      const ids = (items: Array<{ id: Id }>) => items.map((job) => job.id);

      const all = await store.jobs.list();
      expect(all.total).toBe(5);
      expect(ids(all.items)).toStrictEqual(ids([...first.jobs, ...second.jobs]).toReversed());
      expect(ids((await store.jobs.list({ executionId: first.execution.id, limit: 1, offset: 1 })).items)).toStrictEqual([first.jobs[1]!.id]);
      expect(ids((await store.jobs.list({ offset: 4 })).items)).toStrictEqual([first.jobs[0]!.id]);
      expect(await store.jobs.list({ executionId: first.execution.id, status: 'pending' })).toMatchObject({ total: 2 });
      expect(ids((await store.jobs.list({ status: 'finished' })).items)).toStrictEqual([first.jobs[1]!.id]);
    });

    it('claims from the policy with the fewest running jobs first, then by priority', async () => {
      const store = await open();
      const [busy, idle] = [await policy(store, 'busy', { priority: 10 }), await policy(store, 'idle')];
      await createExecution(store, jobs(8), busy.id);
      await claimAll(store, 3);
      const { jobs: waiting } = await createExecution(store, jobs(4), idle.id);

      expect((await claim(store)).job.id).toBe(waiting[0]!.id);
      const next = await Promise.all((await claimAll(store, 4)).map((id) => store.jobs.get(id)));
      expect(next.map((job) => (job?.policyId === busy.id ? 'busy' : 'idle'))).toStrictEqual(['idle', 'idle', 'busy', 'idle']);
    });

    it('claims by priority, then age, marks the job running and holds it with a lease', async () => {
      const store = await open();
      const older = await createExecution(store, [newJob('a', 0), newJob('b', 5), newJob('c', 1)]);
      const newer = await createExecution(store, [newJob('d', 5), newJob('e', 0)]);
      const [a, b, c] = older.jobs;
      const [d, e] = newer.jobs;

      const first = await claim(store, 'n1');
      expect(first).toMatchObject({
        job: { id: b!.id, status: 'running', node: 'n1' },
        lease: { jobId: b!.id, node: 'n1', fence: 1 },
        snapshot: null,
        takenOver: false,
        stopRequested: false,
      });
      expect(first.job.startedAt).not.toBeNull();
      expect(await store.jobs.get(b!.id)).toStrictEqual(first.job);
      expect((await store.jobs.history(b!.id)).at(-1)).toMatchObject({ seq: 2, from: 'pending', to: 'running', event: 'claimed', node: 'n1' });
      expect(await claimAll(store, 4, 'n2')).toStrictEqual([d!.id, c!.id, a!.id, e!.id]);
      expect(await store.jobs.claim('n1', HOLD_MS)).toBeUndefined();
      expect((await store.jobs.list({ node: 'n2', limit: 2 })).total).toBe(4);
      expect((await store.jobs.list({ node: 'n1' })).items.map((job) => job.id)).toStrictEqual([b!.id]);
      expect((await store.executions.get(older.execution.id))?.status).toBe('running');
    });

    it('never hands the same job to two claims from two store instances', async () => {
      const [first, second] = [await open(), await open()];
      await createExecution(first, jobs(50));
      const claims = await Promise.all(
        Array.from({ length: 60 }, (_, index) => (index % 2 === 0 ? first.jobs.claim('n1', HOLD_MS) : second.jobs.claim('n2', HOLD_MS))),
      );
      const ids = claims.flatMap((claimed) => (claimed === undefined ? [] : [claimed.job.id]));
      expect(ids).toHaveLength(50);
      expect(new Set(ids).size).toBe(50);
      expect((await first.jobs.list({ status: 'running' })).total).toBe(50);
    });

    it('saves a step with its transition and snapshot, and sets finishedAt only in an ended status', async () => {
      const store = await open();
      const created = await oneJob(store);
      const id = created.id;
      const held = await claim(store, 'n1');
      const snapshot = { version: 2, snapshot: { status: 'active', value: 'copying', context: { blobs: ['sha256:1'] } } };
      const error = { code: 'NETWORK' as const, message: 'reset', transient: true };
      const retrying = { phase: 'copying', attempt: 1, progress: { bytes: 10 }, error };
      await store.jobs.saveStep(held.lease, step('running', { phase: 'copying', snapshot }));
      await store.jobs.saveStep(held.lease, step('retrying', { ...retrying, snapshot, transition: { from: 'running', to: 'retrying', event: 'FAIL' } }));
      expect(await store.jobs.get(id)).toMatchObject({ status: 'retrying', ...retrying, node: 'n1', finishedAt: null });

      // The snapshot is what the next holder resumes from.
      await store.jobs.release(held.lease);
      const resumed = await claim(store, 'n2');
      expect(resumed).toMatchObject({ job: { id, status: 'retrying', phase: 'copying', node: 'n2' }, takenOver: true, snapshot });

      await store.jobs.saveStep(resumed.lease, step('finished', { phase: 'done', attempt: 1, transition: { from: 'retrying', to: 'finished', event: 'DONE' } }));
      const finished = await store.jobs.get(id);
      expect(finished).toMatchObject({ status: 'finished', error: null, progress: {} });
      expect(finished?.finishedAt).not.toBeNull();
      expect((await store.jobs.history(id)).map(({ seq, from, to, event, node }) => [seq, from, to, event, node])).toStrictEqual([
        [1, null, 'pending', 'created', null],
        [2, 'pending', 'running', 'claimed', 'n1'],
        [3, 'running', 'retrying', 'FAIL', 'n1'],
        [4, 'retrying.copying', 'retrying.copying', 'takeover', 'n2'],
        [5, 'retrying', 'finished', 'DONE', 'n2'],
      ]);
      await expect(store.jobs.saveStep({ jobId: 'missing', node: 'n1', fence: 1 }, step('running'))).rejects.toThrow(LeaseLostError);
    });

    it('requeues a failed or stopped job from scratch, and nothing else', async () => {
      const store = await open();
      const { jobs: created } = await createExecution(store, [
        newJob('failed', 4),
        newJob('stopped', 3),
        newJob('running', 2),
        newJob('finished', 1),
        newJob('pending', 0),
      ]);
      const [failed, stopped, running, finished, pending] = created.map((job) => job.id) as [Id, Id, Id, Id, Id];
      const error = { code: 'DENIED' as const, message: 'denied', transient: false };
      const snapshot = { version: 1, snapshot: { value: 'x' } };
      await advance(store, failed, 'error', { phase: 'copying', attempt: 3, progress: { bytes: 1 }, error, snapshot });
      const startedAt = (await store.jobs.get(failed))?.startedAt;
      expect(startedAt).not.toBeNull();
      await advance(store, stopped, 'stopped');
      await advance(store, running, 'running');
      await advance(store, finished, 'finished');

      const requeued = await store.jobs.requeue(failed);
      expect(requeued).toMatchObject({ status: 'pending', phase: null, attempt: 0, progress: {}, error: null, startedAt, finishedAt: null });
      expect(await store.jobs.get(failed)).toStrictEqual(requeued);
      expect((await store.jobs.history(failed)).at(-1)).toMatchObject({ from: 'error', to: 'pending', event: 'retry', node: null });

      expect(await store.jobs.requeue(stopped)).toMatchObject({ id: stopped, status: 'pending' });
      expect((await store.jobs.history(stopped)).at(-1)).toMatchObject({ from: 'stopped', to: 'pending', event: 'retry', node: null });
      for (const id of [pending, running, finished, failed, 'missing']) expect(await store.jobs.requeue(id)).toBeUndefined();

      // Claimed again, it starts afresh: nothing to resume.
      expect(await claim(store, 'n2')).toMatchObject({ job: { id: failed, status: 'running' }, snapshot: null, takenOver: false, stopRequested: false });
    });

    it('stops a pending job only', async () => {
      const store = await open();
      const { execution, jobs: created } = await createExecution(store, [newJob('pending'), newJob('running', 1)]);
      const [pending, running] = created.map((job) => job.id) as [Id, Id];
      await advance(store, running, 'running');

      const stopped = await store.jobs.stopPending(pending);
      expect(stopped).toMatchObject({ id: pending, status: 'stopped' });
      expect(stopped?.finishedAt).not.toBeNull();
      expect(await store.jobs.get(pending)).toStrictEqual(stopped);
      expect((await store.jobs.history(pending)).at(-1)).toStrictEqual({
        seq: 2,
        from: 'pending',
        to: 'stopped',
        event: 'STOP',
        node: null,
        at: stopped?.finishedAt,
      });
      expect(await store.jobs.stopPending(pending)).toBeUndefined();
      expect(await store.jobs.stopPending(running)).toBeUndefined();
      expect(await store.jobs.get(running)).toMatchObject({ status: 'running' });
      expect(await store.jobs.stopPending('missing')).toBeUndefined();
      expect((await store.executions.get(execution.id))?.jobs).toMatchObject({ stopped: 1, running: 1 });
      expect(await store.jobs.claim('n1', HOLD_MS)).toBeUndefined();
    });

    it('numbers log entries and reads them after a seq, a page at a time', async () => {
      const store = await open();
      const job = await oneJob(store);
      const id = job.id;
      const entry = (index: number) => ({ at: new Date(index).toISOString(), level: 'info', message: `m${index}`, fields: { index } });
      await store.jobs.appendLogs(id, [entry(1), entry(2)]);
      await store.jobs.appendLogs(id, [entry(3)]);
      await store.jobs.appendLogs(id, []);

      expect(await store.jobs.logs(id)).toStrictEqual([1, 2, 3].map((seq) => ({ seq, ...entry(seq) })));
      expect((await store.jobs.logs(id, { after: 1, limit: 1 })).map((log) => log.seq)).toStrictEqual([2]);
      expect(await store.jobs.logs(id, { after: 3 })).toStrictEqual([]);
      await expect(store.jobs.appendLogs('missing', [entry(1)])).rejects.toThrow(NotFoundError);
    });

    it('reads at most 1000 log entries unless told otherwise', async () => {
      const store = await open();
      const job = await oneJob(store);
      const id = job.id;
      const entry = { at: new Date().toISOString(), level: 'debug', message: 'm', fields: {} };
      await store.jobs.appendLogs(id, Array.from({ length: 1_005 }, () => entry));
      expect(await store.jobs.logs(id)).toHaveLength(1_000);
      expect(await store.jobs.logs(id, { limit: 2_000 })).toHaveLength(1_005);
    });

    it('appends 12000 log lines at once', async () => {
      const store = await open();
      const job = await oneJob(store);
      const entry = { at: new Date().toISOString(), level: 'debug', message: 'm', fields: { bytes: 1 } };
      await store.jobs.appendLogs(job.id, [entry]);
      await store.jobs.appendLogs(job.id, Array.from({ length: 12_000 }, () => entry));
      const logs = await store.jobs.logs(job.id, { limit: 20_000 });
      expect(logs.map((log) => log.seq)).toStrictEqual(Array.from({ length: 12_001 }, (_, index) => index + 1));
    });

    it('numbers the log lines of two stores appending to one job at once without a gap', async () => {
      const [first, second] = [await open(), await open()];
      const job = await oneJob(first);
      const entry = (message: string) => ({ at: new Date().toISOString(), level: 'info', message, fields: {} });
      await Promise.all(
        Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? first : second).jobs.appendLogs(job.id, [entry(`${index}a`), entry(`${index}b`)])),
      );
      const logs = await first.jobs.logs(job.id);
      expect(logs.map((log) => log.seq)).toStrictEqual(Array.from({ length: 40 }, (_, index) => index + 1));
      // Each append is numbered as one run.
      for (let index = 0; index < 40; index += 2) expect(logs[index + 1]!.message).toBe(logs[index]!.message.replace('a', 'b'));
    });
  });

  describe('leases', () => {
    it('never hands a job with a live lease to another node; once it runs out, another takes it over with a higher fence', async () => {
      const [a, b] = [await open(), await open()];
      const created = await oneJob(a);
      const id = created.id;
      const held = await claim(a, 'A', SHORT_MS);
      const snapshot = { version: 3, snapshot: { value: 'copying', context: { done: 1 } } };
      await a.jobs.saveStep(held.lease, step('running', { phase: 'copying', progress: { bytes: 5 }, snapshot }));
      expect(await b.jobs.claim('B', HOLD_MS)).toBeUndefined();

      await sleep(EXPIRY_WAIT_MS);
      const taken = await claim(b, 'B');
      expect(taken).toMatchObject({
        job: { id, status: 'running', phase: 'copying', progress: { bytes: 5 }, node: 'B' },
        lease: { jobId: id, node: 'B' },
        takenOver: true,
        snapshot,
        stopRequested: false,
      });
      expect(taken.lease.fence).toBeGreaterThan(held.lease.fence);

      // The old holder comes back: refused, and nothing changes.
      const [job, history, lastChange] = [await a.jobs.get(id), await a.jobs.history(id), await a.jobs.lastChange()];
      await expect(
        a.jobs.saveStep(held.lease, step('finished', { phase: 'copying', transition: { from: 'running', to: 'finished', event: 'DONE' } })),
      ).rejects.toThrow(LeaseLostError);
      await expect(a.jobs.saveStep(held.lease, step('running', { phase: 'tagging' }))).rejects.toThrow(LeaseLostError);
      expect(await a.jobs.get(id)).toStrictEqual(job);
      expect(await a.jobs.history(id)).toStrictEqual(history);
      expect(await a.jobs.lastChange()).toBe(lastChange);
      expect(await a.jobs.renewLeases('A', HOLD_MS)).toStrictEqual([]);
      expect(await b.jobs.renewLeases('B', HOLD_MS)).toStrictEqual([{ jobId: id, fence: taken.lease.fence, stopRequested: false }]);

      // The new holder's steps are written.
      await b.jobs.saveStep(taken.lease, step('finished', { phase: 'copying', transition: { from: 'running.copying', to: 'finished', event: 'DONE' } }));
      expect(await b.jobs.get(id)).toMatchObject({ status: 'finished', node: 'B' });
      expect((await b.jobs.history(id)).slice(-2)).toMatchObject([
        { from: 'running.copying', to: 'running.copying', event: 'takeover', node: 'B' },
        { from: 'running.copying', to: 'finished', event: 'DONE', node: 'B' },
      ]);
    });

    it('renews the leases of the jobs a node holds, with their fences, past their first expiry', async () => {
      const [a, b] = [await open(), await open()];
      await createExecution(a, [newJob('other', 4), newJob('running', 3), newJob('retrying', 2), newJob('finished', 1)]);
      const other = await claim(b, 'B');
      const running = await claim(a, 'A', 600);
      const retrying = await claim(a, 'A', 600);
      await a.jobs.saveStep(retrying.lease, step('retrying', { phase: 'copying' }));
      const finished = await claim(a, 'A', 600);
      await a.jobs.saveStep(finished.lease, step('finished'));

      const renewed = await a.jobs.renewLeases('A', HOLD_MS);
      expect(byJob(renewed)).toStrictEqual(
        byJob([
          { jobId: running.job.id, fence: running.lease.fence, stopRequested: false },
          { jobId: retrying.job.id, fence: retrying.lease.fence, stopRequested: false },
        ]),
      );
      expect(await b.jobs.renewLeases('B', HOLD_MS)).toStrictEqual([{ jobId: other.job.id, fence: other.lease.fence, stopRequested: false }]);
      expect(await a.jobs.renewLeases('C', HOLD_MS)).toStrictEqual([]);

      await sleep(900);
      expect(await b.jobs.claim('B', HOLD_MS)).toBeUndefined();
      await a.jobs.saveStep(running.lease, step('running', { phase: 'copying' }));
      expect(await a.jobs.get(running.job.id)).toMatchObject({ status: 'running', phase: 'copying', node: 'A' });
    });

    it('hands a released job to another node at once, and refuses the old lease', async () => {
      const [a, b] = [await open(), await open()];
      const created = await oneJob(a);
      const held = await claim(a, 'A');
      const snapshot = { version: 1, snapshot: { value: 'copying' } };
      await a.jobs.saveStep(held.lease, step('running', { phase: 'copying', snapshot }));
      await a.jobs.release(held.lease);
      expect(await a.jobs.renewLeases('A', HOLD_MS)).toStrictEqual([]);

      const taken = await claim(b, 'B');
      expect(taken).toMatchObject({ job: { id: created.id, node: 'B', phase: 'copying' }, takenOver: true, snapshot });
      expect(taken.lease.fence).toBeGreaterThan(held.lease.fence);
      await expect(a.jobs.saveStep(held.lease, step('running', { phase: 'tagging' }))).rejects.toThrow(LeaseLostError);
      // A stale release changes nothing either.
      await a.jobs.release(held.lease);
      expect(await b.jobs.renewLeases('B', HOLD_MS)).toStrictEqual([{ jobId: created.id, fence: taken.lease.fence, stopRequested: false }]);
      expect(await a.jobs.claim('A', HOLD_MS)).toBeUndefined();
    });

    it.each(['finished', 'error', 'stopped'] as const)('ends the lease with a %s step: the job is not claimed again', async (status) => {
      const [a, b] = [await open(), await open()];
      const {
        execution,
        jobs: [created],
      } = await createExecution(a, jobs(1));
      const held = await claim(a, 'A');
      await a.jobs.saveStep(held.lease, step(status, { transition: { from: 'running', to: status, event: 'END' } }));
      const ended = await a.jobs.get(created!.id);
      expect(ended).toMatchObject({ status, node: 'A' });
      expect(ended?.finishedAt).not.toBeNull();
      expect(ended?.finishedAt).toBe(ended?.updatedAt);
      expect(await a.jobs.renewLeases('A', HOLD_MS)).toStrictEqual([]);
      expect(await b.jobs.claim('B', HOLD_MS)).toBeUndefined();
      expect(await b.jobs.requestStop(created!.id)).toBeUndefined();
      expect(await a.executions.get(execution.id)).toMatchObject({ status, finishedAt: ended?.finishedAt });

      // The lease writes no more, neither now nor once the job is queued again.
      await expect(a.jobs.saveStep(held.lease, step('running', { phase: 'tagging' }))).rejects.toThrow(LeaseLostError);
      if (status !== 'finished') {
        const requeued = await a.jobs.requeue(created!.id);
        await expect(a.jobs.saveStep(held.lease, step('running', { phase: 'tagging' }))).rejects.toThrow(LeaseLostError);
        expect(await a.jobs.get(created!.id)).toStrictEqual(requeued);
        expect(await b.jobs.claim('B', HOLD_MS)).toMatchObject({ job: { id: created!.id }, takenOver: false, snapshot: null });
      }
    });
  });

  describe('requestStop', () => {
    it('asks the live holder of a job to stop it: seen by renewing and by the node that takes it over', async () => {
      const [a, b] = [await open(), await open()];
      const created = await oneJob(a);
      const id = created.id;
      const held = await claim(a, 'A');
      const lastChange = await a.jobs.lastChange();

      const asked = await b.jobs.requestStop(id);
      expect(asked).toMatchObject({ id, status: 'running', node: 'A', finishedAt: null });
      expect(await b.jobs.get(id)).toStrictEqual(asked);
      expect((await b.jobs.history(id)).at(-1)).toMatchObject({ event: 'claimed' });
      expect(await b.jobs.lastChange()).toBe(lastChange);
      expect(await a.jobs.renewLeases('A', HOLD_MS)).toStrictEqual([{ jobId: id, fence: held.lease.fence, stopRequested: true }]);
      // Asking again changes nothing.
      expect(await b.jobs.requestStop(id)).toMatchObject({ status: 'running' });

      // Its holder drains: the node that takes it over sees the request too.
      await a.jobs.release(held.lease);
      const taken = await claim(b, 'B');
      expect(taken).toMatchObject({ job: { id }, takenOver: true, stopRequested: true });
      await b.jobs.saveStep(taken.lease, step('stopped', { transition: { from: 'running', to: 'stopped', event: 'STOP' } }));
      expect(await b.jobs.get(id)).toMatchObject({ status: 'stopped', node: 'B' });
    });

    it('ends a job at once when no live node holds it, and fences its old holder off', async () => {
      const [a, b] = [await open(), await open()];
      const { execution, jobs: created } = await createExecution(a, [newJob('expired', 1), newJob('released', 0)]);
      const [expired, released] = created.map((job) => job.id) as [Id, Id];
      const lapsing = await claim(a, 'A', SHORT_MS);
      await a.jobs.saveStep(lapsing.lease, step('running', { phase: 'copying', progress: { bytes: 3 } }));
      const handedBack = await claim(a, 'A');
      await a.jobs.saveStep(handedBack.lease, step('retrying', { phase: 'tagging', attempt: 2 }));
      await a.jobs.release(handedBack.lease);
      await sleep(EXPIRY_WAIT_MS);

      const stopped = await b.jobs.requestStop(expired);
      expect(stopped).toMatchObject({ id: expired, status: 'stopped', phase: 'copying', progress: { bytes: 3 } });
      expect(stopped?.finishedAt).not.toBeNull();
      expect(await b.jobs.get(expired)).toStrictEqual(stopped);
      expect((await b.jobs.history(expired)).at(-1)).toMatchObject({ from: 'running.copying', to: 'stopped', event: 'STOP', node: null });
      expect((await b.jobs.changesSince((await b.jobs.lastChange()) - 1)).map((change) => [change.jobId, change.status])).toStrictEqual([
        [expired, 'stopped'],
      ]);
      await expect(a.jobs.saveStep(lapsing.lease, step('running', { phase: 'tagging' }))).rejects.toThrow(LeaseLostError);
      expect(await a.jobs.get(expired)).toStrictEqual(stopped);

      expect(await b.jobs.requestStop(released)).toMatchObject({ id: released, status: 'stopped' });
      expect((await b.jobs.history(released)).at(-1)).toMatchObject({ from: 'retrying.tagging', to: 'stopped', event: 'STOP', node: null });

      expect(await a.jobs.renewLeases('A', HOLD_MS)).toStrictEqual([]);
      expect(await b.jobs.claim('B', HOLD_MS)).toBeUndefined();
      expect(await b.executions.get(execution.id)).toMatchObject({ status: 'stopped', jobs: { stopped: 2 } });
    });

    it('does nothing to a job that is pending, ended or missing', async () => {
      const store = await open();
      const { jobs: created } = await createExecution(store, [newJob('pending'), newJob('finished', 1)]);
      const [pending, finished] = created.map((job) => job.id) as [Id, Id];
      await advance(store, finished, 'finished');
      const before = await store.jobs.list();
      const lastChange = await store.jobs.lastChange();
      for (const id of [pending, finished, 'missing']) expect(await store.jobs.requestStop(id)).toBeUndefined();
      expect(await store.jobs.list()).toStrictEqual(before);
      expect(await store.jobs.lastChange()).toBe(lastChange);
      expect(await claim(store)).toMatchObject({ job: { id: pending }, stopRequested: false });
    });
  });

  describe('blob uploads', () => {
    const blob = { registry: 'r.example', digest: `sha256:${'d'.repeat(64)}` };

    async function nodes(): Promise<[Store, Store]> {
      const [a, b] = [await open(), await open()];
      for (const id of ['A', 'B']) await a.nodes.register({ id, host: 'h', pid: 1 });
      return [a, b];
    }

    it('lets one node claim an upload; the others see it, then its result, then it runs out', async () => {
      const [a, b] = await nodes();
      expect(await a.blobUploads.claim({ ...blob, repository: 'one', node: 'A' }, SHORT_MS, HOLD_MS)).toBeUndefined();
      expect(await b.blobUploads.claim({ ...blob, repository: 'two', node: 'B' }, SHORT_MS, HOLD_MS)).toStrictEqual({ repository: 'one', node: 'A', state: 'uploading' });
      await a.blobUploads.renew({ ...blob, node: 'A' }, HOLD_MS);
      await a.blobUploads.finish({ ...blob, node: 'A' }, true, SHORT_MS);
      expect(await b.blobUploads.find(blob.registry, blob.digest, HOLD_MS)).toStrictEqual({ repository: 'one', node: 'A', state: 'done' });
      expect(await b.blobUploads.claim({ ...blob, repository: 'two', node: 'B' }, SHORT_MS, HOLD_MS)).toMatchObject({ state: 'done' });
      await sleep(EXPIRY_WAIT_MS);
      expect(await b.blobUploads.find(blob.registry, blob.digest, HOLD_MS)).toBeUndefined();
      expect(await b.blobUploads.claim({ ...blob, repository: 'two', node: 'B' }, SHORT_MS, HOLD_MS)).toBeUndefined();
      await sleep(EXPIRY_WAIT_MS);
      expect(await a.blobUploads.forgetExpired()).toBe(1);
      expect(await a.blobUploads.forgetExpired()).toBe(0);
    });

    it('frees the upload at once when its node gives it up, and only for that node', async () => {
      const [a, b] = await nodes();
      expect(await a.blobUploads.claim({ ...blob, repository: 'one', node: 'A' }, HOLD_MS, HOLD_MS)).toBeUndefined();
      await b.blobUploads.finish({ ...blob, node: 'B' }, false, HOLD_MS);
      expect(await b.blobUploads.find(blob.registry, blob.digest, HOLD_MS)).toMatchObject({ node: 'A', state: 'uploading' });
      await a.blobUploads.finish({ ...blob, node: 'A' }, false, HOLD_MS);
      expect(await b.blobUploads.claim({ ...blob, repository: 'two', node: 'B' }, HOLD_MS, HOLD_MS)).toBeUndefined();
    });

    it('lets another node claim at once the upload of a node whose heartbeat is stale', async () => {
      const [a, b] = await nodes();
      expect(await a.blobUploads.claim({ ...blob, repository: 'one', node: 'A' }, HOLD_MS, HOLD_MS)).toBeUndefined();
      await sleep(50);
      await b.nodes.heartbeat('B');
      // A's heartbeat is older than 40 ms, B's is not: A counts as gone.
      expect(await b.blobUploads.find(blob.registry, blob.digest, 40)).toBeUndefined();
      expect(await b.blobUploads.claim({ ...blob, repository: 'two', node: 'B' }, HOLD_MS, 40)).toBeUndefined();
      expect(await a.blobUploads.find(blob.registry, blob.digest, HOLD_MS)).toMatchObject({ node: 'B', state: 'uploading' });
    });
  });

  describe('registry budgets', () => {
    const hub = 'registry-1.docker.io';
    const take = (store: Store) => store.registryBudgets.update(hub, (state, now) => takePulls(state, 1, now));

    it('starts a registry from the initial budget and keeps what is written, times to the millisecond', async () => {
      const [a, b] = [await open(), await open()];
      expect(await a.registryBudgets.update(hub, (state) => [state, state])).toStrictEqual(INITIAL_BUDGET);
      const written = { ...INITIAL_BUDGET, rate: 2.5, decreasedAt: Date.parse('2026-01-02T03:04:05.678Z'), pausedUntil: Date.parse('2026-01-02T03:04:06.789Z'), pulls: 'counted', limit: 100, remaining: 76, windowSeconds: 21600, resetAt: Date.parse('2026-01-02T09:04:05.678Z') } as const;
      await a.registryBudgets.update(hub, () => [written, undefined]);
      expect(await b.registryBudgets.update(hub, (state) => [state, state])).toStrictEqual(written);
      expect(await b.registryBudgets.update('ghcr.io', (state) => [state, state])).toStrictEqual(INITIAL_BUDGET);
    });

    it('hands out each pull once, however many nodes take at once', async () => {
      const nodes = [await open(), await open()];
      await nodes[0]!.registryBudgets.update(hub, (state, now) => [{ ...state, pulls: 'counted', limit: 20, remaining: 20, resetAt: now + HOLD_MS }, undefined]);
      const grants = await Promise.all(nodes.flatMap((store) => Array.from({ length: 15 }, () => take(store))));
      expect(grants.reduce((sum, grant) => sum + grant.taken, 0)).toBe(20);
      expect((await take(nodes[1]!)).waitMs).toBeGreaterThan(HOLD_MS - 10_000);
    });
  });

  describe('nodes', () => {
    it('registers nodes, counts the jobs each holds, revives, drains and removes them', async () => {
      const store = await open();
      await store.nodes.register({ id: 'A', host: 'host-a', pid: 1 });
      await store.nodes.register({ id: 'B', host: 'host-b', pid: 2 });
      await createExecution(store, jobs(5));
      const [kept, finished, released] = [await claim(store, 'A'), await claim(store, 'A'), await claim(store, 'A')];
      await store.jobs.saveStep(finished.lease, step('finished'));
      await store.jobs.release(released.lease);
      await claim(store, 'B');
      await claim(store, 'B');
      expect(kept.job.node).toBe('A');

      const listed = (await store.nodes.list(HOLD_MS)).items;
      expect(listed.map(({ id, host, pid, draining, jobsHeld }) => ({ id, host, pid, draining, jobsHeld }))).toStrictEqual([
        { id: 'A', host: 'host-a', pid: 1, draining: false, jobsHeld: 1 },
        { id: 'B', host: 'host-b', pid: 2, draining: false, jobsHeld: 2 },
      ]);
      for (const node of listed) {
        expect(new Date(node.startedAt).toISOString()).toBe(node.startedAt);
        expect(node.heartbeatAt >= node.startedAt).toBe(true);
      }

      await store.nodes.drain('A');
      expect((await store.nodes.list(HOLD_MS)).items.find((node) => node.id === 'A')).toMatchObject({ draining: true, jobsHeld: 1 });
      // A node that starts again under its id is alive and not draining.
      await store.nodes.register({ id: 'A', host: 'host-a2', pid: 3 });
      const revived = (await store.nodes.list(HOLD_MS)).items.find((node) => node.id === 'A');
      expect(revived).toMatchObject({ host: 'host-a2', pid: 3, draining: false });
      expect(revived!.startedAt >= listed[0]!.startedAt).toBe(true);

      await store.nodes.remove('B');
      await store.nodes.remove('missing');
      expect((await store.nodes.list(HOLD_MS)).items.map((node) => node.id)).toStrictEqual(['A']);
    });

    it('pages the live nodes, counting them all', async () => {
      const store = await open();
      for (const id of ['A', 'B', 'C']) await store.nodes.register({ id, host: `host-${id}`, pid: 1 });
      const page = await store.nodes.list(HOLD_MS, { limit: 2 });
      expect({ ids: page.items.map((node) => node.id), total: page.total }).toStrictEqual({ ids: ['A', 'B'], total: 3 });
      expect((await store.nodes.list(HOLD_MS, { offset: 2 })).items.map((node) => node.id)).toStrictEqual(['C']);
    });

    it('leaves out the nodes whose heartbeat is older than asked', async () => {
      const store = await open();
      await store.nodes.register({ id: 'A', host: 'host-a', pid: 1 });
      await store.nodes.register({ id: 'B', host: 'host-b', pid: 2 });
      const before = (await store.nodes.list(HOLD_MS)).items;
      await sleep(600);
      await store.nodes.heartbeat('B');
      await store.nodes.heartbeat('missing');
      const fresh = (await store.nodes.list(400)).items;
      expect(fresh.map((node) => node.id)).toStrictEqual(['B']);
      expect(fresh[0]!.heartbeatAt > before[1]!.heartbeatAt).toBe(true);
      expect(fresh[0]!.startedAt).toBe(before[1]!.startedAt);
      expect((await store.nodes.list(HOLD_MS)).items.map((node) => node.id)).toStrictEqual(['A', 'B']);

      await store.nodes.heartbeat('A');
      expect((await store.nodes.list(400)).items.map((node) => node.id)).toStrictEqual(['A', 'B']);
    });
  });

  describe('the feed of changes', () => {
    it('forgets changes older than asked, but never the newest, so numbers go on', async () => {
      const store = await open();
      await createExecution(store, jobs(3));
      expect(await store.jobs.forgetChanges(60_000)).toBe(0);
      await sleep(20);
      expect(await store.jobs.forgetChanges(1)).toBe(2);
      expect((await store.jobs.changesSince(0)).map((change) => change.seq)).toStrictEqual([3]);
      await claim(store, 'A');
      expect(await store.jobs.lastChange()).toBe(4);
    });

    it('numbers every change, and reads exactly those after a number', async () => {
      const store = await open();
      expect(await store.jobs.lastChange()).toBe(0);
      expect(await store.jobs.changesSince(0)).toStrictEqual([]);
      const { execution, jobs: created } = await createExecution(store, [newJob('a', 2), newJob('b', 1), newJob('c')]);
      const [a, b, c] = created.map((job) => job.id) as [Id, Id, Id];
      const error = { code: 'NETWORK' as const, message: 'reset', transient: false };

      const first = await claim(store, 'A');
      await store.jobs.saveStep(first.lease, step('running', { phase: 'copying', progress: { bytes: 1 } }));
      await store.jobs.saveStep(first.lease, step('error', { phase: 'copying', attempt: 1, error, transition: { from: 'running', to: 'error', event: 'FAIL' } }));
      await store.jobs.requeue(a);
      await store.jobs.stopPending(c);
      const second = await claim(store, 'B');
      await store.jobs.requestStop(a);
      await store.jobs.release(second.lease);
      await store.jobs.requestStop(a);
      await store.jobs.appendLogs(b, [{ at: new Date().toISOString(), level: 'info', message: 'm', fields: {} }]);

      const all = await store.jobs.changesSince(0);
      expect(all.map(({ jobId, status, phase, node }) => [jobId, status, phase, node])).toStrictEqual([
        [a, 'pending', null, null],
        [b, 'pending', null, null],
        [c, 'pending', null, null],
        [a, 'running', null, 'A'],
        [a, 'error', 'copying', 'A'],
        [a, 'pending', null, 'A'],
        [c, 'stopped', null, null],
        [a, 'running', null, 'B'],
        [a, 'stopped', null, 'B'],
      ]);
      expect(all[4]).toMatchObject({ executionId: execution.id, attempt: 1, error, progress: {} });
      expect(all.every((change) => change.executionId === execution.id)).toBe(true);
      const seqs = all.map((change) => change.seq);
      expect(seqs.every((seq, index) => index === 0 || seq > seqs[index - 1]!)).toBe(true);
      expect(await store.jobs.lastChange()).toBe(seqs.at(-1));
      for (const seq of [0, ...seqs]) expect(await store.jobs.changesSince(seq)).toStrictEqual(all.filter((change) => change.seq > seq));
      expect(await store.jobs.changesSince(seqs[2]!, 2)).toStrictEqual(all.slice(3, 5));
    });
  });

  describe('signals', () => {
    // Between processes on PostgreSQL (LISTEN/NOTIFY); SQLite's stay in their process, where the stores on one file share them.
    it('delivers what one store publishes to the subscribers of another, until they unsubscribe', async () => {
      const [sender, receiver] = [await open(), await open()];
      const received: Signal[] = [];
      const unsubscribe = receiver.signals.subscribe((signal) => received.push(signal));
      const signals: Signal[] = [
        { type: 'queued' },
        { type: 'stop', jobId: 'j1' },
        { type: 'policies' },
        {
          type: 'progress',
          change: { jobId: 'j1', executionId: 'e1', status: 'running', phase: 'copying', attempt: 0, progress: { bytes: 5 }, error: null, node: 'A' },
        },
      ];
      const last = nextSignal(receiver, (signal) => signal.type === 'progress');
      for (const signal of signals) await sender.signals.publish(signal);
      await last;
      expect(received).toStrictEqual(signals);

      unsubscribe();
      const after = nextSignal(receiver, (signal) => signal.type === 'queued');
      await sender.signals.publish({ type: 'queued' });
      await after;
      expect(received).toHaveLength(signals.length);
    });

    it('signals `changed` after a claim', async () => {
      const [claimer, watcher] = [await open(), await open()];
      await createExecution(claimer, jobs(1));
      const changed = nextSignal(watcher, (signal) => signal.type === 'changed');
      await claim(claimer, 'A');
      expect(await changed).toStrictEqual({ type: 'changed' });
    });
  });

  // Row locks and the feed's lock exist on PostgreSQL only: these tests belong to its run alone.
  if (engine.name === 'postgres') {
    describe('several nodes on PostgreSQL', () => {
      it('hands each of 100 jobs out exactly once to many claims from 3 stores at once', async () => {
        const stores = [await open(), await open(), await open()];
        await createExecution(stores[0]!, jobs(100));
        const started = performance.now();
        // Ten workers per store (its pool's size), each claiming until nothing is left.
        const workers = stores.flatMap((store, node) =>
          Array.from({ length: 10 }, async () => {
            const ids: Id[] = [];
            for (let claimed = await store.jobs.claim(`n${node}`, HOLD_MS); claimed !== undefined; claimed = await store.jobs.claim(`n${node}`, HOLD_MS)) {
              ids.push(claimed.job.id);
            }
            return ids;
          }),
        );
        const claimed = (await Promise.all(workers)).flat();
        console.info(`100 jobs claimed by 30 workers on 3 stores in ${Math.round(performance.now() - started)} ms`);
        expect(claimed).toHaveLength(100);
        expect(new Set(claimed).size).toBe(100);
        expect((await stores[0]!.jobs.list({ status: 'running' })).total).toBe(100);
      });

      it('numbers changes in the order they are committed, so a reader resuming after a number misses none', async () => {
        const [store, reader] = [await open(), await open()];
        const job = await oneJob(store);
        const seen = await reader.jobs.changesSince(0);
        // Another node's transaction has recorded a change and not committed yet.
        const other = new pg.Client({ connectionString: engine.url() });
        await other.connect();
        try {
          await other.query('BEGIN');
          await other.query("INSERT INTO job_changes (job_id, change, at) VALUES ($1, $2, now())", [job.id, JSON.stringify({ jobId: job.id, status: 'pending' })]);
          const claimed = store.jobs.claim('A', HOLD_MS);
          await sleep(300);
          seen.push(...(await reader.jobs.changesSince(seen.at(-1)!.seq)));
          await other.query('COMMIT');
          await claimed;
        } finally {
          await other.end();
        }
        seen.push(...(await reader.jobs.changesSince(seen.at(-1)!.seq)));
        expect(seen).toStrictEqual(await reader.jobs.changesSince(0));
        expect(seen.map((change) => change.status)).toStrictEqual(['pending', 'pending', 'running']);
      });
    });
  }
});
