import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ACTIVE_STATUSES, JOB_STATUSES } from '../../machines/status.js';
import { ConflictError, NotFoundError } from './errors.js';
import { MIGRATIONS, migrate } from './migrations.js';
import { openSqliteStore } from './sqlite.js';
import type { ExecutionStatus, Id, JobOperation, JobStatus, JobStep, JobStore, NewJob, Policy, Registry } from './types.js';

const PASSWORD = 'S3CRET-hunter2';
const LATEST_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

let dir: string;
let path: string;
let opened: JobStore[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-store-'));
  path = join(dir, 'state', 'ferry.db');
  opened = [];
});

afterEach(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await rm(dir, { recursive: true, force: true });
});

function open(file = path): JobStore {
  const store = openSqliteStore(file);
  opened.push(store);
  return store;
}

async function closeAll(): Promise<void> {
  await Promise.all(opened.splice(0).map((store) => store.close()));
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

async function registries(store: JobStore): Promise<{ source: Registry; destination: Registry }> {
  return {
    source: await store.createRegistry({ name: 'hub', url: 'docker.io', credentials: { username: 'alice', password: PASSWORD } }),
    destination: await store.createRegistry({ name: 'mirror', url: 'registry.example.com:5000', insecure: true }),
  };
}

/** A policy from `hub` to `mirror`, creating them first when missing. */
async function policy(store: JobStore, name: string, fields: { priority?: number } = {}): Promise<Policy> {
  const [source, destination] = [await store.findRegistryByName('hub'), await store.findRegistryByName('mirror')];
  const ends = source !== undefined && destination !== undefined ? { source, destination } : await registries(store);
  return store.createPolicy({ name, sourceRegistryId: ends.source.id, destinationRegistryId: ends.destination.id, ...fields });
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

function step(status: JobStatus, fields: Partial<JobStep> = {}): JobStep {
  return { status, phase: null, attempt: 0, progress: {}, error: null, snapshot: null, ...fields };
}

async function claimAll(store: JobStore, count: number): Promise<Id[]> {
  const ids: Id[] = [];
  for (let index = 0; index < count; index++) {
    const job = await store.claimNextJob();
    if (job === undefined) throw new Error('no pending job to claim');
    ids.push(job.id);
  }
  return ids;
}

describe('opening', () => {
  it('creates the parent directory and a database file only its owner can read, WAL included', async () => {
    const store = open();
    await registries(store);
    expect(await fileMode(path)).toBe(0o600);
    expect(await fileMode(`${path}-wal`)).toBe(0o600);
    expect((await stat(join(dir, 'state'))).isDirectory()).toBe(true);
  });

  it('puts the database in WAL mode', () => {
    open();
    expect(rawPragma('journal_mode')).toBe('wal');
  });

  it('applies the migrations once and keeps the data across reopenings', async () => {
    const registry = await open().createRegistry({ name: 'hub', url: 'docker.io' });
    await closeAll();
    open();
    await closeAll();
    expect(rawPragma('user_version')).toBe(LATEST_VERSION);
    expect(await open().getRegistry(registry.id)).toStrictEqual(registry);
  });

  it('applies only the migrations newer than the stored version', () => {
    const db = new Database(join(dir, 'raw.db'));
    try {
      const next = [...MIGRATIONS, { version: LATEST_VERSION + 1, up: 'CREATE TABLE added (x INTEGER)' }];
      migrate(db);
      migrate(db, next);
      migrate(db, next);
      expect(db.pragma('user_version', { simple: true })).toBe(LATEST_VERSION + 1);
      expect(db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'added'").get()).toStrictEqual({ n: 1 });
      expect(() => migrate(db)).toThrow(/newer than this ferry knows/);
    } finally {
      db.close();
    }
  });

  it('works in memory', async () => {
    const store = open(':memory:');
    await registries(store);
    expect(await store.listRegistries()).toHaveLength(2);
  });
});

describe('registries', () => {
  it('never returns the password, only whether there are credentials and for whom', async () => {
    const store = open();
    const { source, destination } = await registries(store);
    const updated = await store.updateRegistry(source.id, { url: 'index.docker.io' });
    const shown = [
      source,
      updated,
      await store.getRegistry(source.id),
      await store.findRegistryByName('hub'),
      await store.listRegistries(),
    ];
    expect(JSON.stringify(shown)).not.toContain(PASSWORD);
    expect(await store.getRegistry(source.id)).toMatchObject({ hasCredentials: true, username: 'alice' });
    expect(await store.getRegistry(destination.id)).toMatchObject({ hasCredentials: false, username: null, insecure: true });
    expect(await store.registryCredentials(source.id)).toStrictEqual({ username: 'alice', password: PASSWORD });
    expect(await store.registryCredentials(destination.id)).toBeUndefined();
  });

  it('patches only the fields given; null credentials and ca remove them', async () => {
    const store = open();
    const created = await store.createRegistry({
      name: 'hub',
      url: 'docker.io',
      ca: 'PEM',
      credentials: { username: 'alice', password: PASSWORD },
    });
    const renamed = await store.updateRegistry(created.id, { name: 'dockerhub', url: undefined });
    expect(renamed).toMatchObject({ name: 'dockerhub', url: 'docker.io', ca: 'PEM', hasCredentials: true, createdAt: created.createdAt });
    expect(await store.registryCredentials(created.id)).toStrictEqual({ username: 'alice', password: PASSWORD });

    await store.updateRegistry(created.id, { credentials: { username: 'bob', password: 'other' } });
    expect(await store.registryCredentials(created.id)).toStrictEqual({ username: 'bob', password: 'other' });

    const cleared = await store.updateRegistry(created.id, { credentials: null, ca: null });
    expect(cleared).toMatchObject({ name: 'dockerhub', ca: null, hasCredentials: false, username: null });
    expect(await store.registryCredentials(created.id)).toBeUndefined();
    expect(await store.updateRegistry('missing', { url: 'x' })).toBeUndefined();
  });

  it('refuses a name another registry has', async () => {
    const store = open();
    const { source } = await registries(store);
    await expect(store.createRegistry({ name: 'mirror', url: 'quay.io' })).rejects.toThrow(ConflictError);
    await expect(store.updateRegistry(source.id, { name: 'mirror' })).rejects.toThrow(/registry name "mirror" is already taken/);
    expect(await store.updateRegistry(source.id, { name: 'hub', url: 'quay.io' })).toMatchObject({ name: 'hub', url: 'quay.io' });
  });

  it('is not deleted while a policy uses it, as source or destination', async () => {
    const store = open();
    const { source, destination } = await registries(store);
    const spare = await store.createRegistry({ name: 'spare', url: 'quay.io' });
    const used = await store.createPolicy({ name: 'p', sourceRegistryId: source.id, destinationRegistryId: destination.id });
    expect(await store.deleteRegistry(source.id)).toBe(false);
    expect(await store.deleteRegistry(destination.id)).toBe(false);
    expect(await store.deleteRegistry(spare.id)).toBe(true);
    expect(await store.deleteRegistry(spare.id)).toBe(false);
    await store.deletePolicy(used.id);
    expect(await store.deleteRegistry(source.id)).toBe(true);
    expect(await store.listRegistries()).toStrictEqual([await store.getRegistry(destination.id)]);
  });
});

describe('policies', () => {
  it('fills in the defaults', async () => {
    const store = open();
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
    });
    expect(await store.getPolicy(created.id)).toStrictEqual(created);
    expect(await store.findPolicyByName('p')).toStrictEqual(created);
  });

  it('patches only the fields given', async () => {
    const store = open();
    const created = await policy(store, 'p', { priority: 4 });
    const updated = await store.updatePolicy(created.id, {
      trigger: { type: 'cron', schedule: '0 * * * *' },
      tags: { include: ['v.*'], exclude: [], syntax: 'regex' },
      bandwidthKiBps: 512,
      enabled: undefined,
    });
    expect(updated).toStrictEqual({
      ...created,
      trigger: { type: 'cron', schedule: '0 * * * *' },
      tags: { include: ['v.*'], exclude: [], syntax: 'regex' },
      bandwidthKiBps: 512,
      updatedAt: updated?.updatedAt,
    });
    expect(await store.getPolicy(created.id)).toStrictEqual(updated);
    expect(await store.updatePolicy(created.id, { bandwidthKiBps: null })).toMatchObject({ bandwidthKiBps: null, priority: 4 });
    expect(await store.updatePolicy('missing', { enabled: false })).toBeUndefined();
  });

  it('refuses a taken name and unknown registries', async () => {
    const store = open();
    const first = await policy(store, 'first');
    const second = await policy(store, 'second');
    await expect(policy(store, 'first')).rejects.toThrow(/policy name "first" is already taken/);
    await expect(store.updatePolicy(second.id, { name: 'first' })).rejects.toThrow(ConflictError);
    await expect(store.updatePolicy(first.id, { sourceRegistryId: 'missing' })).rejects.toThrow(NotFoundError);
    await expect(
      store.createPolicy({ name: 'third', sourceRegistryId: first.sourceRegistryId, destinationRegistryId: 'missing' }),
    ).rejects.toThrow(/registry missing does not exist/);
    expect((await store.listPolicies()).map((listed) => listed.name)).toStrictEqual(['first', 'second']);
  });

  it('leaves its executions and jobs without a policy when deleted', async () => {
    const store = open();
    const deleted = await policy(store, 'p');
    const { execution, jobs: [job] } = await store.createExecution({ policyId: deleted.id, trigger: 'manual', jobs: jobs(1) });
    expect(await store.deletePolicy(deleted.id)).toBe(true);
    expect(await store.deletePolicy(deleted.id)).toBe(false);
    expect(await store.getExecution(execution.id)).toMatchObject({ policyId: null });
    expect(await store.getJob(job?.id ?? '')).toMatchObject({ policyId: null });
  });

  it('claims each cron slot once, across store instances, and never an older one', async () => {
    const [first, second] = [open(), open()];
    const scheduled = await policy(first, 'p');
    expect(await first.claimCronSlot(scheduled.id, '2025-01-01T10:00:00.000Z')).toBe(true);
    expect(await second.claimCronSlot(scheduled.id, '2025-01-01T10:00:00Z')).toBe(false);
    expect(await first.claimCronSlot(scheduled.id, '2025-01-01T10:00:00.000Z')).toBe(false);
    expect(await second.claimCronSlot(scheduled.id, '2025-01-01T09:00:00.000Z')).toBe(false);
    expect(await second.claimCronSlot(scheduled.id, '2025-01-01T11:00:00.000Z')).toBe(true);
    expect(await first.claimCronSlot('missing', '2025-01-01T12:00:00.000Z')).toBe(false);
  });
});

describe('executions', () => {
  it('creates the execution and its pending jobs, each with a first transition', async () => {
    const store = open();
    const owner = await policy(store, 'p', { priority: 7 });
    const { execution, jobs: created } = await store.createExecution({
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
    expect(created.map((job) => [job.status, job.attempt, job.policyId, job.executionId, job.priority])).toStrictEqual([
      ['pending', 0, owner.id, execution.id, 7],
      ['pending', 0, owner.id, execution.id, 2],
    ]);
    const [first] = created;
    expect(first).toMatchObject({ input: { repository: 'library/a' }, progress: {}, error: null, phase: null, startedAt: null });
    expect(await store.getJob(first?.id ?? '')).toStrictEqual(first);
    expect(await store.jobSnapshot(first?.id ?? '')).toBeNull();
    expect(await store.history(first?.id ?? '')).toStrictEqual([
      { seq: 1, from: null, to: 'pending', event: 'created', at: execution.createdAt },
    ]);
  });

  it('writes nothing when a job cannot be stored, or the policy does not exist', async () => {
    const store = open();
    const invalid = { ...newJob('library/b'), operation: 'move' as JobOperation };
    await expect(store.createExecution({ policyId: null, trigger: 'manual', jobs: [newJob('library/a'), invalid] })).rejects.toThrow(
      /CHECK constraint failed/,
    );
    await expect(store.createExecution({ policyId: 'missing', trigger: 'manual', jobs: jobs(2) })).rejects.toThrow(NotFoundError);
    expect(await store.listExecutions()).toStrictEqual({ items: [], total: 0 });
    expect((await store.listJobs()).total).toBe(0);
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
    const store = open();
    const { execution, jobs: created } = await store.createExecution({ policyId: null, trigger: 'manual', jobs: jobs(statuses.length) });
    for (const [index, status] of statuses.entries()) {
      if (status !== 'pending') await store.saveStep(created[index]?.id ?? '', step(status));
    }
    const derived = await store.getExecution(execution.id);
    expect(derived?.status).toBe(expected);
    for (const status of JOB_STATUSES) {
      expect(derived?.jobs[status]).toBe(statuses.filter((each) => each === status).length);
    }
    const unfinished = statuses.some((status) => ACTIVE_STATUSES.has(status));
    const finishedAts = (await store.listJobs({ executionId: execution.id })).items.map((job) => job.finishedAt ?? '');
    const lastFinished = finishedAts.sort().at(-1) ?? execution.createdAt;
    expect(derived?.finishedAt).toBe(unfinished ? null : lastFinished);
    expect((await store.listExecutions({ status: expected })).items.map((listed) => listed.id)).toStrictEqual([execution.id]);
  });

  it('lists newest first, filtered by policy and derived status, a page at a time', async () => {
    const store = open();
    const [a, b] = [await policy(store, 'a'), await policy(store, 'b')];
    const created: Id[] = [];
    for (const owner of [a, b, a, a, b]) {
      created.push((await store.createExecution({ policyId: owner.id, trigger: 'manual', jobs: jobs(1) })).execution.id);
    }
    const { jobs: [only] } = await store.createExecution({ policyId: a.id, trigger: 'event', jobs: jobs(1) });
    await store.saveStep(only?.id ?? '', step('error'));

    const all = await store.listExecutions();
    expect(all.total).toBe(6);
    expect(all.items.slice(1).map((execution) => execution.id)).toStrictEqual(created.toReversed());

    const ofA = await store.listExecutions({ policyId: a.id, limit: 2, offset: 1 });
    expect(ofA.total).toBe(4);
    expect(ofA.items.map((execution) => execution.id)).toStrictEqual([created[3], created[2]]);

    expect(await store.listExecutions({ policyId: a.id, status: 'error' })).toMatchObject({ total: 1, items: [{ trigger: 'event' }] });
    expect((await store.listExecutions({ policyId: b.id, status: 'pending' })).total).toBe(2);
    expect((await store.listExecutions({ status: 'running' })).total).toBe(0);
  });
});

describe('jobs', () => {
  it('lists newest first, filtered by execution and status, a page at a time', async () => {
    const store = open();
    const first = await store.createExecution({ policyId: null, trigger: 'manual', jobs: jobs(3) });
    const second = await store.createExecution({ policyId: null, trigger: 'manual', jobs: jobs(2) });
    await store.saveStep(first.jobs[1]?.id ?? '', step('finished'));
    const ids = (items: Array<{ id: Id }>) => items.map((job) => job.id);

    const all = await store.listJobs();
    expect(all.total).toBe(5);
    expect(ids(all.items)).toStrictEqual(ids([...first.jobs, ...second.jobs]).toReversed());
    expect(ids((await store.listJobs({ executionId: first.execution.id, limit: 1, offset: 1 })).items)).toStrictEqual([first.jobs[1]?.id]);
    expect(await store.listJobs({ executionId: first.execution.id, status: 'pending' })).toMatchObject({ total: 2 });
    expect(ids((await store.listJobs({ status: 'finished' })).items)).toStrictEqual([first.jobs[1]?.id]);
  });

  it('claims from the policy with the fewest running jobs first, then by priority', async () => {
    const store = open();
    const [busy, idle] = [await policy(store, 'busy', { priority: 10 }), await policy(store, 'idle')];
    await store.createExecution({ policyId: busy.id, trigger: 'manual', jobs: jobs(8) });
    await claimAll(store, 3);
    const { jobs: waiting } = await store.createExecution({ policyId: idle.id, trigger: 'manual', jobs: jobs(4) });

    expect((await store.claimNextJob())?.id).toBe(waiting[0]?.id);
    const next = await Promise.all((await claimAll(store, 4)).map((id) => store.getJob(id)));
    expect(next.map((job) => (job?.policyId === busy.id ? 'busy' : 'idle'))).toStrictEqual(['idle', 'idle', 'busy', 'idle']);
  });

  it('claims by priority, then age, and marks the job running', async () => {
    const store = open();
    const older = await store.createExecution({ policyId: null, trigger: 'manual', jobs: [newJob('a', 0), newJob('b', 5), newJob('c', 1)] });
    const newer = await store.createExecution({ policyId: null, trigger: 'manual', jobs: [newJob('d', 5), newJob('e', 0)] });
    const [a, b, c] = older.jobs;
    const [d, e] = newer.jobs;

    const first = await store.claimNextJob();
    expect(first).toMatchObject({ id: b?.id, status: 'running' });
    expect(first?.startedAt).not.toBeNull();
    expect((await store.history(b?.id ?? '')).at(-1)).toMatchObject({ seq: 2, from: 'pending', to: 'running', event: 'claimed' });
    expect(await claimAll(store, 4)).toStrictEqual([d?.id, c?.id, a?.id, e?.id]);
    expect(await store.claimNextJob()).toBeUndefined();
    expect((await store.getExecution(older.execution.id))?.status).toBe('running');
  });

  it('never hands the same job to two claims from two store instances', async () => {
    const [first, second] = [open(), open()];
    await first.createExecution({ policyId: null, trigger: 'manual', jobs: jobs(50) });
    const claims = await Promise.all(Array.from({ length: 60 }, (_, index) => (index % 2 === 0 ? first : second).claimNextJob()));
    const ids = claims.flatMap((job) => (job === undefined ? [] : [job.id]));
    expect(ids).toHaveLength(50);
    expect(new Set(ids).size).toBe(50);
    expect((await first.listJobs({ status: 'running' })).total).toBe(50);
  });

  it('never hands the same job to two processes claiming at once', async () => {
    const total = 300;
    const store = open();
    await store.createExecution({ policyId: null, trigger: 'manual', jobs: jobs(total) });
    const claimed = await claimInProcesses(2);
    const all = claimed.flat();
    expect(claimed.map((ids) => ids.length).every((count) => count > 0)).toBe(true);
    expect(all).toHaveLength(total);
    expect(new Set(all).size).toBe(total);
    expect((await store.listJobs({ status: 'pending' })).total).toBe(0);
  });

  it('finds the jobs left running or retrying', async () => {
    const store = open();
    const { jobs: created } = await store.createExecution({ policyId: null, trigger: 'manual', jobs: jobs(4) });
    const [running, retrying, finished] = created;
    await store.saveStep(running?.id ?? '', step('running'));
    await store.saveStep(retrying?.id ?? '', step('retrying'));
    await store.saveStep(finished?.id ?? '', step('finished'));
    expect((await store.interruptedJobs()).map((job) => job.id)).toStrictEqual([running?.id, retrying?.id]);
  });

  it('saves a step with its transition, and sets finishedAt only in a final status', async () => {
    const store = open();
    const { jobs: [created] } = await store.createExecution({ policyId: null, trigger: 'manual', jobs: jobs(1) });
    const id = (await store.claimNextJob())?.id ?? '';
    expect(id).toBe(created?.id);
    const snapshot = { status: 'active', value: 'copying', context: { blobs: ['sha256:1'] } };
    const error = { code: 'NETWORK' as const, message: 'reset', transient: true };
    const retrying = { phase: 'copying', attempt: 1, progress: { bytes: 10 }, error };
    await store.saveStep(id, step('retrying', { ...retrying, snapshot, transition: { from: 'running', to: 'retrying', event: 'FAIL' } }));
    expect(await store.getJob(id)).toMatchObject({ status: 'retrying', ...retrying, finishedAt: null });
    expect(await store.jobSnapshot(id)).toStrictEqual(snapshot);

    await store.saveStep(id, step('finished', { phase: 'done', attempt: 1, transition: { from: 'retrying', to: 'finished', event: 'DONE' } }));
    const finished = await store.getJob(id);
    expect(finished).toMatchObject({ status: 'finished', error: null });
    expect(finished?.finishedAt).not.toBeNull();
    expect(await store.jobSnapshot(id)).toBeNull();

    await store.saveStep(id, step('running'));
    expect(await store.getJob(id)).toMatchObject({ finishedAt: null });
    expect((await store.history(id)).map(({ seq, from, to, event }) => [seq, from, to, event])).toStrictEqual([
      [1, null, 'pending', 'created'],
      [2, 'pending', 'running', 'claimed'],
      [3, 'running', 'retrying', 'FAIL'],
      [4, 'retrying', 'finished', 'DONE'],
    ]);
    await expect(store.saveStep('missing', step('running'))).rejects.toThrow(NotFoundError);
  });

  it('requeues a failed or stopped job from scratch, and nothing else', async () => {
    const store = open();
    const { jobs: created } = await store.createExecution({ policyId: null, trigger: 'manual', jobs: jobs(5) });
    const [failed, stopped, pending, running, finished] = created.map((job) => job.id);
    const [claimedFirst] = await claimAll(store, 1);
    expect(claimedFirst).toBe(failed);
    const startedAt = (await store.getJob(failed ?? ''))?.startedAt;
    const error = { code: 'DENIED' as const, message: 'denied', transient: false };
    await store.saveStep(failed ?? '', step('error', { phase: 'copying', attempt: 3, progress: { bytes: 1 }, error, snapshot: { value: 'x' } }));
    await store.saveStep(stopped ?? '', step('stopped'));
    await store.saveStep(running ?? '', step('running'));
    await store.saveStep(finished ?? '', step('finished'));

    expect(await store.requeueJob(failed ?? '')).toBe(true);
    expect(await store.getJob(failed ?? '')).toMatchObject({
      status: 'pending',
      phase: null,
      attempt: 0,
      progress: {},
      error: null,
      startedAt,
      finishedAt: null,
    });
    expect(startedAt).not.toBeNull();
    expect(await store.jobSnapshot(failed ?? '')).toBeNull();
    expect((await store.history(failed ?? '')).at(-1)).toMatchObject({ from: 'error', to: 'pending', event: 'retry' });

    expect(await store.requeueJob(stopped ?? '')).toBe(true);
    expect((await store.history(stopped ?? '')).at(-1)).toMatchObject({ from: 'stopped', to: 'pending', event: 'retry' });
    for (const id of [pending, running, finished, failed, 'missing']) expect(await store.requeueJob(id ?? '')).toBe(false);
  });

  it('stops a pending job only', async () => {
    const store = open();
    const { execution, jobs: created } = await store.createExecution({ policyId: null, trigger: 'manual', jobs: jobs(2) });
    const [pending, running] = created.map((job) => job.id);
    await store.saveStep(running ?? '', step('running'));

    expect(await store.stopPendingJob(pending ?? '')).toBe(true);
    const stopped = await store.getJob(pending ?? '');
    expect(stopped?.status).toBe('stopped');
    expect(stopped?.finishedAt).not.toBeNull();
    expect((await store.history(pending ?? '')).at(-1)).toMatchObject({ seq: 2, from: 'pending', to: 'stopped', event: 'STOP' });
    expect(await store.stopPendingJob(pending ?? '')).toBe(false);
    expect(await store.stopPendingJob(running ?? '')).toBe(false);
    expect(await store.getJob(running ?? '')).toMatchObject({ status: 'running' });
    expect(await store.stopPendingJob('missing')).toBe(false);
    expect((await store.getExecution(execution.id))?.jobs).toMatchObject({ stopped: 1, running: 1 });
  });

  it('numbers log entries and reads them after a seq, a page at a time', async () => {
    const store = open();
    const { jobs: [job] } = await store.createExecution({ policyId: null, trigger: 'manual', jobs: jobs(1) });
    const id = job?.id ?? '';
    const entry = (index: number) => ({ at: new Date(index).toISOString(), level: 'info', message: `m${index}`, fields: { index } });
    await store.appendLogs(id, [entry(1), entry(2)]);
    await store.appendLogs(id, [entry(3)]);
    await store.appendLogs(id, []);

    expect(await store.logs(id)).toStrictEqual([1, 2, 3].map((seq) => ({ seq, ...entry(seq) })));
    expect((await store.logs(id, { after: 1, limit: 1 })).map((log) => log.seq)).toStrictEqual([2]);
    expect(await store.logs(id, { after: 3 })).toStrictEqual([]);
    await expect(store.appendLogs('missing', [entry(1)])).rejects.toThrow(NotFoundError);
  });

  it('reads at most 1000 log entries unless told otherwise', async () => {
    const store = open();
    const { jobs: [job] } = await store.createExecution({ policyId: null, trigger: 'manual', jobs: jobs(1) });
    const id = job?.id ?? '';
    const entry = { at: new Date().toISOString(), level: 'debug', message: 'm', fields: {} };
    await store.appendLogs(id, Array.from({ length: 1_005 }, () => entry));
    expect(await store.logs(id)).toHaveLength(1_000);
    expect(await store.logs(id, { limit: 2_000 })).toHaveLength(1_005);
  });
});

const STORE_MODULE = fileURLToPath(new URL('./sqlite.ts', import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const CLAIMER = `
  import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
  const store = openSqliteStore(process.argv[2]);
  process.stdout.write('ready\\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  const ids = [];
  for (let job = await store.claimNextJob(); job !== undefined; job = await store.claimNextJob()) {
    ids.push(job.id);
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
  const children = Array.from({ length: count }, () => {
    const child = spawn(process.execPath, ['--import', TSX_LOADER, script, path], { stdio: ['pipe', 'pipe', 'inherit'] });
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
