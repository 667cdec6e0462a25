import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateSigningKeys } from '../../test/support/referrers.js';
import { applyConfig, readConfigFile } from './config-file.js';
import { RegistryError } from './registry/errors.js';
import pino from 'pino';
import { Settings } from './application/settings.js';
import { Registries } from './registry/registries.js';
import { Scheduler } from './scheduler.js';
import { openSqliteStore } from './store/sqlite/connect.js';
import type { Store } from './store/types.js';

let dir: string;
let store: Store;
let settings: Settings;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-config-file-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  store = openSqliteStore(':memory:');
  const registries = new Registries(async (registry) => ({ registry }));
  settings = new Settings(store, registries, new Scheduler({ store, registries, logger: pino({ level: 'silent' }), queued: () => {} }), {
    stopExecution: () => Promise.reject(new Error('ferry.yaml stops no execution')),
  });
});

afterEach(async () => {
  await store.close();
});

const REGISTRIES = `
registries:
  - { name: upstream, url: registry.example.com }
  - { name: local, url: "127.0.0.1:5000" }
`;

const FIRST = '  - { name: first, source: upstream, destination: local }\n';

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** Reads and applies the file: the error either step throws. */
async function refusal(path: string): Promise<RegistryError> {
  const error = await readConfigFile(path, {})
    .then((config) => applyConfig(store, settings, config))
    .then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
  expect(error).toBeInstanceOf(RegistryError);
  expect((error as RegistryError).code).toBe('INVALID_CONFIG');
  return error as RegistryError;
}

async function storesNothing(): Promise<void> {
  expect(await store.registries.list()).toEqual({ items: [], total: 0 });
  expect(await store.policies.list()).toEqual({ items: [], total: 0 });
}

describe('applyConfig', () => {
  it('gives a registry a credential helper in place of its credentials, and back', async () => {
    const path = await file('helper.yaml', 'registries:\n  - { name: ecr, url: ecr.example.com, credentials: { username: AWS, password: p } }\n');
    await applyConfig(store, settings, await readConfigFile(path, {}));
    await writeFile(path, 'registries:\n  - { name: ecr, url: ecr.example.com, credentialHelper: ecr-login }\n');
    const [withHelper] = (await applyConfig(store, settings, await readConfigFile(path, {}))).registries;
    expect(withHelper).toMatchObject({ credentialHelper: 'ecr-login', hasCredentials: false });
    expect(await store.registries.credentials(withHelper!.id)).toBeUndefined();
    await writeFile(path, 'registries:\n  - { name: ecr, url: ecr.example.com, credentialHelper: null }\n');
    expect((await applyConfig(store, settings, await readConfigFile(path, {}))).registries).toMatchObject([{ credentialHelper: null, hasCredentials: false }]);
  });

  it('creates the registries and policies, then updates them by name', async () => {
    const path = await file('valid.yaml', `${REGISTRIES}
policies:
  - { name: mirror-team, source: upstream, destination: local, rewrite: { namespace: mirror, flatten: 1 }, trigger: { type: cron, schedule: "0 * * * *" } }
`);
    const applied = await applyConfig(store, settings, await readConfigFile(path, {}));
    expect(applied.registries.map((r) => r.name)).toEqual(['upstream', 'local']);
    expect(applied.policies).toMatchObject([{ name: 'mirror-team', rewrite: { namespace: 'mirror', flatten: 1 }, trigger: { type: 'cron', schedule: '0 * * * *' }, enabled: true }]);

    await writeFile(path, `${REGISTRIES}\npolicies:\n  - { name: mirror-team, source: upstream, destination: local, priority: 5 }\n`);
    const again = await applyConfig(store, settings, await readConfigFile(path, {}));
    expect(again.policies).toMatchObject([{ id: applied.policies[0]!.id, priority: 5, trigger: { type: 'cron' } }]);
  });

  it('stores nothing of a file whose second policy breaks a rule, and says which policy and setting', async () => {
    const path = await file('second-invalid.yaml', `${REGISTRIES}
policies:
${FIRST}  - { name: mirror-team, source: upstream, destination: local, trigger: { type: cron, schedule: "* * *" } }
`);
    const error = await refusal(path);
    expect(error.message).toMatch(new RegExp(`^${path}: policy mirror-team: trigger\\.schedule "\\* \\* \\*" is not a cron schedule: .+`));
    await storesNothing();
  });

  it.each([
    ['a registry URL with a scheme', '  - { name: other, url: "https://other.io" }\n', /: registry other: url "https:\/\/other\.io" is not a registry host/],
    ['a username with a colon', '  - { name: other, url: other.io, credentials: { username: "a:b", password: p } }\n', /: registry other: credentials\.username "a:b" contains ":"/],
    ['a helper given as a path', '  - { name: other, url: other.io, credentialHelper: ./docker-credential-x }\n', /: registry other: credentialHelper ".\/docker-credential-x" is not a credential helper name/],
    ['credentials and a helper', '  - { name: other, url: other.io, credentialHelper: gcr, credentials: { username: u, password: p } }\n', /: registry other: credentialHelper cannot be given with credentials/],
    ['a second registry of one name', '  - { name: upstream, url: other.io }\n', /: registry upstream is listed twice$/],
    ['a second registry of one URL', '  - { name: other, url: registry.example.com }\n', /: registry URL registry\.example\.com is listed twice$/],
    ['a rate below zero', '  - { name: other, url: other.io, requestsPerSecond: -2 }\n', /: registry other: requestsPerSecond -2 is not a positive number of requests per second/],
    ['a rate that is no number', '  - { name: other, url: other.io, requestsPerSecond: fast }\n', /: registries\[2\]\.requestsPerSecond must be a number$/],
  ])('stores nothing of a file with %s', async (_, registry, message) => {
    const path = await file('bad-registry.yaml', `${REGISTRIES}${registry}policies:\n  - { name: p, source: upstream, destination: local }\n`);
    expect((await refusal(path)).message).toMatch(message);
    await storesNothing();
  });

  it.each([
    ['a fractional priority', 'priority: 1.5', /: policy p: priority 1\.5 is not an integer$/],
    ['a platform that is not os/arch', 'platforms: [linux/amd64, amd64]', /: policy p: platforms\.1 "amd64" is not os\/arch/],
    ['a schedule on a manual trigger', 'trigger: { type: manual, schedule: "0 * * * *" }', /: policy p: trigger\.schedule is only for cron triggers, not manual$/],
    ['a regular expression that is not one', 'tags: { include: ["v("], syntax: regex }', /: policy p: tags\.include\.0 "v\(" is not a regular expression: /],
    ['a semver range that is none', 'tags: { semver: ">=1.2 <" }', /: policy p: tags\.semver\.range ">=1\.2 <" is not a semver range/],
    ['an unquoted semver range', 'tags: { semver: 1.10 }', /: policies\[1\]\.tags\.semver must be quoted: YAML reads 1\.1 as a number, not a range$/],
    ['an unknown semver setting', 'tags: { semver: { range: "^3", prerelease: true } }', /: policies\[1\]\.tags\.semver\.prerelease is not a known setting \(range, includePrerelease\)$/],
    ['the latest 0', 'tags: { latest: 0 }', /: policy p: tags\.latest\.count 0 is not a whole number of at least 1$/],
    ['latest by name', 'tags: { latest: { count: 3, by: name } }', /: policies\[1\]\.tags\.latest\.by must be semver or created$/],
    ['a namespace that is not a repository path', 'rewrite: { namespace: Mirror }', /: policy p: rewrite\.namespace "Mirror" is not a repository path/],
    ['a bandwidth below zero', 'bandwidthKiBps: -1', /: policy p: bandwidthKiBps -1 is not a positive number/],
    ['referrers neither all, none nor a list', 'referrers: some', /: policies\[1\]\.referrers must be all, none or a list of artifact types$/],
    ['a referrer type that is no media type', 'referrers: [application/spdx+json, sbom]', /: policy p: referrers\.1 "sbom" is not an artifact type/],
    ['an empty list of referrer types', 'referrers: []', /: policy p: referrers lists no artifact type/],
  ])('stores nothing of a file with %s', async (_, setting, message) => {
    const path = await file('bad-policy.yaml', `${REGISTRIES}policies:\n${FIRST}  - { name: p, source: upstream, destination: local, ${setting} }\n`);
    expect((await refusal(path)).message).toMatch(message);
    await storesNothing();
  });

  it('reads semver ranges and latest N, in short and in full', async () => {
    const path = await file('versions.yaml', `${REGISTRIES}policies:
  - { name: compact, source: upstream, destination: local, tags: { semver: ">=1.2 <2", latest: 3 } }
  - name: full
    source: upstream
    destination: local
    tags:
      exclude: ["*-debug"]
      semver: { range: "^3", includePrerelease: true }
      latest: { count: 2, by: created }
`);
    const { policies } = await applyConfig(store, settings, await readConfigFile(path, {}));
    expect(policies.map((p) => p.tags)).toEqual([
      { include: ['*'], exclude: [], syntax: 'glob', semver: { range: '>=1.2 <2', includePrerelease: false }, latest: { count: 3, by: 'semver' } },
      { include: ['*'], exclude: ['*-debug'], syntax: 'glob', semver: { range: '^3', includePrerelease: true }, latest: { count: 2, by: 'created' } },
    ]);
    expect((await store.policies.list()).items.map((p) => p.tags)).toEqual(policies.map((p) => p.tags));
  });

  it('stores nothing of a file with a policy whose registry is nowhere', async () => {
    const path = await file('unknown-registry.yaml', `${REGISTRIES}policies:\n${FIRST}  - { name: p, source: upstream, destination: nowhere }\n`);
    expect((await refusal(path)).message).toBe(`${path}: policy p: destination names registry "nowhere", which is not configured`);
    await storesNothing();
  });

  it("keeps a registry's ceiling of requests per second; null removes it", async () => {
    const path = await file('rate.yaml', 'registries:\n  - { name: hub, url: docker.io, requestsPerSecond: 2.5 }\n');
    expect((await applyConfig(store, settings, await readConfigFile(path, {}))).registries).toMatchObject([{ name: 'hub', requestsPerSecond: 2.5 }]);
    await writeFile(path, 'registries:\n  - { name: hub, url: docker.io, requestsPerSecond: null }\n');
    expect((await applyConfig(store, settings, await readConfigFile(path, {}))).registries).toMatchObject([{ name: 'hub', requestsPerSecond: null }]);
  });

  it('names the caFile of a CA that holds no certificate', async () => {
    await writeFile(join(dir, 'not-a-ca.pem'), 'not a certificate\n');
    const path = await file('bad-ca.yaml', 'registries:\n  - { name: tls, url: tls.example.com, caFile: not-a-ca.pem }\n');
    expect((await refusal(path)).message).toBe(`${path}: registry tls: caFile "not-a-ca.pem" holds no PEM certificate (a -----BEGIN CERTIFICATE----- block)`);
    await storesNothing();
  });

  it('keeps the referrers chosen and the key a requireSignature path names, read relative to the file; null removes the key', async () => {
    const key = generateSigningKeys().publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await mkdir(join(dir, 'signed', 'keys'), { recursive: true });
    await writeFile(join(dir, 'signed', 'keys', 'cosign.pub'), key);
    const path = await file('signed/ferry.yaml', `${REGISTRIES}policies:\n  - { name: p, source: upstream, destination: local, referrers: [application/spdx+json], requireSignature: keys/cosign.pub }\n`);
    const [applied] = (await applyConfig(store, settings, await readConfigFile(path, {}))).policies;
    expect(applied).toMatchObject({ referrers: ['application/spdx+json'], requireSignature: { key, source: join(dir, 'signed', 'keys', 'cosign.pub') } });

    await writeFile(path, `${REGISTRIES}policies:\n  - { name: p, source: upstream, destination: local, referrers: none }\n`);
    expect(await applyConfig(store, settings, await readConfigFile(path, {}))).toMatchObject({ policies: [{ referrers: 'none', requireSignature: { key } }] });
    await writeFile(path, `${REGISTRIES}policies:\n  - { name: p, source: upstream, destination: local, requireSignature: null }\n`);
    expect(await applyConfig(store, settings, await readConfigFile(path, {}))).toMatchObject({ policies: [{ referrers: 'none', requireSignature: null }] });
  });

  it('names the policy and the key file it cannot read', async () => {
    const path = await file('missing-key.yaml', `${REGISTRIES}policies:\n  - { name: p, source: upstream, destination: local, requireSignature: ./missing.pub }\n`);
    expect((await refusal(path)).message).toBe(`${path}: policy p: requireSignature ${join(dir, 'missing.pub')} cannot be read (ENOENT)`);
    await storesNothing();
  });

  it('stores nothing of a file whose policy requires a signature with a key that is not ECDSA P-256, and names the key file', async () => {
    await writeFile(join(dir, 'p384.pub'), generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ type: 'spki', format: 'pem' }));
    const path = await file('p384-key.yaml', `${REGISTRIES}policies:\n${FIRST}  - { name: p, source: upstream, destination: local, requireSignature: p384.pub }\n`);
    expect((await refusal(path)).message).toBe(`${path}: policy p: requireSignature ${join(dir, 'p384.pub')} is not an ECDSA P-256 public key (cosign's keys are)`);
    await storesNothing();
  });

  it('takes registries a policy names from the store', async () => {
    await store.registries.create({ name: 'stored', url: 'stored.example.com' });
    const path = await file('stored.yaml', 'policies:\n  - { name: p, source: stored, destination: stored }\n');
    expect((await applyConfig(store, settings, await readConfigFile(path, {}))).policies).toMatchObject([{ name: 'p' }]);
  });
});
