import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { failure } from '../../../test/support/failure.js';
import { startFaultProxy } from '../../../test/support/fault-proxy.js';
import type { FaultProxy } from '../../../test/support/fault-proxy.js';
import { OCI_MEDIA_TYPES, writeOciLayout } from '../../../test/support/images.js';
import type { BuiltTag } from '../../../test/support/images.js';
import { attachCosignTag, attachReferrer, generateSigningKeys, pushJsonBlob, pushManifest, signImage } from '../../../test/support/referrers.js';
import type { Descriptor } from '../../../test/support/referrers.js';
import { startRegistry } from '../../../test/support/registry.js';
import type { RunningRegistry } from '../../../test/support/registry.js';
import { seedLayout } from '../../../test/support/skopeo.js';
import { RegistryClient } from './client.js';
import { COSIGN_SIGNATURE_ARTIFACT_TYPE, fallbackTag, listReferrers, probeReferrersApi } from './referrers.js';
import type { Referrer, RepositoryReferrers } from './referrers.js';
import { Repository } from './repository.js';

const SPDX = 'application/spdx+json';
const IN_TOTO = 'application/vnd.in-toto+json';
const REPOSITORY = 'team/app';

let layout: string;
let built: Record<string, BuiltTag>;
let registry: RunningRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let proxied: RegistryClient;
let app: Repository;
let viaProxy: Repository;
/** The signed, SBOM-carrying image and what is attached to it. */
let subject: string;
let sbom: Descriptor;
let provenance: Descriptor;
let signature: Descriptor & { tag: string };
let sbomTag: Descriptor & { tag: string };

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-referrers-test-'));
  [built, registry] = await Promise.all([
    writeOciLayout(layout, {
      single: { layers: [{ size: 512, seed: 'referrers-single' }] },
      multi: {
        platforms: [
          { layers: [{ size: 512, seed: 'referrers-amd64' }], platform: { os: 'linux', architecture: 'amd64' } },
          { layers: [{ size: 512, seed: 'referrers-arm64' }], platform: { os: 'linux', architecture: 'arm64' } },
        ],
      },
    }),
    startRegistry(),
  ]);
  await seedLayout(layout, ['single', 'multi'], { host: registry.host, repository: REPOSITORY });
  proxy = await startFaultProxy(registry.host);
  [client, proxied] = await Promise.all([RegistryClient.connect({ registry: registry.host }), RegistryClient.connect({ registry: proxy.host })]);
  app = new Repository(client, REPOSITORY, ['pull']);
  viaProxy = new Repository(proxied, REPOSITORY, ['pull']);

  subject = built.single!.digest;
  sbom = await attachReferrer(registry.host, REPOSITORY, subject, { artifactType: SPDX, content: Buffer.from('{"spdxVersion":"SPDX-2.3"}'), mediaType: SPDX });
  provenance = await attachReferrer(registry.host, REPOSITORY, subject, {
    artifactType: IN_TOTO,
    content: Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}'),
    mediaType: IN_TOTO,
    annotations: { 'org.opencontainers.image.created': '2024-05-01T00:00:00Z' },
  });
  signature = await signImage(registry.host, REPOSITORY, subject, generateSigningKeys().privateKey);
  sbomTag = await attachCosignTag(registry.host, REPOSITORY, subject, 'sbom', Buffer.from('{"spdxVersion":"SPDX-2.3"}'), SPDX);
});

afterEach(() => proxy.clearRules());

afterAll(async () => {
  await Promise.all([client?.close(), proxied?.close()]);
  await proxy?.stop();
  await registry?.stop();
  await rm(layout, { recursive: true, force: true });
});

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** What the probe asks about: the digest of `{}`, the OCI empty descriptor's content. */
const PROBE_SUBJECT = `sha256:${createHash('sha256').update('{}').digest('hex')}`;
const apiPath = (digest: string): string => `/v2/${REPOSITORY}/referrers/${digest}`;

function found(descriptor: Descriptor, via: Referrer['via']): Referrer {
  return { ...descriptor, via };
}

function cosignFound(descriptor: Descriptor & { tag: string }, artifactType?: string): Referrer {
  return { digest: descriptor.digest, mediaType: descriptor.mediaType, size: descriptor.size, ...(artifactType ? { artifactType } : {}), via: 'cosign-tag', tag: descriptor.tag };
}

/** The proxy answers the referrers API for `pathAndQuery` with an index of `entries`, as a registry with the API would. */
function serveReferrers(pathAndQuery: string, entries: Descriptor[], headers: Record<string, string> = {}): void {
  proxy.addRule({
    method: 'GET',
    path: new RegExp(`^${escape(pathAndQuery)}$`),
    fault: {
      type: 'status',
      status: 200,
      headers: { 'content-type': OCI_MEDIA_TYPES.index, ...headers },
      body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.index, manifests: entries }),
    },
    times: 1,
  });
}

function requestsFor(prefix: string): { path: string; status: number }[] {
  return proxy.requests.filter((request) => request.path.startsWith(prefix)).map(({ path, status }) => ({ path, status }));
}

describe('listReferrers on distribution 2.8 (no referrers API: the fallback tag schema)', () => {
  it('finds the attached artifacts from the fallback index after the API answers 404, then cosign tags', async () => {
    proxy.requests.length = 0;
    const referrers = await listReferrers(viaProxy, subject);
    expect(referrers).toEqual([
      found(sbom, 'fallback-tag'),
      found(provenance, 'fallback-tag'),
      cosignFound(signature, COSIGN_SIGNATURE_ARTIFACT_TYPE),
      cosignFound(sbomTag),
    ]);
    expect(referrers[1]!.annotations).toEqual({ 'org.opencontainers.image.created': '2024-05-01T00:00:00Z' });
    expect(requestsFor(apiPath(subject))).toEqual([{ path: apiPath(subject), status: 404 }]);
    const tag = fallbackTag(subject);
    expect(requestsFor(`/v2/${REPOSITORY}/manifests/${tag}`).map(({ path, status }) => [path.slice(path.indexOf(tag)), status]).sort()).toEqual([
      [tag, 200],
      [`${tag}.att`, 404],
      [`${tag}.sbom`, 200],
      [`${tag}.sig`, 200],
    ]);
  });

  it('with the tags known and the API known absent, asks only for the fallback and cosign tags listed', async () => {
    const tag = fallbackTag(subject);
    const known = { tags: new Set(['single', tag, `${tag}.sig`]) };
    proxy.requests.length = 0;
    expect(await listReferrers(viaProxy, subject, { known })).toEqual([found(sbom, 'fallback-tag'), found(provenance, 'fallback-tag'), cosignFound(signature, COSIGN_SIGNATURE_ARTIFACT_TYPE)]);
    expect(known).toMatchObject({ api: false });
    const asked = () => proxy.requests.map(({ path }) => path.slice(`/v2/${REPOSITORY}/`.length)).sort();
    expect(asked()).toEqual([`manifests/${tag}`, `manifests/${tag}.sig`, `referrers/${subject}`]);

    // The API is not probed again; a subject with no tag listed costs no request at all.
    proxy.requests.length = 0;
    expect(await listReferrers(viaProxy, built.multi!.digest, { known })).toEqual([]);
    expect(proxy.requests).toEqual([]);
  });

  it('probes the API once for listings started together', async () => {
    const known = { tags: new Set<string>() };
    proxy.requests.length = 0;
    await Promise.all([subject, built.multi!.digest, ...built.multi!.manifests].map((digest) => listReferrers(viaProxy, digest, { known })));
    expect(proxy.requests.filter(({ path }) => path.includes('/referrers/'))).toHaveLength(1);
  });

  it('learns from a probe, sent before any listing, that the API is absent: the listings then ask only the tags', async () => {
    const known: RepositoryReferrers = { tags: new Set([fallbackTag(subject)]) };
    proxy.requests.length = 0;
    probeReferrersApi(viaProxy, known);
    probeReferrersApi(viaProxy, known);
    await known.probe;
    expect(known.api).toBe(false);
    expect(proxy.requests.map(({ path, status }) => ({ path, status }))).toEqual([{ path: apiPath(PROBE_SUBJECT), status: 404 }]);
    proxy.requests.length = 0;
    expect(await listReferrers(viaProxy, subject, { known })).toEqual([found(sbom, 'fallback-tag'), found(provenance, 'fallback-tag')]);
    expect(proxy.requests.filter(({ path }) => path.includes('/referrers/'))).toEqual([]);
  });

  it('finds none for a manifest nothing refers to', async () => {
    expect(await listReferrers(app, built.multi!.digest)).toEqual([]);
  });

  it('keeps only the asked artifact types, one or several', async () => {
    expect(await listReferrers(app, subject, { artifactTypes: [SPDX] })).toEqual([found(sbom, 'fallback-tag')]);
    expect(await listReferrers(app, subject, { artifactTypes: [IN_TOTO, COSIGN_SIGNATURE_ARTIFACT_TYPE] })).toEqual([
      found(provenance, 'fallback-tag'),
      cosignFound(signature, COSIGN_SIGNATURE_ARTIFACT_TYPE),
    ]);
    expect(await listReferrers(app, subject, { artifactTypes: [] })).toHaveLength(4);
  });

  it('fails with a non-transient INVALID_MANIFEST when the fallback tag holds an image manifest', async () => {
    const platform = built.multi!.manifests[0]!;
    const config = await pushJsonBlob(registry.host, REPOSITORY, {}, 'application/vnd.oci.empty.v1+json');
    await pushManifest(registry.host, REPOSITORY, { schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.manifest, config, layers: [] }, fallbackTag(platform));
    const error = await failure(listReferrers(app, platform));
    expect(error.code).toBe('INVALID_MANIFEST');
    expect(error.transient).toBe(false);
    expect(error.message).toBe(
      `list referrers of ${registry.host}/${REPOSITORY}@${platform}: fallback index ${registry.host}/${REPOSITORY}:${fallbackTag(platform)}: is an image manifest, not an index`,
    );
  });

  it('refuses a subject that is not a digest with INVALID_REFERENCE', async () => {
    expect((await failure(listReferrers(app, 'latest'))).code).toBe('INVALID_REFERENCE');
  });

  it('says which cosign tag of which subject failed, transient for a 503', async () => {
    proxy.addRule({ method: 'HEAD', path: /\.att$/, fault: { type: 'status', status: 503 }, times: 1 });
    const error = await failure(listReferrers(viaProxy, subject));
    expect(error.code).toBe('SERVER_ERROR');
    expect(error.transient).toBe(true);
    expect(error.message).toMatch(new RegExp(`^list referrers of ${escape(proxy.host)}/${REPOSITORY}@${subject} \\(cosign tag ${fallbackTag(subject)}\\.att\\): HEAD manifest .*: 503`));
  });
});

describe('listReferrers through the fault proxy answering the referrers API (a registry with OCI 1.1)', () => {
  const sbomEntry = (): Descriptor => ({ ...sbom, annotations: { 'org.example.kind': 'sbom' } });

  it('lists what the API answers, not the fallback index, and cosign tags too', async () => {
    serveReferrers(apiPath(subject), [sbomEntry()]);
    proxy.requests.length = 0;
    expect(await listReferrers(viaProxy, subject)).toEqual([
      found(sbomEntry(), 'api'),
      cosignFound(signature, COSIGN_SIGNATURE_ARTIFACT_TYPE),
      cosignFound(sbomTag),
    ]);
    expect(proxy.requests.some((request) => request.path === `/v2/${REPOSITORY}/manifests/${fallbackTag(subject)}`)).toBe(false);
  });

  it('learns from a probe that the API is there, and then asks it for each subject', async () => {
    serveReferrers(apiPath(PROBE_SUBJECT), []);
    serveReferrers(apiPath(subject), [sbomEntry()]);
    const known: RepositoryReferrers = { tags: new Set() };
    probeReferrersApi(viaProxy, known);
    await known.probe;
    expect(known.api).toBe(true);
    proxy.requests.length = 0;
    expect(await listReferrers(viaProxy, subject, { known })).toEqual([found(sbomEntry(), 'api')]);
    expect(requestsFor(`/v2/${REPOSITORY}/referrers/`)).toEqual([{ path: apiPath(subject), status: 200 }]);
  });

  it('asks for one artifact type with ?artifactType= and keeps what a registry that applied the filter answers', async () => {
    const query = `${apiPath(subject)}?artifactType=${encodeURIComponent(SPDX)}`;
    serveReferrers(query, [sbomEntry()], { 'oci-filters-applied': 'artifactType' });
    proxy.requests.length = 0;
    expect(await listReferrers(viaProxy, subject, { artifactTypes: [SPDX] })).toEqual([found(sbomEntry(), 'api')]);
    expect(requestsFor(apiPath(subject))).toEqual([{ path: query, status: 200 }]);
  });

  it('filters itself when the registry did not apply the filter (no OCI-Filters-Applied)', async () => {
    serveReferrers(`${apiPath(subject)}?artifactType=${encodeURIComponent(SPDX)}`, [provenance, sbomEntry()]);
    expect(await listReferrers(viaProxy, subject, { artifactTypes: [SPDX] })).toEqual([found(sbomEntry(), 'api')]);
  });

  it('asks for all and filters itself when several types are asked', async () => {
    serveReferrers(apiPath(subject), [provenance, sbomEntry()], { 'oci-filters-applied': 'artifactType' });
    proxy.requests.length = 0;
    expect(await listReferrers(viaProxy, subject, { artifactTypes: [SPDX, 'application/vnd.example'] })).toEqual([found(sbomEntry(), 'api')]);
    expect(requestsFor(apiPath(subject)).map(({ path }) => path)).toEqual([apiPath(subject)]);
  });

  it('follows Link pages and lists each referrer once, in order (the signature listed by the API too)', async () => {
    const second = `${apiPath(subject)}?page=2`;
    const third = `${apiPath(subject)}?page=3`;
    serveReferrers(apiPath(subject), [sbom], { link: `<${second}>; rel="next"` });
    // An absolute Link on the same origin is fine too; sbom, listed again, is listed once.
    serveReferrers(second, [provenance, sbom], { link: `<${proxy.url}${third}>; rel="next"` });
    serveReferrers(third, [{ digest: signature.digest, mediaType: signature.mediaType, size: signature.size }]);
    proxy.requests.length = 0;
    expect(await listReferrers(viaProxy, subject)).toEqual([
      found(sbom, 'api'),
      found(provenance, 'api'),
      { digest: signature.digest, mediaType: signature.mediaType, size: signature.size, via: 'api' },
      cosignFound(sbomTag),
    ]);
    expect(requestsFor(apiPath(subject)).map(({ path }) => path)).toEqual([apiPath(subject), second, third]);
  });

  it.each([
    ['a body that is not JSON', '<html>oops</html>', /referrers index: manifest is not JSON/],
    ['an image manifest', JSON.stringify({ schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.manifest, config: {}, layers: [] }), /referrers index: manifest config\.mediaType is missing/],
    ['an entry without a digest', JSON.stringify({ schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.index, manifests: [{ mediaType: OCI_MEDIA_TYPES.manifest, size: 2 }] }), /manifests\[0\]\.digest undefined is not a digest/],
    ['annotations that are not strings', JSON.stringify({ schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.index, manifests: [{ ...sbomTagEntry(), annotations: { n: 1 } }] }), /manifests\[0\]\.annotations is not an object of strings/],
  ])('fails with a non-transient INVALID_MANIFEST for %s', async (_name, body, problem) => {
    proxy.addRule({ method: 'GET', path: /\/referrers\//, fault: { type: 'status', status: 200, headers: { 'content-type': OCI_MEDIA_TYPES.index }, body }, times: 1 });
    const error = await failure(listReferrers(viaProxy, subject));
    expect(error.code).toBe('INVALID_MANIFEST');
    expect(error.transient).toBe(false);
    expect(error.message.startsWith(`list referrers of ${proxy.host}/${REPOSITORY}@${subject}: `)).toBe(true);
    expect(error.message).toMatch(problem);
  });

  it('fails with a transient SERVER_ERROR naming the subject when the API answers 500', async () => {
    proxy.addRule({ method: 'GET', path: /\/referrers\//, fault: { type: 'status', status: 500, body: 'boom' }, times: 1 });
    const error = await failure(listReferrers(viaProxy, subject));
    expect(error.code).toBe('SERVER_ERROR');
    expect(error.transient).toBe(true);
    expect(error.message).toBe(`list referrers of ${proxy.host}/${REPOSITORY}@${subject}: 500 boom`);
  });
});

function sbomTagEntry(): { mediaType: string; digest: string; size: number } {
  // A fixed, well-formed descriptor: it.each's table is built before beforeAll runs.
  return { mediaType: OCI_MEDIA_TYPES.manifest, digest: `sha256:${'a'.repeat(64)}`, size: 2 };
}
