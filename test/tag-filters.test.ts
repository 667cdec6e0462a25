import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicationInput } from '../src/machines/replication.js';
import type { JobEvent } from '../src/services/interpreter.js';
import { POLICY_DEFAULTS } from '../src/services/domain/policy.js';
import { planJobs } from '../src/services/policy/plan-jobs.js';
import { Registries } from '../src/services/registry/registries.js';
import type { Policy, Registry } from '../src/services/store/types.js';
import { globFilter, type TagFilter } from '../src/services/tag-filter.js';
import { ferry, replicate, replicationInput } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import type { ImageSpec, TagSpec } from './support/images.js';
import { listTags, rawManifest } from './support/skopeo.js';

const REPOSITORY = 'team/app';
const image = (seed: string, created: string, platform?: ImageSpec['platform']): ImageSpec => ({ layers: [{ size: 2_000, seed }], created, ...(platform ? { platform } : {}) });

/** Versions created out of their order, so that ranking by creation time and by version differ. */
const TAGS: Record<string, TagSpec> = {
  '1.2.3': image('1.2.3', '2024-01-03T00:00:00Z'),
  // A moving tag, as for the newest patch of 1.2: no version.
  '1.2': image('1.2', '2024-01-03T00:00:00Z'),
  '1.10.0': image('1.10.0', '2024-01-02T00:00:00Z'),
  'v1.4.0': image('v1.4.0', '2024-01-01T00:00:00Z'),
  '2.0.0-rc.1': image('2.0.0-rc.1', '2024-01-06T00:00:00Z'),
  latest: image('latest', '2024-01-05T00:00:00Z'),
  // Its first platform is older than 1.2.3, its second newer than everything.
  main: {
    platforms: [
      image('main-amd64', '2024-01-02T12:00:00Z', { os: 'linux', architecture: 'amd64' }),
      image('main-arm64', '2024-01-07T00:00:00Z', { os: 'linux', architecture: 'arm64' }),
    ],
  },
};

let fixture: ReplicationFixture;

beforeAll(async () => {
  fixture = await replicationFixture(TAGS, REPOSITORY);
});

afterAll(() => fixture?.stop());

const filter = (selection: Partial<TagFilter>): TagFilter => ({ ...globFilter([]), ...selection });

/** A replication from the source (through its proxy, which records requests) to a fresh repository of the destination. */
function input(target: string, tagFilter: TagFilter, overrides: Partial<ReplicationInput> = {}): ReplicationInput {
  return replicationInput(`${fixture.sourceProxy.host}/${REPOSITORY}`, `${fixture.destination.host}/${target}`, { tagFilter, ...overrides });
}

/** The job's one selection; its tags sorted unless ranked newest first by latest N. */
function selection(events: JobEvent[], ranked = false) {
  const selected = events.filter((event) => event.type === 'tags.selected');
  expect(selected).toHaveLength(1);
  const { type: _, kept, ...rest } = selected[0]!;
  return { ...rest, kept: ranked ? kept : [...kept].sort() };
}

const copied = async (target: string) => (await listTags({ host: fixture.destination.host, repository: target })).sort();

/** The source's GETs since `from` of the given blobs (each path once per request). */
function blobGets(from: number): string[] {
  return fixture.sourceProxy.requests
    .slice(from)
    .filter((request) => request.method === 'GET' && request.path.startsWith(`/v2/${REPOSITORY}/blobs/`))
    .map((request) => request.path.slice(`/v2/${REPOSITORY}/blobs/`.length));
}

const configOf = (tag: string) => fixture.built[tag]!.configs[0]!;

describe('semver ranges', () => {
  it('copies the versions in the range, a leading v included, and no tag that is no version', async () => {
    const result = await replicate(input('range/app', filter({ semver: { range: '>=1.2 <2' } })));
    expect(result.status).toBe('finished');
    expect(await copied('range/app')).toEqual(['1.10.0', '1.2.3', 'v1.4.0']);
    expect(selection(result.events)).toEqual({ listed: 7, kept: ['1.10.0', '1.2.3', 'v1.4.0'], leftOut: { notSemver: 3, outsideRange: 1 } });
  });

  it('leaves prereleases out unless they are asked for', async () => {
    const stable = await replicate(input('stable/app', filter({ semver: { range: '>=1.10' } })));
    expect(await copied('stable/app')).toEqual(['1.10.0']);
    expect(selection(stable.events).leftOut).toEqual({ notSemver: 3, outsideRange: 2, prerelease: 1 });

    const all = await replicate(input('prerelease/app', filter({ semver: { range: '>=1.10', includePrerelease: true } })));
    expect(await copied('prerelease/app')).toEqual(['1.10.0', '2.0.0-rc.1']);
    expect(selection(all.events).kept).toEqual(['1.10.0', '2.0.0-rc.1']);
  });
});

describe('the latest N', () => {
  it('by semver keeps the highest versions, 1.10.0 above 1.2.3, and fetches no config to rank them', async () => {
    const from = fixture.sourceProxy.requests.length;
    const result = await replicate(input('latest-semver/app', filter({ latest: { count: 2, by: 'semver' } }), { dryRun: true }));
    expect(result.status).toBe('finished');
    expect(selection(result.events, true)).toEqual({ listed: 7, kept: ['1.10.0', 'v1.4.0'], leftOut: { notSemver: 3, prerelease: 1, beyondLatest: 1 } });
    expect(blobGets(from)).toEqual([]);
  });

  it('by creation time fetches the configs of the tags the range kept, each once, and no other', async () => {
    const from = fixture.sourceProxy.requests.length;
    const result = await replicate(input('latest-created/app', filter({ semver: { range: '>=1' }, latest: { count: 2, by: 'created' } })));
    expect(result.status).toBe('finished');
    // v1.4.0 is the highest version of the three but the oldest image.
    expect(await copied('latest-created/app')).toEqual(['1.10.0', '1.2.3']);
    expect(selection(result.events, true)).toEqual({ listed: 7, kept: ['1.2.3', '1.10.0'], leftOut: { notSemver: 3, prerelease: 1, beyondLatest: 1 } });
    const ranked = [configOf('1.10.0'), configOf('1.2.3'), configOf('v1.4.0')];
    const copiedConfigs = [configOf('1.10.0'), configOf('1.2.3')];
    // Fetched once to rank, and the copied tags' again as the blobs they are.
    expect(blobGets(from).filter((blob) => blob === configOf('v1.4.0'))).toHaveLength(1);
    // Each ranked tag's manifest is fetched once by tag: the copy reuses what ranking fetched.
    const manifestGets = fixture.sourceProxy.requests.slice(from).filter((r) => r.method === 'GET' && /\/manifests\/[^/]+$/.test(r.path) && !r.path.includes('sha256:'));
    expect(manifestGets.map((r) => r.path.split('/manifests/')[1]).sort()).toEqual(['1.10.0', '1.2.3', 'v1.4.0']);
    expect(blobGets(from).filter((blob) => ranked.includes(blob)).sort()).toEqual([...ranked, ...copiedConfigs].sort());
    for (const tag of ['latest', 'main', '2.0.0-rc.1', '1.2']) {
      for (const config of fixture.built[tag]!.configs) if (!ranked.includes(config)) expect(blobGets(from), tag).not.toContain(config);
    }
  });

  it("ranks an index by its first platform's creation time, and the manifests fetched for it serve the copy", async () => {
    let from = fixture.sourceProxy.requests.length;
    const older = await replicate(input('latest-index/app', filter({ include: ['main', 'latest', '1.2.3'], latest: { count: 2, by: 'created' } }), { dryRun: true }));
    expect(selection(older.events, true)).toEqual({ listed: 7, kept: ['latest', '1.2.3'], leftOut: { pattern: 4, beyondLatest: 1 } });
    const [first, second] = fixture.built.main!.configs;
    expect(blobGets(from)).toContain(first);
    expect(blobGets(from)).not.toContain(second);

    // On a destination where main points elsewhere, which the copy compares by HEAD and then replaces.
    await replicate(input('latest-index/app', globFilter([]), { items: [{ source: 'latest', target: 'main' }] }));
    from = fixture.sourceProxy.requests.length;
    const newer = await replicate(input('latest-index/app', filter({ include: ['main', 'v1.4.0'], latest: { count: 1, by: 'created' } })));
    expect(selection(newer.events, true).kept).toEqual(['main']);
    expect((await rawManifest({ host: fixture.destination.host, repository: 'latest-index/app', tag: 'main' })).digest).toBe(fixture.built.main!.digest);
    const manifestGets = (reference: string) => fixture.sourceProxy.requests.slice(from).filter((r) => r.method === 'GET' && r.path === `/v2/${REPOSITORY}/manifests/${reference}`);
    expect(manifestGets('main')).toHaveLength(1);
    expect(manifestGets(fixture.built.main!.digest)).toHaveLength(0);
    expect(manifestGets(fixture.built.main!.manifests[0]!)).toHaveLength(1);
  });

  it('ranks as the oldest an image whose config is missing, and goes on', async () => {
    const config = configOf('latest');
    fixture.sourceProxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${config}$`), fault: { type: 'status', status: 404 }, times: 1 });
    try {
      const result = await replicate(input('latest-missing/app', filter({ include: ['latest', '1.2.3', '1.10.0'], latest: { count: 2, by: 'created' } }), { dryRun: true }));
      expect(result.status).toBe('finished');
      expect(selection(result.events, true).kept).toEqual(['1.2.3', '1.10.0']);
    } finally {
      fixture.clearFaults();
    }
  });

  it('copies a pushed tag on an event only if it is among the latest N when the job lists the repository', async () => {
    const at = '2025-01-01T00:00:00.000Z';
    const registry = (url: string): Registry => ({ id: url, name: url, url, insecure: false, ca: null, hasCredentials: false, username: null, credentialHelper: null, requestsPerSecond: null, createdAt: at, updatedAt: at });
    const policy: Policy = {
      ...POLICY_DEFAULTS,
      id: 'latest-two',
      name: 'latest-two',
      sourceRegistryId: fixture.source.host,
      destinationRegistryId: fixture.destination.host,
      rewrite: { namespace: 'pushed', flatten: 0 },
      tags: filter({ latest: { count: 2, by: 'semver' } }),
      createdAt: at,
      updatedAt: at,
    };
    const registries = new Registries(async (name) => ({ registry: name }));
    try {
      const [job] = await planJobs(policy, registry(fixture.source.host), registry(fixture.destination.host), registries, { kind: 'push', repository: REPOSITORY, tag: '1.2.3' });
      const result = await replicate(job!.input as ReplicationInput);
      expect(result.status).toBe('finished');
      expect(await copied(`pushed/${REPOSITORY}`)).toEqual(['1.10.0', 'v1.4.0']);
    } finally {
      await registries.close();
    }
  });
});

describe('ferry copy', () => {
  const source = () => `${fixture.source.host}/${REPOSITORY}`;

  it('prints on --dry-run which tags the filters keep and why the others are left out', async () => {
    const result = await ferry(['copy', source(), `${fixture.destination.host}/dry/app`, '--semver', '>=1.2 <2', '--latest', '2', '--dry-run']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('selected   2 of 7 tags: 1.10.0, v1.4.0; left out 3 not semver, 1 outside the semver range, 1 beyond the latest 2\n');
    expect(result.stdout).toMatch(/dry run: 2 tags to copy, 0 unchanged;/);
    expect(await listTags({ host: fixture.destination.host, repository: 'dry/app' }).catch(() => [])).toEqual([]);
  });

  it('copies the newest image of the versions with prereleases', async () => {
    const result = await ferry(['copy', source(), `${fixture.destination.host}/cli/app`, '--semver', '>=1.10', '--prerelease', '--latest', '1', '--latest-by', 'created']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toContain('selected');
    expect(await copied('cli/app')).toEqual(['2.0.0-rc.1']);
  });

  it.each([
    ['a range that is none', ['--semver', '>=1.2 <'], '--semver ">=1.2 <" is not a semver range'],
    ['--prerelease without a range', ['--prerelease'], '--prerelease widens --semver: give --semver RANGE too'],
    ['the latest 0', ['--latest', '0'], '--latest takes a whole number of at least 1, not "0"'],
    ['an unknown order', ['--latest', '2', '--latest-by', 'name'], '--latest-by takes semver or created, not "name"'],
    ['an order without --latest', ['--latest-by', 'created'], '--latest-by orders --latest: give --latest N too'],
  ])('refuses %s with exit 2', async (_, options, message) => {
    const result = await ferry(['copy', source(), `${fixture.destination.host}/refused/app`, ...options]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('refuses a version filter on a single tag', async () => {
    const result = await ferry(['copy', `${source()}:1.2.3`, `${fixture.destination.host}/refused/app:1.2.3`, '--latest', '1']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--tags, --semver and --latest filter a whole repository: SRC must not name a tag or digest');
  });
});
