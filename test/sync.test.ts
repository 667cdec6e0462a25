import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ferry } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { DEFAULT_USER, startRegistry, type RunningRegistry } from './support/registry.js';
import { attachReferrer, fallbackIndex, generateSigningKeys, signImage, verifySignature } from './support/referrers.js';
import { listTags, rawManifest } from './support/skopeo.js';

let fixture: ReplicationFixture;
let secured: RunningRegistry;
let dir: string;

beforeAll(async () => {
  [fixture, secured] = await Promise.all([
    replicationFixture(
      {
        'v1.0': { layers: [{ size: 30_000, seed: 'sync-1' }] },
        'v1.1-rc1': { layers: [{ size: 30_000, seed: 'sync-2' }] },
        'v2.0': { layers: [{ size: 30_000, seed: 'sync-3' }] },
      },
      'team/app',
    ),
    startRegistry({ auth: 'htpasswd' }),
  ]);
  dir = await mkdtemp(join(tmpdir(), 'ferry-sync-'));
});

afterAll(async () => {
  await Promise.all([fixture?.stop(), secured?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

async function config(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('ferry sync', () => {
  it('runs every policy of a ferry.yaml once and prints a summary', async () => {
    const path = await config('ferry.yaml', `
registries:
  - name: upstream
    url: ${fixture.source.host}
  - name: mirror
    url: ${secured.host}
    credentials: { username: ${DEFAULT_USER.username}, password: "\${MIRROR_PASSWORD}" }
policies:
  - name: releases
    source: upstream
    destination: mirror
    repositories: { include: ["team/**"] }
    tags: { include: ["v*"], exclude: ["*-rc*"] }
    rewrite: { namespace: mirror, flatten: 1 }
  - name: disabled
    enabled: false
    source: upstream
    destination: mirror
`);
    const result = await ferry(['sync', '-c', path], { MIRROR_PASSWORD: DEFAULT_USER.password });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^POLICY\s+STATUS\s+JOBS\s+FINISHED\s+ERROR\s+STOPPED\s+COPIED\s+UNCHANGED\s+FAILED\s+REFUSED\s+REFERRERS\s+BYTES\nreleases\s+finished\s+1\s+1\s+0\s+0\s+2\s+0\s+0\s+0\s+0\s+/m);
    expect(result.stdout).not.toMatch(/^disabled/m);
    expect(result.stdout + result.stderr).not.toContain(DEFAULT_USER.password);
    const copied = await listTags({ host: secured.host, repository: 'mirror/app', creds: DEFAULT_USER });
    expect(copied.sort()).toEqual(['v1.0', 'v2.0']);
    expect((await rawManifest({ host: secured.host, repository: 'mirror/app', tag: 'v2.0', creds: DEFAULT_USER })).digest).toBe(fixture.built['v2.0']!.digest);
  });

  it('exits 1 and says which job failed', async () => {
    const path = await config('failing.yaml', `
registries:
  - { name: upstream, url: ${fixture.source.host} }
  - { name: mirror, url: ${secured.host} }
policies:
  - { name: no-credentials, source: upstream, destination: mirror }
`);
    const result = await ferry(['sync', '-c', path]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^no-credentials\s+error\s+1\s+0\s+1/m);
    expect(result.stderr).toContain(`no-credentials: ${fixture.source.host}/team/app: `);
    expect(result.stderr).toContain(`${secured.host} needs credentials`);
  });

  it('copies signed images with their referrers under a policy that requires a signature, refuses the unsigned and exits 1', async () => {
    const keys = generateSigningKeys();
    await signImage(fixture.source.host, 'team/app', fixture.built['v1.0']!.digest, keys.privateKey);
    const sbom = await attachReferrer(fixture.source.host, 'team/app', fixture.built['v1.0']!.digest, { artifactType: 'application/spdx+json', content: Buffer.from('{"name":"v1.0"}'), mediaType: 'application/spdx+json' });
    await writeFile(join(dir, 'cosign.pub'), keys.publicKey.export({ type: 'spki', format: 'pem' }));
    const path = await config('verified.yaml', `
registries:
  - { name: upstream, url: ${fixture.source.host} }
  - { name: mirror, url: ${fixture.destination.host} }
policies:
  - name: verified
    source: upstream
    destination: mirror
    tags: { include: ["v1.0", "v2.0"] }
    rewrite: { namespace: verified, flatten: 1 }
    requireSignature: ./cosign.pub
`);
    const result = await ferry(['sync', '-c', path]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^verified\s+finished\s+1\s+1\s+0\s+0\s+1\s+0\s+0\s+1\s+2\s+/m);
    expect(result.stderr).toContain(`verified: ${fixture.source.host}/team/app: 1 image refused, no signature verifies with the required key`);
    const host = fixture.destination.host;
    expect((await listTags({ host, repository: 'verified/app' })).filter((tag) => tag.startsWith('v'))).toEqual(['v1.0']);
    expect(await verifySignature(host, 'verified/app', fixture.built['v1.0']!.digest, keys.publicKey)).toEqual({ verified: true });
    expect((await fallbackIndex(host, 'verified/app', fixture.built['v1.0']!.digest)).map((d) => d.digest)).toEqual([sbom.digest]);
  });

  for (const [what, text, message] of [
    ['an unknown setting', 'registries:\n  - { name: a, url: x.io, colour: red }\n', /registries\[0\]\.colour is not a known setting/],
    ['a missing variable', 'registries:\n  - { name: a, url: x.io, credentials: { username: u, password: "${NOT_SET_ANYWHERE}" } }\n', /uses \$\{NOT_SET_ANYWHERE\}, which is not set/],
    ['an unknown registry', 'policies:\n  - { name: p, source: nowhere, destination: nowhere }\n', /policy p: source names registry "nowhere", which is not configured/],
    ['a bad trigger', 'registries: []\npolicies:\n  - { name: p, source: a, destination: b, trigger: { type: sometimes } }\n', /policies\[0\]\.trigger\.type must be manual, cron or event/],
    [
      'a schedule that is not cron',
      'registries:\n  - { name: a, url: x.io }\npolicies:\n  - { name: p, source: a, destination: a, trigger: { type: cron, schedule: "* * *" } }\n',
      /: policy p: trigger\.schedule "\* \* \*" is not a cron schedule: /,
    ],
    [
      'a signing key that cannot be read',
      'registries:\n  - { name: a, url: x.io }\npolicies:\n  - { name: p, source: a, destination: a, requireSignature: ./no-such-cosign.pub }\n',
      /: policy p: requireSignature \/.+\/no-such-cosign\.pub cannot be read \(ENOENT\)/,
    ],
  ] as const) {
    it(`rejects ${what} with the path and exit 2`, async () => {
      const path = await config(`bad-${what.replace(/ /g, '-')}.yaml`, text);
      const result = await ferry(['sync', '-c', path]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toContain(path);
    });
  }
});
