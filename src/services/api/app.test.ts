import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OCI_MEDIA_TYPES, writeOciLayout } from '../../../test/support/images.js';
import { generateSigningKeys } from '../../../test/support/referrers.js';
import { ACTIVE_STATUSES, ENDED_STATUSES, EXECUTION_STATUSES, JOB_STATUSES, RETRYABLE_STATUSES } from '../../machines/status.js';
import { DEFAULT_USER, startRegistry, type RunningRegistry } from '../../../test/support/registry.js';
import { seedLayout } from '../../../test/support/skopeo.js';
import { POLICY_DEFAULTS } from '../domain/policy.js';
import { planJobs } from '../policy/plan-jobs.js';
import type { PolicyPreview } from '../policy/preview.js';
import { FerryService } from '../service.js';
import type { Execution, Job, JobLogEntry, JobStatus, Policy, Registry, Transition } from '../store/types.js';
import type { JobChange } from '../store/types.js';
import { buildApi } from './app.js';
import type { ErrorBody } from './errors.js';

const TOKEN = 'api-test-token-4f1c';
const REPOSITORY = 'app/one';

let dir: string;
let service: FerryService;
let app: FastifyInstance;
let guarded: FastifyInstance;
let source: RunningRegistry;
let destination: RunningRegistry;
let locked: RunningRegistry;
let sourceRegistry: Registry;
let destinationRegistry: Registry;
/** Every response body, to prove no password is ever in one. */
const bodies: string[] = [];

interface Answer<T> {
  status: number;
  body: T;
  headers: Record<string, unknown>;
}

async function call<T>(
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; on?: FastifyInstance } = {},
): Promise<Answer<T>> {
  const response = await (options.on ?? app).inject({
    method,
    url: path,
    ...(options.body === undefined ? {} : { payload: options.body as object }),
    ...(options.headers ? { headers: options.headers } : {}),
  });
  bodies.push(response.body);
  return { status: response.statusCode, body: (response.body ? response.json() : undefined) as T, headers: response.headers };
}

const api = <T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, options?: Parameters<typeof call>[2]) => call<T>(method, `/api/v1${path}`, options);

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await sleep(50);
  }
}

const jobStatus = async (id: string) => (await api<Job>('GET', `/jobs/${id}`)).body.status;

async function createPolicy(body: Record<string, unknown>): Promise<Policy> {
  const created = await api<Policy>('POST', '/policies', {
    body: { sourceRegistryId: sourceRegistry.id, destinationRegistryId: destinationRegistry.id, ...body },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-api-test-'));
  const layout = join(dir, 'layout');
  [, source, destination, locked] = await Promise.all([
    writeOciLayout(layout, { v1: { layers: [{ size: 4096, seed: 'api-test' }] } }),
    startRegistry(),
    startRegistry(),
    startRegistry({ auth: 'htpasswd' }),
  ]);
  await seedLayout(layout, ['v1'], { host: source.host, repository: REPOSITORY });
  service = await FerryService.start({ database: join(dir, 'ferry.db'), workers: 2, logger: pino({ level: 'silent' }) });
  app = await buildApi(service, {});
  guarded = await buildApi(service, { token: TOKEN });
  sourceRegistry = (await api<Registry>('POST', '/registries', { body: { name: 'source', url: source.host } })).body;
  destinationRegistry = (await api<Registry>('POST', '/registries', { body: { name: 'destination', url: destination.host } })).body;
});

afterAll(async () => {
  await app?.close();
  await guarded?.close();
  await service?.close();
  await Promise.all([source, destination, locked].map((registry) => registry?.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('health', () => {
  it('answers outside /api/v1 with the running job count', async () => {
    const health = await call<{ status: string; running: number }>('GET', '/healthz');
    expect(health).toMatchObject({ status: 200, body: { status: 'ok', running: 0 } });
  });
});

describe('registries', () => {
  it('round-trips create, read, list, update and delete', async () => {
    const created = await api<Registry>('POST', '/registries', {
      body: { name: 'locked', url: locked.host, credentials: DEFAULT_USER, ca: null },
    });
    expect(created).toMatchObject({ status: 201, body: { name: 'locked', url: locked.host, insecure: false, hasCredentials: true, username: DEFAULT_USER.username } });
    const { id } = created.body;

    expect((await api<Registry>('GET', `/registries/${id}`)).body).toEqual(created.body);
    expect((await api<{ items: Registry[] }>('GET', '/registries')).body.items.map((r) => r.name)).toEqual(['destination', 'locked', 'source']);

    const renamed = await api<Registry>('PATCH', `/registries/${id}`, { body: { name: 'locked-renamed' } });
    expect(renamed).toMatchObject({ status: 200, body: { id, name: 'locked-renamed', hasCredentials: true } });

    expect(await api('DELETE', `/registries/${id}`)).toMatchObject({ status: 204 });
    expect(await api<ErrorBody>('GET', `/registries/${id}`)).toMatchObject({ status: 404, body: { error: 'Not Found', message: `no registry ${id}` } });
  });

  it('pings with the stored credentials, and reconnects when they change', async () => {
    const { id } = (await api<Registry>('POST', '/registries', { body: { name: 'pinged', url: locked.host, credentials: DEFAULT_USER } })).body;
    expect(await api('POST', `/registries/${id}/ping`)).toMatchObject({ status: 200, body: { ok: true } });

    const forget = vi.spyOn(service.registries, 'forget');
    await api('PATCH', `/registries/${id}`, { body: { name: 'pinged-again' } });
    expect(forget).not.toHaveBeenCalled();
    await api('PATCH', `/registries/${id}`, { body: { credentials: { username: DEFAULT_USER.username, password: 'not-the-password' } } });
    expect(forget).toHaveBeenCalledWith(locked.host);
    forget.mockRestore();

    const refused = await api<ErrorBody>('POST', `/registries/${id}/ping`);
    expect(refused.status).toBe(502);
    expect(refused.body.error).toBe('Bad Gateway');
    expect(refused.body.message).toMatch(/401|unauthori[sz]ed|denied|credentials/i);
    await api('DELETE', `/registries/${id}`);
  });

  it('takes a credential helper in place of credentials, showing its name', async () => {
    const created = await api<Registry>('POST', '/registries', { body: { name: 'helped', url: 'ecr.example.com', credentials: DEFAULT_USER } });
    expect(created).toMatchObject({ status: 201, body: { hasCredentials: true, credentialHelper: null } });
    const { id } = created.body;
    const helped = await api<Registry>('PATCH', `/registries/${id}`, { body: { credentialHelper: 'ecr-login' } });
    expect(helped).toMatchObject({ status: 200, body: { credentialHelper: 'ecr-login', hasCredentials: false, username: null } });
    expect((await api<Registry>('GET', `/registries/${id}`)).body).toEqual(helped.body);
    const both = await api<ErrorBody>('PATCH', `/registries/${id}`, { body: { credentialHelper: 'gcr', credentials: DEFAULT_USER } });
    expect(both).toMatchObject({ status: 400, body: { field: 'body.credentialHelper', message: expect.stringMatching(/cannot be given with credentials/) } });
    await api('DELETE', `/registries/${id}`);
  });

  it("keeps a registry's ceiling of requests per second, reconnects with it, and shows its budget", async () => {
    const forget = vi.spyOn(service.registries, 'forget');
    const paced = await api<Registry>('PATCH', `/registries/${sourceRegistry.id}`, { body: { requestsPerSecond: 50 } });
    expect(paced).toMatchObject({ status: 200, body: { requestsPerSecond: 50 } });
    expect(forget).toHaveBeenCalledWith(source.host);
    forget.mockRestore();
    expect(await api('POST', `/registries/${sourceRegistry.id}/ping`)).toMatchObject({ status: 200 });
    expect(await api('GET', `/registries/${sourceRegistry.id}/budget`)).toStrictEqual({
      status: 200,
      body: { requestsPerSecond: 50, rate: 50, pausedUntil: null, pulls: null, waiting: 0 },
      headers: expect.anything(),
    });
    expect((await api<Registry>('PATCH', `/registries/${sourceRegistry.id}`, { body: { requestsPerSecond: null } })).body.requestsPerSecond).toBeNull();
    expect(await api('GET', '/registries/nope/budget')).toMatchObject({ status: 404, body: { message: 'no registry nope' } });
  });

  it('refuses a second registry with the URL of another', async () => {
    expect(await api<ErrorBody>('POST', '/registries', { body: { name: 'again', url: source.host } })).toMatchObject({
      status: 409,
      body: { error: 'Conflict', message: `registry source already has URL ${source.host}` },
    });
  });

  it('refuses a name another registry has', async () => {
    expect(await api('POST', '/registries', { body: { name: 'source', url: 'other.example.com' } })).toMatchObject({ status: 409 });
  });

  it('refuses to delete a registry a policy uses', async () => {
    const policy = await createPolicy({ name: 'uses-source' });
    expect(await api<ErrorBody>('DELETE', `/registries/${sourceRegistry.id}`)).toMatchObject({
      status: 409,
      body: { error: 'Conflict', message: 'registry source is used by policy uses-source' },
    });
    expect(await api('DELETE', `/policies/${policy.id}`)).toMatchObject({ status: 204 });
  });
});

describe('validation', () => {
  type Case = { what: string; method: 'GET' | 'POST' | 'PATCH'; path: () => string; body?: () => unknown; field: string };
  /** A new policy between the test registries, with the settings given. */
  const policyCase = (what: string, settings: object, field: string): Case => ({
    what,
    method: 'POST',
    path: () => '/policies',
    body: () => ({ name: 'p', sourceRegistryId: sourceRegistry.id, destinationRegistryId: destinationRegistry.id, ...settings }),
    field,
  });
  const cases: Case[] = [
    { what: 'a URL that is not a registry host', method: 'POST', path: () => '/registries', body: () => ({ name: 'x', url: 'https://x.io/v2' }), field: 'body.url' },
    { what: 'a missing required field', method: 'POST', path: () => '/registries', body: () => ({ name: 'x' }), field: 'body.url' },
    { what: 'an unknown field', method: 'POST', path: () => '/registries', body: () => ({ name: 'x', url: 'x.io', tls: true }), field: 'body.tls' },
    { what: 'credentials without a password', method: 'PATCH', path: () => `/registries/${sourceRegistry.id}`, body: () => ({ credentials: { username: 'u' } }), field: 'body.credentials.password' },
    { what: 'a CA that holds no certificate', method: 'POST', path: () => '/registries', body: () => ({ name: 'x', url: 'x.io', ca: 'trust me' }), field: 'body.ca' },
    { what: 'a rate of nothing', method: 'PATCH', path: () => `/registries/${sourceRegistry.id}`, body: () => ({ requestsPerSecond: 0 }), field: 'body.requestsPerSecond' },
    { what: 'a username with a colon', method: 'POST', path: () => '/registries', body: () => ({ name: 'x', url: 'x.io', credentials: { username: 'a:b', password: 'p' } }), field: 'body.credentials.username' },
    { what: 'a credential helper given as a path', method: 'POST', path: () => '/registries', body: () => ({ name: 'x', url: 'x.io', credentialHelper: '/bin/sh' }), field: 'body.credentialHelper' },
    { what: 'a negative limit', method: 'GET', path: () => '/jobs?limit=-1', field: 'querystring.limit' },
    { what: 'an unknown status', method: 'GET', path: () => '/executions?status=lost', field: 'querystring.status' },
    policyCase('a schedule that is not cron', { trigger: { type: 'cron', schedule: 'every day' } }, 'body.trigger.schedule'),
    policyCase('a cron trigger without a schedule', { trigger: { type: 'cron' } }, 'body.trigger.schedule'),
    policyCase('an unknown registry', { destinationRegistryId: 'no-such-registry' }, 'body.destinationRegistryId'),
    policyCase('a platform that is not os/arch', { platforms: ['linux/amd64', 'amd64'] }, 'body.platforms.1'),
    policyCase('a platform listed twice', { platforms: ['linux/amd64', 'linux/amd64'] }, 'body.platforms.1'),
    policyCase('a tag filter that is not a regular expression', { tags: { include: ['v('], syntax: 'regex' } }, 'body.tags.include.0'),
    policyCase('a semver range that is none', { tags: { semver: { range: '>=1.2 <' } } }, 'body.tags.semver.range'),
    policyCase('a semver filter without a range', { tags: { semver: { includePrerelease: true } } }, 'body.tags.semver.range'),
    policyCase('the latest 0', { tags: { latest: { count: 0 } } }, 'body.tags.latest.count'),
    policyCase('latest by an unknown order', { tags: { latest: { count: 3, by: 'name' } } }, 'body.tags.latest.by'),
    policyCase('a namespace that is not a repository path', { rewrite: { namespace: 'Mirror', flatten: 0 } }, 'body.rewrite.namespace'),
    policyCase('a bandwidth of nothing', { bandwidthKiBps: 0 }, 'body.bandwidthKiBps'),
    policyCase('referrers neither all, none nor a list', { referrers: 'some' }, 'body.referrers'),
    policyCase('one referrer type not in a list', { referrers: 'application/spdx+json' }, 'body.referrers'),
    policyCase('a referrer type that is no media type', { referrers: ['application/spdx+json', 'sbom'] }, 'body.referrers.1'),
    policyCase('an empty list of referrer types', { referrers: [] }, 'body.referrers'),
    policyCase('a signature requirement without a key', { requireSignature: { source: 'cosign.pub' } }, 'body.requireSignature.key'),
    policyCase('a signing key that is no key', { requireSignature: { key: 'not a key' } }, 'body.requireSignature'),
  ];

  it.each(cases)('answers 400 naming the field for $what', async ({ method, path, body, field }) => {
    const answer = await api<ErrorBody>(method, path(), body ? { body: body() } : {});
    expect(answer.status, JSON.stringify(answer.body)).toBe(400);
    expect(answer.body).toMatchObject({ error: 'Bad Request', field });
    expect(answer.body.message).toContain(field);
  });

  it('answers 404 for unknown ids and routes', async () => {
    expect((await api<ErrorBody>('GET', '/jobs/nope')).body).toEqual({ error: 'Not Found', message: 'no job nope' });
    expect(await api('GET', '/policies/nope')).toMatchObject({ status: 404, body: { message: 'no policy nope' } });
    expect(await api('POST', '/executions/nope/stop')).toMatchObject({ status: 404, body: { message: 'no execution nope' } });
    expect(await api('GET', '/jobs/nope/logs')).toMatchObject({ status: 404 });
    expect(await api('GET', '/nothing-here')).toMatchObject({ status: 404, body: { error: 'Not Found' } });
  });
});

describe('policies', () => {
  it('round-trips create, read, update and delete, reloading the schedules each time', async () => {
    const reload = vi.spyOn(service.scheduler, 'reload');
    const created = await createPolicy({ name: 'nightly', trigger: { type: 'cron', schedule: '0 3 * * *' }, platforms: ['linux/arm64/v8'], tags: { include: ['v*'] } });
    expect(created).toMatchObject({
      name: 'nightly',
      enabled: true,
      trigger: { type: 'cron', schedule: '0 3 * * *' },
      platforms: ['linux/arm64/v8'],
      tags: { include: ['v*'], exclude: [], syntax: 'glob' },
    });
    expect((await api<Policy>('GET', `/policies/${created.id}`)).body).toEqual(created);
    expect((await api<{ items: Policy[] }>('GET', '/policies')).body.items.map((p) => p.name)).toContain('nightly');

    const updated = await api<Policy>('PATCH', `/policies/${created.id}`, { body: { enabled: false, trigger: { type: 'manual' } } });
    expect(updated).toMatchObject({ status: 200, body: { enabled: false, trigger: { type: 'manual' }, platforms: ['linux/arm64/v8'] } });
    expect(await api<ErrorBody>('POST', `/policies/${created.id}/trigger`)).toMatchObject({ status: 409, body: { message: 'policy nightly is disabled' } });

    expect(await api('DELETE', `/policies/${created.id}`)).toMatchObject({ status: 204 });
    expect(await api('DELETE', `/policies/${created.id}`)).toMatchObject({ status: 404 });
    expect(reload).toHaveBeenCalledTimes(3);
    reload.mockRestore();
  });

  it('keeps a semver range and latest N, filling in their defaults, and a change of tags replaces them', async () => {
    const created = await createPolicy({ name: 'versions', tags: { semver: { range: '>=1.2 <2' }, latest: { count: 3 } } });
    expect(created.tags).toEqual({ include: [], exclude: [], syntax: 'glob', semver: { range: '>=1.2 <2', includePrerelease: false }, latest: { count: 3, by: 'semver' } });
    expect((await api<Policy>('GET', `/policies/${created.id}`)).body).toEqual(created);

    const byCreation = { include: ['v*'], exclude: [], syntax: 'glob', semver: { range: '^3', includePrerelease: true }, latest: { count: 2, by: 'created' } };
    expect(await api<Policy>('PATCH', `/policies/${created.id}`, { body: { tags: byCreation } })).toMatchObject({ status: 200, body: { tags: byCreation } });
    const plain = await api<Policy>('PATCH', `/policies/${created.id}`, { body: { tags: { include: ['v*'] } } });
    expect(plain.body.tags).toEqual({ include: ['v*'], exclude: [], syntax: 'glob' });
    expect(await api('DELETE', `/policies/${created.id}`)).toMatchObject({ status: 204 });
  });

  it('refuses a change that breaks a rule, and keeps the policy as it was', async () => {
    const policy = await createPolicy({ name: 'hourly', trigger: { type: 'cron', schedule: '0 * * * *' } });
    expect(await api<ErrorBody>('PATCH', `/policies/${policy.id}`, { body: { trigger: { type: 'cron', schedule: '* * *' } } })).toMatchObject({
      status: 400,
      body: { error: 'Bad Request', field: 'body.trigger.schedule', message: expect.stringMatching(/^body\.trigger\.schedule "\* \* \*" is not a cron schedule: /) },
    });
    expect((await api<Policy>('GET', `/policies/${policy.id}`)).body).toEqual(policy);
    expect(await api('DELETE', `/policies/${policy.id}`)).toMatchObject({ status: 204 });
  });

  it('keeps the referrers chosen and the signing key, which null removes; a key given alone is named after the policy', async () => {
    const key = generateSigningKeys().publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const created = await createPolicy({ name: 'signed', referrers: ['application/spdx+json'], requireSignature: { key } });
    expect(created).toMatchObject({ referrers: ['application/spdx+json'], requireSignature: { key, source: 'the key of policy signed' } });
    expect((await api<Policy>('GET', `/policies/${created.id}`)).body).toEqual(created);

    const fromFile = await api<Policy>('PATCH', `/policies/${created.id}`, { body: { referrers: 'none', requireSignature: { key, source: 'cosign.pub' } } });
    expect(fromFile).toMatchObject({ status: 200, body: { referrers: 'none', requireSignature: { key, source: 'cosign.pub' } } });
    const renamed = await api<Policy>('PATCH', `/policies/${created.id}`, { body: { name: 'still-signed', requireSignature: { key } } });
    expect(renamed.body.requireSignature).toEqual({ key, source: 'the key of policy still-signed' });
    expect(await api<ErrorBody>('PATCH', `/policies/${created.id}`, { body: { requireSignature: { key: 'not a key' } } })).toMatchObject({
      status: 400,
      body: { field: 'body.requireSignature', message: expect.stringMatching(/^body\.requireSignature the key of policy still-signed is not a PEM public key: /) },
    });
    expect(await api<Policy>('PATCH', `/policies/${created.id}`, { body: { requireSignature: null } })).toMatchObject({ status: 200, body: { referrers: 'none', requireSignature: null } });
    expect(await api<ErrorBody>('PATCH', '/policies/nope', { body: { requireSignature: { key } } })).toMatchObject({ status: 404 });
    expect(await api('DELETE', `/policies/${created.id}`)).toMatchObject({ status: 204 });
  });

  it('refuses a schedule on a trigger that is not cron', async () => {
    const { body } = await api<ErrorBody>('POST', '/policies', {
      body: { name: 'p', sourceRegistryId: sourceRegistry.id, destinationRegistryId: destinationRegistry.id, trigger: { type: 'event', schedule: '* * * * *' } },
    });
    expect(body.field).toBe('body.trigger.schedule');
  });

  it('previews a policy draft as a bounded dry run: the tags its filters select, the bytes missing, nothing written', async () => {
    const links = { sourceRegistryId: sourceRegistry.id, destinationRegistryId: destinationRegistry.id, rewrite: { namespace: 'preview', flatten: 0 } };
    const target = `http://${destination.host}/v2/preview/${REPOSITORY}/tags/list`;
    const { status, body } = await api<PolicyPreview>('POST', '/policies/preview', { body: { ...links, repositories: { include: [REPOSITORY] } } });
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ repositoriesSelected: 1, bounds: { repositories: 10 } });
    const [repository] = body.repositories;
    expect(repository).toMatchObject({ source: `${source.host}/${REPOSITORY}`, destination: `${destination.host}/preview/${REPOSITORY}`, listed: 1, selected: ['v1'], unchanged: [] });
    expect(repository!.toCopy).toEqual([{ tag: 'v1', bytes: expect.any(Number) }]);
    expect(repository!.bytes).toBeGreaterThan(4096);
    expect(body.bytes).toBe(repository!.bytes);
    expect(repository!.error).toBeUndefined();
    expect((await fetch(target)).status).toBe(404);

    const none = await api<PolicyPreview>('POST', '/policies/preview', { body: { ...links, tags: { include: ['v2*'] } } });
    expect(none.body.repositories.find((r) => r.source.endsWith(REPOSITORY))).toMatchObject({ listed: 1, selected: [], leftOut: { pattern: 1 }, toCopy: [], bytes: 0 });
  });

  it('refuses a preview that breaks a rule, naming the field', async () => {
    const links = { sourceRegistryId: sourceRegistry.id, destinationRegistryId: destinationRegistry.id };
    expect(await api<ErrorBody>('POST', '/policies/preview', { body: { ...links, tags: { include: ['('], syntax: 'regex' } } })).toMatchObject({ status: 400, body: { field: 'body.tags.include.0' } });
    expect(await api<ErrorBody>('POST', '/policies/preview', { body: { ...links, sourceRegistryId: 'nope' } })).toMatchObject({ status: 400, body: { field: 'body.sourceRegistryId' } });
  });
});

describe('jobs and executions', () => {
  let policy: Policy;

  beforeAll(async () => {
    policy = await createPolicy({ name: 'copy-all' });
  });

  it('stops and retries jobs, answering 409 where the status does not allow it', async () => {
    // Created in the store directly, nothing wakes the pool: the job stays pending until stopped.
    const jobs = await planJobs(policy, sourceRegistry, destinationRegistry, service.registries, { kind: 'push', repository: 'missing/app', tag: 'v1' });
    const { execution, jobs: [job] } = await service.store.executions.create({ policyId: policy.id, trigger: 'manual', jobs });
    const id = job!.id;

    expect(await api<ErrorBody>('POST', `/jobs/${id}/retry`)).toMatchObject({ status: 409, body: { message: `job ${id} is pending: only a failed or stopped job, or one with failed tags, can be retried` } });
    expect(await api('POST', `/executions/${execution.id}/retry`)).toMatchObject({ status: 409 });

    const stopped = await api<Execution>('POST', `/executions/${execution.id}/stop`);
    expect(stopped).toMatchObject({ status: 200, body: { status: 'stopped', jobs: { stopped: 1 } } });
    expect(await api('POST', `/jobs/${id}/stop`)).toMatchObject({ status: 409, body: { error: 'Conflict', message: `job ${id} has already ended (stopped)` } });
    expect(await api('POST', `/executions/${execution.id}/stop`)).toMatchObject({ status: 409 });

    const requeued = await api<Job>('POST', `/jobs/${id}/retry`);
    expect(requeued.status).toBe(200);
    expect(requeued.body.status).not.toBe('stopped');
    await eventually(() => jobStatus(id), (status: JobStatus) => status === 'error', 'the job on a missing repository');

    const retried = await api<Execution>('POST', `/executions/${execution.id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body.jobs.error).toBe(0);
    await eventually(() => jobStatus(id), (status: JobStatus) => status === 'error', 'the retried job');

    const detail = await api<Job & { history: Transition[] }>('GET', `/jobs/${id}`);
    expect(detail.body.history.map((t) => t.to)).toEqual(expect.arrayContaining(['pending', 'stopped']));
    expect(detail.body.history.filter((t) => t.event === 'retry')).toHaveLength(2);
    const listed = await api<{ items: Job[]; total: number }>('GET', `/jobs?executionId=${execution.id}&status=error&limit=5`);
    expect(listed.body).toMatchObject({ total: 1, items: [{ id, error: { code: expect.any(String) } }] });
  });

  it('streams the job changes of a triggered policy as server-sent events', async () => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const listeners = service.feed.subscribers;
    const stream = await request(`${address}/api/v1/events`);
    expect(stream.statusCode).toBe(200);
    expect(stream.headers['content-type']).toBe('text/event-stream');
    expect(service.feed.subscribers).toBe(listeners + 1);

    const triggered = await api<{ execution: Execution; jobs: Job[] }>('POST', `/policies/${policy.id}/trigger`);
    expect(triggered.status).toBe(201);
    expect(triggered.body.jobs.map((job) => job.destination)).toEqual([`${destination.host}/${REPOSITORY}`]);
    const jobId = triggered.body.jobs[0]!.id;

    const changes: JobChange[] = [];
    let buffer = '';
    for await (const chunk of stream.body) {
      buffer += String(chunk);
      const blocks = buffer.split('\n\n');
      buffer = blocks.pop() ?? '';
      for (const block of blocks) {
        const lines = block.split('\n');
        if (!lines.includes('event: job')) continue;
        const data = lines.find((line) => line.startsWith('data: '));
        changes.push(JSON.parse(data!.slice('data: '.length)) as JobChange);
      }
      if (changes.some((change) => change.jobId === jobId && change.status === 'finished')) break;
    }
    stream.body.destroy();
    expect(changes.filter((c) => c.jobId === jobId).map((c) => c.status)).toContain('running');
    await eventually(async () => service.feed.subscribers, (count) => count === listeners, 'the stream listener');

    const execution = await api<Execution>('GET', `/executions/${triggered.body.execution.id}`);
    expect(execution.body).toMatchObject({ status: 'finished', trigger: 'manual', jobs: { finished: 1 } });
    expect(await api<ErrorBody>('POST', `/jobs/${jobId}/stop`)).toMatchObject({ status: 409 });
    expect(await api<ErrorBody>('POST', `/jobs/${jobId}/retry`)).toMatchObject({ status: 409 });
    expect(await api<ErrorBody>('POST', `/executions/${execution.body.id}/stop`)).toMatchObject({
      status: 409,
      body: { message: `execution ${execution.body.id} has already ended (finished)` },
    });
    expect(await api('POST', `/executions/${execution.body.id}/retry`)).toMatchObject({ status: 409 });

    const logs = await api<JobLogEntry[]>('GET', `/jobs/${jobId}/logs`);
    expect(logs.body.length).toBeGreaterThan(1);
    const rest = await api<JobLogEntry[]>('GET', `/jobs/${jobId}/logs?after=${logs.body[0]!.seq}&limit=1`);
    expect(rest.body).toEqual([logs.body[1]]);

    const listed = await api<{ items: Execution[]; total: number }>('GET', `/executions?policyId=${policy.id}&status=finished&limit=1&offset=0`);
    expect(listed.body.items.map((e) => e.id)).toEqual([execution.body.id]);
  });

  it('ends open event streams when the server closes', async () => {
    const own = await buildApi(service, {});
    const address = await own.listen({ port: 0, host: '127.0.0.1' });
    const stream = await request(`${address}/api/v1/events`);
    const ended = stream.body.text();
    await own.close();
    expect(await ended).toBe(': connected\n\n');
  });

  it('starts the event-triggered policies of a registry on its notifications', async () => {
    const onPush = await createPolicy({ name: 'on-push', trigger: { type: 'event' } });
    const envelope = { events: [{ id: 'e1', action: 'push', target: { mediaType: OCI_MEDIA_TYPES.manifest, repository: REPOSITORY, tag: 'v1', size: 1 } }] };
    const headers = { 'content-type': 'application/vnd.docker.distribution.events.v1+json' };

    const answer = await api<{ executions: string[] }>('POST', `/webhooks/registries/${sourceRegistry.id}`, { body: JSON.stringify(envelope), headers });
    expect(answer.status).toBe(202);
    expect(answer.body.executions).toHaveLength(1);
    const execution = await api<Execution>('GET', `/executions/${answer.body.executions[0]}`);
    expect(execution.body).toMatchObject({ policyId: onPush.id, trigger: 'event' });

    const pulls = { events: [{ action: 'pull', target: { repository: REPOSITORY, tag: 'v1' } }] };
    expect((await api<{ executions: string[] }>('POST', `/webhooks/registries/${sourceRegistry.id}`, { body: pulls })).body.executions).toEqual([]);
    expect(await api('POST', '/webhooks/registries/nope', { body: JSON.stringify(envelope), headers })).toMatchObject({ status: 404 });
    expect(await api('POST', `/webhooks/registries/${sourceRegistry.id}`, { body: { event: [] } })).toMatchObject({ status: 400, body: { field: 'body.events' } });
  });
});

describe('paging, Location and content types', () => {
  it.each(['/registries', '/policies', '/nodes', '/jobs', '/executions'])('pages %s: items and the total, limit and offset', async (path) => {
    const all = await api<{ items: Array<{ id: string }>; total: number }>('GET', path);
    expect(all.status).toBe(200);
    expect(all.body.total).toBeGreaterThanOrEqual(1);
    const first = await api<{ items: Array<{ id: string }>; total: number }>('GET', `${path}?limit=1`);
    expect(first.body).toMatchObject({ total: all.body.total, items: [{ id: all.body.items[0]!.id }] });
    const past = await api<{ items: unknown[]; total: number }>('GET', `${path}?offset=${all.body.total}`);
    expect(past.body).toStrictEqual({ ...(path === '/nodes' ? { self: service.node } : {}), items: [], total: all.body.total });
    expect(await api('GET', `${path}?limit=1001`)).toMatchObject({ status: 400 });
  });

  it('gives 100 at most when no limit is asked', async () => {
    for (let index = 0; index < 101; index++) await service.store.executions.create({ policyId: null, trigger: 'manual', jobs: [] });
    const page = await api<{ items: unknown[]; total: number }>('GET', '/executions');
    expect(page.body.items).toHaveLength(100);
    expect(page.body.total).toBeGreaterThanOrEqual(101);
  });

  it('says where each created resource is', async () => {
    const registry = await api<Registry>('POST', '/registries', { body: { name: 'located', url: 'located.example.com' } });
    expect(registry).toMatchObject({ status: 201, headers: { location: `/api/v1/registries/${registry.body.id}` } });
    expect((await call<Registry>('GET', registry.headers['location'] as string)).body).toStrictEqual(registry.body);

    const policy = await api<Policy>('POST', '/policies', { body: { name: 'located', sourceRegistryId: sourceRegistry.id, destinationRegistryId: registry.body.id } });
    expect(policy).toMatchObject({ status: 201, headers: { location: `/api/v1/policies/${policy.body.id}` } });
    expect((await call<Policy>('GET', policy.headers['location'] as string)).body).toStrictEqual(policy.body);

    const run = await api<{ execution: Execution }>('POST', `/policies/${policy.body.id}/trigger`);
    expect(run).toMatchObject({ status: 201, headers: { location: `/api/v1/executions/${run.body.execution.id}` } });
    expect((await call<Execution>('GET', run.headers['location'] as string)).body).toMatchObject({ id: run.body.execution.id });
    await eventually(() => api<Execution>('GET', `/executions/${run.body.execution.id}`), ({ body }) => body.finishedAt !== null, 'the triggered run');
    expect(await api('DELETE', `/policies/${policy.body.id}`)).toMatchObject({ status: 204 });
  });

  it('answers 415 to a body that is not JSON', async () => {
    const headers = { 'content-type': 'text/plain' };
    const answer = await api<ErrorBody>('POST', '/registries', { body: 'name=plain&url=plain.example.com', headers });
    expect(answer).toMatchObject({ status: 415, body: { error: 'Unsupported Media Type' } });
    expect((await api<{ items: Registry[] }>('GET', '/registries?limit=1000')).body.items.map((r) => r.name)).not.toContain('plain');
    expect(await api('PATCH', `/registries/${sourceRegistry.id}`, { body: '<name>x</name>', headers: { 'content-type': 'application/xml' } })).toMatchObject({ status: 415 });
  });

  it('refuses to delete a policy whose executions are under way, unless asked to stop them', async () => {
    const busy = await createPolicy({ name: 'busy' });
    // Created in the store directly, nothing wakes the pool: the job stays pending.
    const jobs = await planJobs(busy, sourceRegistry, destinationRegistry, service.registries, { kind: 'push', repository: 'missing/busy', tag: 'v1' });
    const { execution } = await service.store.executions.create({ policyId: busy.id, trigger: 'manual', jobs });

    expect(await api<ErrorBody>('DELETE', `/policies/${busy.id}`)).toMatchObject({
      status: 409,
      body: { message: 'policy busy has 1 execution(s) under way: stop them, or delete it with stop=true' },
    });
    expect(await api('GET', `/policies/${busy.id}`)).toMatchObject({ status: 200 });
    expect(await api('DELETE', `/policies/${busy.id}?stop=true`)).toMatchObject({ status: 204 });
    expect(await api('GET', `/policies/${busy.id}`)).toMatchObject({ status: 404 });
    expect(await api<Execution>('GET', `/executions/${execution.id}`)).toMatchObject({ body: { status: 'stopped', policyId: null } });
  });
});

describe('vocabulary', () => {
  it('serves the statuses the machines define, the ones the OpenAPI schemas enumerate', async () => {
    const { status, body } = await api<Record<string, unknown>>('GET', '/vocabulary');
    expect(status).toBe(200);
    expect(body).toEqual({
      jobStatuses: JOB_STATUSES,
      executionStatuses: EXECUTION_STATUSES,
      active: [...ACTIVE_STATUSES],
      retryable: [...RETRYABLE_STATUSES],
      ended: [...ENDED_STATUSES],
      policyDefaults: POLICY_DEFAULTS,
    });
    const schemas = (await api<{ components: { schemas: Record<string, { properties: { status: { enum: string[] } } }> } }>('GET', '/openapi.json')).body.components.schemas;
    expect(schemas['Job']?.properties.status.enum).toEqual(body.jobStatuses);
    expect(schemas['Execution']?.properties.status.enum).toEqual(body.executionStatuses);
  });
});

describe('auth', () => {
  it('requires the bearer token on every /api/v1 route when one is set', async () => {
    const missing = await call<ErrorBody>('GET', '/api/v1/registries', { on: guarded });
    expect(missing).toMatchObject({ status: 401, body: { error: 'Unauthorized' }, headers: { 'www-authenticate': 'Bearer realm="ferry"' } });
    for (const path of ['/api/v1/registries', '/api/v1/openapi.json', '/api/v1/events']) {
      expect(await call('GET', path, { on: guarded, headers: { authorization: 'Bearer wrong' } })).toMatchObject({ status: 401 });
    }
    expect(await call('POST', `/api/v1/webhooks/registries/${sourceRegistry.id}`, { on: guarded, body: { events: [] } })).toMatchObject({ status: 401 });
    expect(await call('GET', '/api/v1/registries', { on: guarded, headers: { authorization: `Bearer ${TOKEN}` } })).toMatchObject({ status: 200 });
    expect(await call('GET', '/healthz', { on: guarded })).toMatchObject({ status: 200 });
  });

  it('requires nothing when no token is set', async () => {
    expect(await api('GET', '/registries', { headers: { authorization: 'Bearer anything' } })).toMatchObject({ status: 200 });
  });
});

describe('OpenAPI', () => {
  it('documents every route', async () => {
    const { status, body } = await api<{ openapi: string; paths: Record<string, Record<string, { tags?: string[] }>>; components: { schemas: Record<string, { properties: object }> } }>('GET', '/openapi.json');
    expect(status).toBe(200);
    const documented = Object.entries(body.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual(
      [
        'GET /healthz',
        'GET /metrics',
        'GET /api/v1/openapi.json',
        'GET /api/v1/vocabulary',
        'GET /api/v1/registries',
        'POST /api/v1/registries',
        'GET /api/v1/registries/{id}',
        'PATCH /api/v1/registries/{id}',
        'DELETE /api/v1/registries/{id}',
        'POST /api/v1/registries/{id}/ping',
        'GET /api/v1/registries/{id}/budget',
        'GET /api/v1/policies',
        'POST /api/v1/policies',
        'GET /api/v1/policies/{id}',
        'PATCH /api/v1/policies/{id}',
        'DELETE /api/v1/policies/{id}',
        'POST /api/v1/policies/{id}/trigger',
        'POST /api/v1/policies/preview',
        'GET /api/v1/executions',
        'GET /api/v1/executions/{id}',
        'POST /api/v1/executions/{id}/stop',
        'POST /api/v1/executions/{id}/retry',
        'GET /api/v1/jobs',
        'GET /api/v1/jobs/{id}',
        'GET /api/v1/jobs/{id}/live',
        'GET /api/v1/machines/{name}/graph',
        'GET /api/v1/nodes',
        'POST /api/v1/jobs/{id}/stop',
        'POST /api/v1/jobs/{id}/retry',
        'GET /api/v1/jobs/{id}/logs',
        'GET /api/v1/events',
        'POST /api/v1/webhooks/registries/{id}',
      ].sort(),
    );
    for (const methods of Object.values(body.paths)) for (const operation of Object.values(methods)) expect(operation.tags).toHaveLength(1);
    expect(Object.keys(body.components.schemas)).toEqual(expect.arrayContaining(['Registry', 'RegistryBudget', 'Policy', 'Execution', 'Job', 'Transition', 'JobLogEntry', 'Error']));
    expect(Object.keys(body.components.schemas['Registry']!.properties)).not.toContain('password');
  });
});

describe('secrets', () => {
  it('never puts a password in a response', () => {
    expect(bodies.length).toBeGreaterThan(50);
    for (const body of bodies) {
      expect(body).not.toContain(DEFAULT_USER.password);
      expect(body).not.toContain('not-the-password');
    }
  });
});
