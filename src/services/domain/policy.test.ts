import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateSigningKeys } from '../../../test/support/referrers.js';
import { InvalidInputError } from './errors.js';
import type { TagFilter } from '../tag-filter.js';
import { checkPolicy, checkPolicyPatch, checkPolicySettings, POLICY_DEFAULTS, type PolicyDraft, type RegistryExists } from './policy.js';

const REGISTRIES = new Set(['source-id', 'destination-id']);
const registryExists: RegistryExists = async (id) => REGISTRIES.has(id);
const DRAFT: PolicyDraft = { name: 'mirror', sourceRegistryId: 'source-id', destinationRegistryId: 'destination-id' };
const COSIGN_KEY = generateSigningKeys().publicKey.export({ type: 'spki', format: 'pem' }).toString();
const P384_KEY = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

async function refusal(check: () => Promise<unknown>): Promise<InvalidInputError> {
  const error = await check().then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(InvalidInputError);
  return error as InvalidInputError;
}

describe('checkPolicy', () => {
  it('fills in the defaults', async () => {
    expect(await checkPolicy(DRAFT, registryExists)).toEqual({ ...POLICY_DEFAULTS, ...DRAFT });
    expect(POLICY_DEFAULTS).toMatchObject({ enabled: true, override: true, trigger: { type: 'manual' }, repositories: { include: ['**'] }, tags: { include: ['*'], syntax: 'glob' } });
    expect(POLICY_DEFAULTS).toMatchObject({ referrers: 'all', requireSignature: null });
  });

  it('keeps every setting given, in its stored form', async () => {
    const draft: PolicyDraft = {
      ...DRAFT,
      enabled: false,
      repositories: { include: ['team/**'], exclude: ['team/tmp/*'] },
      tags: { include: ['v\\d+(\\.\\d+)*'], exclude: ['.*-rc.*'], syntax: 'regex' },
      rewrite: { namespace: 'mirror/team', flatten: -1 },
      override: false,
      platforms: ['linux/amd64', 'linux/arm64/v8', 'windows/amd64'],
      replicateDeletions: true,
      bandwidthKiBps: 512.5,
      trigger: { type: 'cron', schedule: '0 3 * * *' },
      priority: -3,
      referrers: ['application/spdx+json', 'application/vnd.in-toto+json'],
      requireSignature: { key: COSIGN_KEY, source: 'keys/cosign.pub' },
    };
    expect(await checkPolicy(draft, registryExists)).toEqual(draft);
    expect((await checkPolicy({ ...DRAFT, referrers: 'none' }, registryExists)).referrers).toBe('none');
    const versions: TagFilter = { include: ['*'], exclude: ['*-debug'], syntax: 'glob', semver: { range: '>=1.2 <2', includePrerelease: true }, latest: { count: 3, by: 'created' } };
    expect((await checkPolicy({ ...DRAFT, tags: versions }, registryExists)).tags).toEqual(versions);
    // includePrerelease is stored either way, so the API shows what the filter does.
    expect((await checkPolicy({ ...DRAFT, tags: { include: [], exclude: [], syntax: 'glob', semver: { range: '^3' } } }, registryExists)).tags.semver).toEqual({ range: '^3', includePrerelease: false });
    expect((await checkPolicy({ ...DRAFT, trigger: { type: 'cron', schedule: '@daily' } }, registryExists)).trigger).toEqual({ type: 'cron', schedule: '@daily' });
  });

  it.each<[string, Partial<PolicyDraft>, string, RegExp]>([
    ['a missing name', { name: undefined }, 'name', /^name is required$/],
    ['an empty name', { name: '' }, 'name', /^name must not be empty$/],
    ['an unknown source registry', { sourceRegistryId: 'gone' }, 'sourceRegistryId', /^sourceRegistryId "gone" names no registry$/],
    ['an unknown destination registry', { destinationRegistryId: 'gone' }, 'destinationRegistryId', /^destinationRegistryId "gone" names no registry$/],
    ['an empty repository glob', { repositories: { include: ['team/**', ''], exclude: [] } }, 'repositories.include.1', /^repositories\.include\.1 must not be empty$/],
    ['an empty excluded tag', { tags: { include: [], exclude: [''], syntax: 'glob' } }, 'tags.exclude.0', /^tags\.exclude\.0 must not be empty$/],
    [
      'a tag pattern that is not a regular expression',
      { tags: { include: ['v('], exclude: [], syntax: 'regex' } },
      'tags.include.0',
      /^tags\.include\.0 "v\(" is not a regular expression: .*Unterminated group/,
    ],
    ['a semver range that is none', { tags: { include: [], exclude: [], syntax: 'glob', semver: { range: '>=1.2 <' } } }, 'tags.semver.range', /^tags\.semver\.range ">=1\.2 <" is not a semver range/],
    ['a word for a semver range', { tags: { include: [], exclude: [], syntax: 'glob', semver: { range: 'latest' } } }, 'tags.semver.range', /^tags\.semver\.range "latest" is not a semver range/],
    ['an empty semver range', { tags: { include: [], exclude: [], syntax: 'glob', semver: { range: ' ' } } }, 'tags.semver.range', /^tags\.semver\.range must not be empty \(\* takes every version\)$/],
    ['the latest 0', { tags: { include: [], exclude: [], syntax: 'glob', latest: { count: 0, by: 'semver' } } }, 'tags.latest.count', /^tags\.latest\.count 0 is not a whole number of at least 1$/],
    ['the latest 2.5', { tags: { include: [], exclude: [], syntax: 'glob', latest: { count: 2.5, by: 'created' } } }, 'tags.latest.count', /^tags\.latest\.count 2\.5 is not/],
    ['latest by an unknown order', { tags: { include: [], exclude: [], syntax: 'glob', latest: { count: 3, by: 'name' as 'semver' } } }, 'tags.latest.by', /^tags\.latest\.by "name" is neither semver nor created$/],
    ['a namespace that is not a repository path', { rewrite: { namespace: 'Mirror', flatten: 0 } }, 'rewrite.namespace', /^rewrite\.namespace "Mirror" is not a repository path/],
    ['an empty namespace', { rewrite: { namespace: '', flatten: 0 } }, 'rewrite.namespace', /^rewrite\.namespace "" is not a repository path/],
    ['flatten below -1', { rewrite: { namespace: null, flatten: -2 } }, 'rewrite.flatten', /^rewrite\.flatten -2 is not -1 \(keep the last component\), 0 \(keep all\) or a positive integer$/],
    ['a fractional flatten', { rewrite: { namespace: null, flatten: 1.5 } }, 'rewrite.flatten', /^rewrite\.flatten 1\.5 is not/],
    ['a platform without an architecture', { platforms: ['linux/amd64', 'amd64'] }, 'platforms.1', /^platforms\.1 "amd64" is not os\/arch or os\/arch\/variant/],
    ['a platform in capitals', { platforms: ['Linux/AMD64'] }, 'platforms.0', /^platforms\.0 "Linux\/AMD64" is not os\/arch/],
    ['a platform listed twice', { platforms: ['linux/amd64', 'linux/arm64', 'linux/amd64'] }, 'platforms.2', /^platforms\.2 "linux\/amd64" is listed twice$/],
    ['no bandwidth', { bandwidthKiBps: 0 }, 'bandwidthKiBps', /^bandwidthKiBps 0 is not a positive number of KiB\/s \(null for no limit\)$/],
    ['an endless bandwidth', { bandwidthKiBps: Number.POSITIVE_INFINITY }, 'bandwidthKiBps', /^bandwidthKiBps Infinity is not a positive number/],
    ['a fractional priority', { priority: 0.5 }, 'priority', /^priority 0\.5 is not an integer$/],
    ['a cron trigger without a schedule', { trigger: { type: 'cron' } }, 'trigger.schedule', /^trigger\.schedule is required for a cron trigger$/],
    ['a schedule on a manual trigger', { trigger: { type: 'manual', schedule: '0 3 * * *' } }, 'trigger.schedule', /^trigger\.schedule is only for cron triggers, not manual$/],
    ['a schedule on an event trigger', { trigger: { type: 'event', schedule: '0 3 * * *' } }, 'trigger.schedule', /^trigger\.schedule is only for cron triggers, not event$/],
    ['a schedule of three fields', { trigger: { type: 'cron', schedule: '* * *' } }, 'trigger.schedule', /^trigger\.schedule "\* \* \*" is not a cron schedule: .*five, six, or seven/],
    ['a minute out of range', { trigger: { type: 'cron', schedule: '61 * * * *' } }, 'trigger.schedule', /^trigger\.schedule "61 \* \* \* \*" is not a cron schedule: .*minute/],
    ['words for a schedule', { trigger: { type: 'cron', schedule: 'every day' } }, 'trigger.schedule', /^trigger\.schedule "every day" is not a cron schedule/],
    ['a date for a schedule', { trigger: { type: 'cron', schedule: '2099-01-01T00:00:00' } }, 'trigger.schedule', /^trigger\.schedule "2099-01-01T00:00:00" is a date, not a cron schedule/],
    ['a schedule that never fires', { trigger: { type: 'cron', schedule: '0 0 30 2 *' } }, 'trigger.schedule', /^trigger\.schedule "0 0 30 2 \*" never fires$/],
    ['an empty list of referrers', { referrers: [] }, 'referrers', /^referrers lists no artifact type \(say none to copy no referrers\)$/],
    ['a referrer type that is no media type', { referrers: ['application/spdx+json', 'sbom'] }, 'referrers.1', /^referrers\.1 "sbom" is not an artifact type/],
    ['a referrer type listed twice', { referrers: ['application/spdx+json', 'application/spdx+json'] }, 'referrers.1', /^referrers\.1 "application\/spdx\+json" is listed twice$/],
    ['a signing key that is no key', { requireSignature: { key: 'ssh-ed25519 AAAA', source: 'cosign.pub' } }, 'requireSignature', /^requireSignature cosign\.pub is not a PEM public key: /],
    ['a signing key on another curve', { requireSignature: { key: P384_KEY, source: 'p384.pub' } }, 'requireSignature', /^requireSignature p384\.pub is not an ECDSA P-256 public key/],
  ])('refuses %s, naming the field', async (_, change, field, message) => {
    const error = await refusal(() => checkPolicy({ ...DRAFT, ...change } as PolicyDraft, registryExists));
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });
});

describe('checkPolicyPatch', () => {
  it('checks only what a change gives, and adds no defaults', async () => {
    expect(await checkPolicyPatch({ enabled: false, trigger: { type: 'event' }, priority: undefined }, registryExists)).toEqual({ enabled: false, trigger: { type: 'event' } });
    expect(await checkPolicyPatch({ destinationRegistryId: 'source-id' }, registryExists)).toEqual({ destinationRegistryId: 'source-id' });
    expect(await checkPolicyPatch({ requireSignature: null }, registryExists)).toEqual({ requireSignature: null });
  });

  it('refuses what a new policy would be refused', async () => {
    expect((await refusal(() => checkPolicyPatch({ trigger: { type: 'cron', schedule: 'soon' } }, registryExists))).field).toBe('trigger.schedule');
    expect((await refusal(() => checkPolicyPatch({ sourceRegistryId: 'gone' }, registryExists))).field).toBe('sourceRegistryId');
    expect((await refusal(() => checkPolicyPatch({ referrers: ['sbom'] }, registryExists))).field).toBe('referrers.0');
  });
});

describe('checkPolicySettings', () => {
  it('checks the settings given, without registries and without defaults', () => {
    expect(checkPolicySettings({ name: 'mirror', priority: 2 })).toEqual({ name: 'mirror', priority: 2 });
    expect(() => checkPolicySettings({ name: 'mirror', platforms: ['x'] })).toThrow(InvalidInputError);
  });
});
