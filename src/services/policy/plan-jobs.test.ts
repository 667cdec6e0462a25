import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from '../../../test/support/fault-proxy.js';
import type { FaultProxy } from '../../../test/support/fault-proxy.js';
import { writeOciLayout } from '../../../test/support/images.js';
import { startRegistry } from '../../../test/support/registry.js';
import type { RunningRegistry } from '../../../test/support/registry.js';
import { seedTag } from '../../../test/support/skopeo.js';
import type { DeletionInput } from '../../machines/deletion.js';
import type { ReplicationInput } from '../../machines/replication.js';
import { DEFAULT_RETRY } from '../../machines/retry.js';
import { RegistryError } from '../registry/errors.js';
import { Registries } from '../registry/registries.js';
import type { NewJob, Policy, Registry, TagFilter } from '../store/types.js';
import { planJobs } from './plan-jobs.js';
import { previewPolicy } from './preview.js';

const SEEDED = ['other/x', 'team/a', 'team/b/c'];
const DESTINATION = 'mirror.example.com';

let layout: string;
let source: RunningRegistry;
let proxy: FaultProxy;
let registries: Registries;

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-plan-jobs-test-'));
  [, source] = await Promise.all([writeOciLayout(layout, { v1: { layers: [{ size: 128, seed: 'plan' }] } }), startRegistry()]);
  await Promise.all(SEEDED.map((repository) => seedTag(layout, 'v1', { host: source.host, repository })));
  proxy = await startFaultProxy(source.host);
  registries = new Registries(async (registry) => ({ registry }));
});

afterAll(async () => {
  await registries?.close();
  await proxy?.stop();
  await source?.stop();
  await rm(layout, { recursive: true, force: true });
});

function registry(url: string): Registry {
  return {
    id: `id-${url}`,
    name: url,
    url,
    insecure: false,
    ca: null,
    hasCredentials: false,
    username: null,
    credentialHelper: null,
    requestsPerSecond: null,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
  };
}

function policy(overrides: Partial<Policy> = {}): Policy {
  return {
    id: 'policy-1',
    name: 'mirror team',
    enabled: true,
    sourceRegistryId: 'source',
    destinationRegistryId: 'destination',
    repositories: { include: [], exclude: [] },
    tags: { include: [], exclude: [], syntax: 'glob' },
    rewrite: { namespace: null, flatten: 0 },
    override: true,
    platforms: [],
    replicateDeletions: false,
    bandwidthKiBps: null,
    trigger: { type: 'manual' },
    priority: 0,
    referrers: 'all',
    requireSignature: null,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    ...overrides,
  };
}

/** A Registries that fails the test if a plan connects anywhere: events need no listing. */
const offline = new Registries(async (name) => {
  throw new Error(`unexpected connection to ${name}`);
});

const destinations = (jobs: NewJob[]): string[] => jobs.map((job) => job.destination);

const versions = (selection: Pick<TagFilter, 'semver' | 'latest'>): TagFilter => ({ include: [], exclude: [], syntax: 'glob', ...selection });

describe('planJobs for every repository', () => {
  const all = { kind: 'all' } as const;

  it('plans one copy job per repository of the source, without items, in order', async () => {
    const chosen = policy({
      tags: { include: ['v*'], exclude: [], syntax: 'glob' },
      platforms: ['linux/amd64'],
      override: false,
      bandwidthKiBps: 512,
      priority: 3,
    });
    const jobs = await planJobs(chosen, registry(source.host), registry(DESTINATION), registries, all);
    expect(destinations(jobs)).toEqual(SEEDED.map((repository) => `${DESTINATION}/${repository}`));
    expect(jobs[2]).toEqual<NewJob>({
      operation: 'copy',
      source: `${source.host}/team/b/c`,
      destination: `${DESTINATION}/team/b/c`,
      priority: 3,
      input: {
        source: { registry: source.host, repository: 'team/b/c' },
        destination: { registry: DESTINATION, repository: 'team/b/c' },
        tagFilter: { include: ['v*'], exclude: [], syntax: 'glob' },
        platforms: ['linux/amd64'],
        override: false,
        bandwidthKiBps: 512,
        batchSize: 4,
        batchesInFlight: 16,
        blobConcurrency: 8,
        retry: DEFAULT_RETRY,
        dryRun: false,
        referrers: 'all',
      } satisfies ReplicationInput,
    });
  });

  it.each<[string, Policy['repositories'], string[]]>([
    ['"**" crosses "/"', { include: ['team/**'], exclude: [] }, ['team/a', 'team/b/c']],
    ['"*" stays within one component', { include: ['team/*'], exclude: [] }, ['team/a']],
    ['excludes win over includes', { include: ['**'], exclude: ['team/b/**'] }, ['other/x', 'team/a']],
    ['several includes', { include: ['other/x', 'team/a'], exclude: [] }, ['other/x', 'team/a']],
    ['nothing selected', { include: ['nope/**'], exclude: [] }, []],
  ])('selects repositories with globs: %s', async (_name, repositories, expected) => {
    const jobs = await planJobs(policy({ repositories }), registry(source.host), registry(DESTINATION), registries, all);
    expect(jobs.map((job) => (job.input as ReplicationInput).source.repository)).toEqual(expected);
  });

  it('rewrites destination repositories with the policy namespace and flattening', async () => {
    const chosen = policy({ repositories: { include: ['team/**'], exclude: [] }, rewrite: { namespace: 'mirror', flatten: 1 } });
    const jobs = await planJobs(chosen, registry(source.host), registry(DESTINATION), registries, all);
    expect(destinations(jobs)).toEqual([`${DESTINATION}/mirror/a`, `${DESTINATION}/mirror/b/c`]);
    expect(jobs.map((job) => (job.input as ReplicationInput).destination)).toEqual([
      { registry: DESTINATION, repository: 'mirror/a' },
      { registry: DESTINATION, repository: 'mirror/b/c' },
    ]);
    expect(jobs.map((job) => job.source)).toEqual([`${source.host}/team/a`, `${source.host}/team/b/c`]);
  });

  it('sorts repositories a registry lists out of order', async () => {
    proxy.addRule({
      method: 'GET',
      path: /^\/v2\/_catalog/,
      fault: { type: 'status', status: 200, body: JSON.stringify({ repositories: ['team/b/c', 'other/x', 'team/a'] }) },
      times: 1,
    });
    const jobs = await planJobs(policy(), registry(proxy.host), registry(DESTINATION), registries, all);
    expect(destinations(jobs)).toEqual(SEEDED.map((repository) => `${DESTINATION}/${repository}`));
  });

  it('fails with the catalog error when the source cannot list its repositories', async () => {
    proxy.addRule({ method: 'GET', path: /^\/v2\/_catalog/, fault: { type: 'status', status: 503 }, times: 1 });
    const error = await planJobs(policy(), registry(proxy.host), registry(DESTINATION), registries, all).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toMatchObject({ code: 'SERVER_ERROR', message: `list repositories of ${proxy.host}: 503` });
  });
});

describe('planJobs for a pushed tag', () => {
  const push = { kind: 'push', repository: 'team/b/c', tag: 'v1.2' } as const;

  it('plans one copy job for the tag, rewritten', async () => {
    const chosen = policy({ rewrite: { namespace: 'mirror', flatten: -1 }, priority: 7 });
    const jobs = await planJobs(chosen, registry('src.example.com'), registry(DESTINATION), offline, push);
    expect(jobs).toEqual<NewJob[]>([
      {
        operation: 'copy',
        source: 'src.example.com/team/b/c',
        destination: `${DESTINATION}/mirror/c`,
        priority: 7,
        coalesceKey: 'copy mirror team team/b/c:v1.2',
        input: {
          source: { registry: 'src.example.com', repository: 'team/b/c' },
          destination: { registry: DESTINATION, repository: 'mirror/c' },
          items: [{ source: 'v1.2', target: 'v1.2' }],
          tagFilter: chosen.tags,
          platforms: [],
          override: true,
          bandwidthKiBps: null,
          batchSize: 4,
          batchesInFlight: 16,
          blobConcurrency: 8,
          retry: DEFAULT_RETRY,
          dryRun: false,
          referrers: 'all',
        } satisfies ReplicationInput,
      },
    ]);
  });

  it("gives the job the policy's referrers and the key its images must be signed with", async () => {
    const requireSignature = { key: '-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----\n', source: 'cosign.pub' };
    const chosen = policy({ referrers: ['application/spdx+json'], requireSignature });
    const [job] = await planJobs(chosen, registry('src.example.com'), registry(DESTINATION), offline, push);
    expect(job?.input).toMatchObject({ referrers: ['application/spdx+json'], requireSignature });
    const [unsigned] = await planJobs(policy({ referrers: 'none' }), registry('src.example.com'), registry(DESTINATION), offline, push);
    expect(unsigned?.input).toMatchObject({ referrers: 'none' });
    expect(unsigned?.input).not.toHaveProperty('requireSignature');
  });

  it.each<[string, Partial<Policy>]>([
    ['the repository is not included', { repositories: { include: ['other/**'], exclude: [] } }],
    ['the repository is excluded', { repositories: { include: [], exclude: ['team/**'] } }],
    ['the tag is not included', { tags: { include: ['latest'], exclude: [], syntax: 'glob' } }],
    ['the tag is excluded by a regex', { tags: { include: [], exclude: ['v1\\.\\d+'], syntax: 'regex' } }],
  ])('plans nothing when %s', async (_name, overrides) => {
    expect(await planJobs(policy(overrides), registry('src.example.com'), registry(DESTINATION), offline, push)).toEqual([]);
  });

  it.each<[string, string, TagFilter, boolean]>([
    ['a version in the range', '1.4.0', versions({ semver: { range: '>=1.2 <2' } }), true],
    ['a version outside the range', '2.1.0', versions({ semver: { range: '>=1.2 <2' } }), false],
    ['a tag that is no version', 'latest', versions({ semver: { range: '*' } }), false],
    ['a prerelease not asked for', '2.0.0-rc.1', versions({ semver: { range: '>=1.2' } }), false],
    ['a prerelease asked for', '2.0.0-rc.1', versions({ semver: { range: '>=1.2', includePrerelease: true } }), true],
  ])('honours the semver range: %s', async (_name, tag, tags, planned) => {
    const jobs = await planJobs(policy({ tags }), registry('src.example.com'), registry(DESTINATION), offline, { ...push, tag });
    expect(jobs.map((job) => (job.input as ReplicationInput).items)).toEqual(planned ? [[{ source: tag, target: tag }]] : []);
  });

  it('leaves whether a tag is among the latest N to a job over the whole repository, which lists it', async () => {
    const latest = versions({ semver: { range: '>=1' }, latest: { count: 2, by: 'semver' } });
    const [job] = await planJobs(policy({ tags: latest }), registry('src.example.com'), registry(DESTINATION), offline, { ...push, tag: '1.4.0' });
    expect(job?.input).toMatchObject({ source: { repository: 'team/b/c' }, tagFilter: latest });
    expect(job?.input).not.toHaveProperty('items');
    // Every pushed tag comes to the same job over the repository, so one pending covers them all.
    expect(job?.coalesceKey).toBe('copy mirror team team/b/c');
    // A tag the patterns or range refuse needs no listing to be refused, nor does one that is no version when ranked by semver.
    for (const [tag, tags] of [['0.9.0', latest], ['latest', versions({ latest: { count: 2, by: 'semver' } })]] as const) {
      expect(await planJobs(policy({ tags }), registry('src.example.com'), registry(DESTINATION), offline, { ...push, tag })).toEqual([]);
    }
    const byCreation = await planJobs(policy({ tags: versions({ latest: { count: 2, by: 'created' } }) }), registry('src.example.com'), registry(DESTINATION), offline, { ...push, tag: 'latest' });
    expect(byCreation).toHaveLength(1);
  });

  it('fails with INVALID_CONFIG for a tag filter that does not compile', async () => {
    const broken = policy({ tags: { include: ['('], exclude: [], syntax: 'regex' } });
    await expect(planJobs(broken, registry('src.example.com'), registry(DESTINATION), offline, push)).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });
});

describe('planJobs for a deletion', () => {
  const replicating = (overrides: Partial<Policy> = {}) => policy({ replicateDeletions: true, ...overrides });
  const plan = (chosen: Policy, scope: { repository: string; tag?: string; digest?: string }) =>
    planJobs(chosen, registry('src.example.com'), registry(DESTINATION), offline, { kind: 'delete', ...scope });
  const digest = `sha256:${'a'.repeat(64)}`;

  it('plans one delete job on the rewritten destination for a deleted tag', async () => {
    const chosen = replicating({ rewrite: { namespace: 'mirror', flatten: 1 }, priority: 2 });
    expect(await plan(chosen, { repository: 'team/b/c', tag: 'v1', digest })).toEqual<NewJob[]>([
      {
        operation: 'delete',
        source: null,
        destination: `${DESTINATION}/mirror/b/c`,
        priority: 2,
        input: {
          destination: { registry: DESTINATION, repository: 'mirror/b/c' },
          tags: ['v1'],
          tagFilter: chosen.tags,
          concurrency: 4,
          retry: DEFAULT_RETRY,
        } satisfies DeletionInput,
      },
    ]);
  });

  it('deletes by digest when the event names no tag, whatever the tag filter', async () => {
    const chosen = replicating({ tags: { include: ['release-*'], exclude: [], syntax: 'glob' } });
    const [job] = await plan(chosen, { repository: 'team/a', digest });
    expect(job?.input).toEqual<DeletionInput>({
      destination: { registry: DESTINATION, repository: 'team/a' },
      digests: [digest],
      tagFilter: chosen.tags,
      concurrency: 4,
      retry: DEFAULT_RETRY,
    });
  });

  it.each<[string, Policy, { repository: string; tag?: string; digest?: string }]>([
    ['the policy does not replicate deletions', policy(), { repository: 'team/a', tag: 'v1' }],
    ['the repository is not selected', replicating({ repositories: { include: ['other/**'], exclude: [] } }), { repository: 'team/a', tag: 'v1' }],
    ['the tag is not selected', replicating({ tags: { include: ['release-*'], exclude: [], syntax: 'glob' } }), { repository: 'team/a', tag: 'v1' }],
    ['the tag is outside the semver range', replicating({ tags: versions({ semver: { range: '^2' } }) }), { repository: 'team/a', tag: '1.2.3' }],
  ])('plans nothing when %s', async (_name, chosen, scope) => {
    expect(await plan(chosen, scope)).toEqual([]);
  });

  it('deletes a tag in the semver range whatever the latest N, which a deleted tag is no longer listed to rank in', async () => {
    const chosen = replicating({ tags: versions({ semver: { range: '>=1' }, latest: { count: 1, by: 'semver' } }) });
    const [job] = await plan(chosen, { repository: 'team/a', tag: '1.2.3' });
    expect(job?.input).toMatchObject({ tags: ['1.2.3'] });
  });

  it('fails with INVALID_REFERENCE for an event with neither tag nor digest', async () => {
    const error = await plan(replicating(), { repository: 'team/a' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toMatchObject({ code: 'INVALID_REFERENCE', message: 'deletion in team/a: the event names neither a tag nor a digest' });
  });
});

describe('previewPolicy', () => {
  let destination: RunningRegistry;
  const environment = () => ({ registries, logger: pino({ level: 'silent' }) });
  const never = new AbortController().signal;

  beforeAll(async () => {
    destination = await startRegistry();
  });

  afterAll(async () => {
    await destination?.stop();
  });

  it('previews the first repositories the filters select as dry runs, and counts them all', async () => {
    const chosen = policy({ repositories: { include: ['team/**'], exclude: [] }, tags: { include: ['*'], exclude: [], syntax: 'glob' } });
    const preview = await previewPolicy(chosen, registry(proxy.host), registry(destination.host), environment(), never, { repositories: 1, timeoutMs: 10_000 });
    expect(preview).toMatchObject({ repositoriesSelected: 2, bounds: { repositories: 1 } });
    expect(preview.repositories).toEqual([
      { source: `${proxy.host}/team/a`, destination: `${destination.host}/team/a`, listed: 1, selected: ['v1'], leftOut: {}, toCopy: [{ tag: 'v1', bytes: expect.any(Number) }], unchanged: [], bytes: expect.any(Number) },
    ]);
    expect(preview.bytes).toBeGreaterThan(128);
    expect((await fetch(`http://${destination.host}/v2/team/a/tags/list`)).status).toBe(404);
  });

  it('ends a dry run that outlasts the time bound, saying so', async () => {
    const held = proxy.hold({ method: 'GET', path: /\/other\/x\/tags\/list/ });
    const started = Date.now();
    const chosen = policy({ repositories: { include: ['other/*'], exclude: [] } });
    const preview = await previewPolicy(chosen, registry(proxy.host), registry(destination.host), environment(), never, { repositories: 10, timeoutMs: 1_000 });
    held.release();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(preview.repositories).toEqual([expect.objectContaining({ source: `${proxy.host}/other/x`, selected: [], error: 'not finished within the time bound' })]);
  });

  it('names the registry that failed a dry run', async () => {
    const chosen = policy({ repositories: { include: ['team/a'], exclude: [] } });
    const preview = await previewPolicy(chosen, registry(proxy.host), registry('127.0.0.1:9'), environment(), never, { repositories: 10, timeoutMs: 10_000 });
    expect(preview.repositories[0]?.error).toMatch(/127\.0\.0\.1:9/);
  });
});
