import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReplicationInput } from '../src/machines/replication.js';
import { ferry, replicate, replicationInput } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { OCI_MEDIA_TYPES } from './support/images.js';
import {
  attachCosignTag,
  attachReferrer,
  digestTag,
  EMPTY_DESCRIPTOR,
  fallbackIndex,
  fetchManifest,
  generateSigningKeys,
  pushBlob,
  pushManifest,
  pushSignature,
  signImage,
  signPayload,
  simpleSigningPayload,
  verifySignature,
  type Descriptor,
} from './support/referrers.js';
import { listTags } from './support/skopeo.js';

const REPOSITORY = 'team/app';
const SPDX = 'application/spdx+json';
const IN_TOTO = 'application/vnd.in-toto+json';
/** A signature of the SBOM, attached to the SBOM as notation does. */
const NOTATION = 'application/vnd.cncf.notary.signature';

let fixture: ReplicationFixture;
let keys: { privateKey: KeyObject; publicKey: KeyObject };
let dir: string;
/** What is attached on the source to the tag `1.0`: a cosign signature, an SBOM and provenance (fallback index), the SBOM's signature, a cosign attestation. */
let attached: { signature: Descriptor & { tag: string }; sbom: Descriptor; provenance: Descriptor; sbomSignature: Descriptor; attestation: Descriptor & { tag: string } };
/** The multi-arch index's signature and the SBOM of its first platform. */
let multi: { signature: Descriptor & { tag: string }; platformSbom: Descriptor };

const digest = (tag: string): string => fixture.built[tag]!.digest;
const sourceHost = (): string => fixture.source.host;

beforeAll(async () => {
  const layer = (seed: string) => ({ layers: [{ size: 2_000, seed }] });
  fixture = await replicationFixture(
    {
      '1.0': layer('referrers-1.0'),
      '2.0': layer('referrers-2.0'),
      late: layer('referrers-late'),
      api: layer('referrers-api'),
      unsigned: layer('referrers-unsigned'),
      tampered: layer('referrers-tampered'),
      'other-key': layer('referrers-other-key'),
      multi: {
        platforms: [
          { layers: [{ size: 2_000, seed: 'referrers-amd64' }], platform: { os: 'linux', architecture: 'amd64' } },
          { layers: [{ size: 2_000, seed: 'referrers-arm64' }], platform: { os: 'linux', architecture: 'arm64' } },
        ],
      },
    },
    REPOSITORY,
  );
  keys = generateSigningKeys();
  dir = await mkdtemp(join(tmpdir(), 'ferry-referrers-'));
  const host = sourceHost();
  const signature = await signImage(host, REPOSITORY, digest('1.0'), keys.privateKey);
  const sbom = await attachReferrer(host, REPOSITORY, digest('1.0'), { artifactType: SPDX, content: Buffer.from('{"spdxVersion":"SPDX-2.3","name":"app-1.0"}'), mediaType: SPDX });
  const provenance = await attachReferrer(host, REPOSITORY, digest('1.0'), {
    artifactType: IN_TOTO,
    content: Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}'),
    mediaType: IN_TOTO,
    annotations: { 'org.opencontainers.image.created': '2026-11-30T00:00:00Z' },
  });
  const sbomSignature = await attachReferrer(host, REPOSITORY, sbom.digest, { artifactType: NOTATION, content: Buffer.from('notation-signature-of-the-sbom'), mediaType: 'application/jose+json' });
  const attestation = await attachCosignTag(host, REPOSITORY, digest('1.0'), 'att', Buffer.from('{"payloadType":"application/vnd.in-toto+json"}'), 'application/vnd.dsse.envelope.v1+json');
  attached = { signature, sbom, provenance, sbomSignature, attestation };
  multi = {
    signature: await signImage(host, REPOSITORY, digest('multi'), keys.privateKey),
    platformSbom: await attachReferrer(host, REPOSITORY, fixture.built.multi!.manifests[0]!, { artifactType: SPDX, content: Buffer.from('{"name":"amd64"}'), mediaType: SPDX }),
  };
  await signImage(host, REPOSITORY, digest('2.0'), keys.privateKey);
  // Signed, then the payload changed: the signature no longer verifies.
  const payload = simpleSigningPayload(host, REPOSITORY, digest('tampered'));
  await pushSignature(host, REPOSITORY, digest('tampered'), Buffer.from(payload.toString().replace('container image signature', 'container image signaturE')), signPayload(payload, keys.privateKey));
  await signImage(host, REPOSITORY, digest('other-key'), generateSigningKeys().privateKey);
});

afterEach(() => fixture.clearFaults());

afterAll(async () => {
  await fixture?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function input(repository: string, overrides: Partial<ReplicationInput> = {}): ReplicationInput {
  return replicationInput(`${fixture.sourceProxy.host}/${REPOSITORY}`, `${fixture.destinationProxy.host}/${repository}`, overrides);
}

const items = (...tags: string[]) => tags.map((tag) => ({ source: tag, target: tag }));

/** The digests the destination's fallback index lists for `subject`, read without ferry. */
async function listed(repository: string, subject: string): Promise<string[]> {
  return (await fallbackIndex(fixture.destination.host, repository, subject)).map((d) => d.digest).sort();
}

/** The manifest is on the destination with exactly the source's bytes. */
async function sameBytes(repository: string, reference: string): Promise<boolean> {
  const [from, to] = await Promise.all([fetchManifest(sourceHost(), REPOSITORY, reference), fetchManifest(fixture.destination.host, repository, reference)]);
  return from !== undefined && to !== undefined && from.bytes.equals(to.bytes);
}

/** Manifest PUTs the destination received, by reference, in order. */
function manifestPuts(from: number): string[] {
  return fixture.destinationProxy.requests
    .slice(from)
    .filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'))
    .map((r) => decodeURIComponent(r.path.slice(r.path.indexOf('/manifests/') + '/manifests/'.length)));
}

describe('referrers travel with their images (distribution 2.8: the fallback tag schema and cosign tags)', () => {
  it('copies a signed, SBOM-carrying tag with every referrer, byte-exact, and it verifies at the destination', async () => {
    const repository = 'copy/single';
    const before = fixture.destinationProxy.requests.length;
    const { status, actor, events } = await replicate(input(repository, { items: items('1.0') }));
    expect(status).toBe('finished');
    expect(actor.getSnapshot().context.progress).toMatchObject({ tagsTotal: 1, tagsCopied: 1, referrersCopied: 5 });

    const host = fixture.destination.host;
    expect(await verifySignature(host, repository, digest('1.0'), keys.publicKey)).toEqual({ verified: true });
    expect(await listed(repository, digest('1.0'))).toEqual([attached.sbom.digest, attached.provenance.digest].sort());
    expect(await listed(repository, attached.sbom.digest)).toEqual([attached.sbomSignature.digest]);
    const provenanceEntry = (await fallbackIndex(host, repository, digest('1.0'))).find((d) => d.digest === attached.provenance.digest);
    expect(provenanceEntry).toMatchObject({ artifactType: IN_TOTO, annotations: { 'org.opencontainers.image.created': '2026-11-30T00:00:00Z' } });
    for (const reference of [attached.sbom.digest, attached.provenance.digest, attached.sbomSignature.digest, attached.signature.tag, attached.attestation.tag, '1.0']) {
      expect(await sameBytes(repository, reference), reference).toBe(true);
    }
    expect((await listTags({ host, repository })).sort()).toEqual(['1.0', digestTag(digest('1.0')), attached.signature.tag, attached.attestation.tag, digestTag(attached.sbom.digest)].sort());

    // The subject first (by digest), each referrer after what it refers to, the tag last.
    const puts = manifestPuts(before);
    expect(puts[0]).toBe(digest('1.0'));
    expect(puts.at(-1)).toBe('1.0');
    expect(puts.indexOf(attached.sbom.digest)).toBeLessThan(puts.indexOf(attached.sbomSignature.digest));
    expect(events.filter((e) => e.type === 'referrer.copied').map((e) => 'subject' in e && e.subject)).toEqual(expect.arrayContaining([digest('1.0'), attached.sbom.digest]));
  });

  it('copies nothing on a re-run, and a signature added since on the next one', async () => {
    const repository = 'copy/rerun';
    expect((await replicate(input(repository, { items: items('1.0', 'late') }))).status).toBe('finished');
    const before = fixture.destinationProxy.requests.length;
    const again = await replicate(input(repository, { items: items('1.0', 'late') }));
    expect(again.actor.getSnapshot().context.progress).toMatchObject({ tagsUnchanged: 2, tagsCopied: 0, referrersCopied: 0, blobsCopied: 0 });
    // The check phase's upload probe aside, nothing is written.
    expect(fixture.destinationProxy.requests.slice(before).filter((r) => r.method === 'PUT')).toEqual([]);

    await signImage(sourceHost(), REPOSITORY, digest('late'), keys.privateKey);
    const signedLater = await replicate(input(repository, { items: items('1.0', 'late') }));
    expect(signedLater.actor.getSnapshot().context.progress).toMatchObject({ tagsUnchanged: 2, tagsCopied: 0, referrersCopied: 1 });
    expect(await verifySignature(fixture.destination.host, repository, digest('late'), keys.publicKey)).toEqual({ verified: true });
  });

  it('copies a filtered repository: referrers go with the tags the filter keeps, whatever their own tags, and are counted apart', async () => {
    const repository = 'copy/filtered';
    const { status, actor } = await replicate(input(repository, { tagFilter: { include: ['1.0', 'multi'], exclude: [], syntax: 'glob' } }));
    expect(status).toBe('finished');
    expect(actor.getSnapshot().context.progress).toMatchObject({ tagsTotal: 2, tagsCopied: 2, referrersCopied: 7 });
    const tags = await listTags({ host: fixture.destination.host, repository });
    expect(tags).not.toContain('2.0');
    expect(tags).not.toContain(digestTag(digest('2.0')) + '.sig');
    expect(await verifySignature(fixture.destination.host, repository, digest('multi'), keys.publicKey)).toEqual({ verified: true });
  });

  it('copies a multi-arch index with the referrers of the index and of its platform manifests', async () => {
    const repository = 'copy/multi';
    const { status } = await replicate(input(repository, { items: items('multi') }));
    expect(status).toBe('finished');
    expect(await verifySignature(fixture.destination.host, repository, digest('multi'), keys.publicKey)).toEqual({ verified: true });
    expect(await listed(repository, fixture.built.multi!.manifests[0]!)).toEqual([multi.platformSbom.digest]);
    expect(await sameBytes(repository, multi.platformSbom.digest)).toBe(true);
  });

  it('with a platform filter, copies the referrers of the platform manifest kept, not those of the source index', async () => {
    const repository = 'copy/platform';
    const { status, actor } = await replicate(input(repository, { items: items('multi'), platforms: ['linux/amd64'] }));
    expect(status).toBe('finished');
    expect(actor.getSnapshot().context.progress).toMatchObject({ tagsCopied: 1, referrersCopied: 1 });
    const amd64 = fixture.built.multi!.manifests[0]!;
    expect((await fetchManifest(fixture.destination.host, repository, 'multi'))?.digest).toBe(amd64);
    expect(await listed(repository, amd64)).toEqual([multi.platformSbom.digest]);
    expect(await fetchManifest(fixture.destination.host, repository, multi.signature.tag)).toBeUndefined();
  });

  it('selects referrers by artifact type, and copies none with none', async () => {
    const typed = await replicate(input('copy/typed', { items: items('1.0'), referrers: [SPDX] }));
    expect(typed.actor.getSnapshot().context.progress).toMatchObject({ tagsCopied: 1, referrersCopied: 1 });
    expect(await listed('copy/typed', digest('1.0'))).toEqual([attached.sbom.digest]);
    expect(await fetchManifest(fixture.destination.host, 'copy/typed', attached.signature.tag)).toBeUndefined();

    const none = await replicate(input('copy/none', { items: items('1.0'), referrers: 'none' }));
    expect(none.actor.getSnapshot().context.progress).toMatchObject({ tagsCopied: 1, referrersCopied: 0 });
    expect(await listTags({ host: fixture.destination.host, repository: 'copy/none' })).toEqual(['1.0']);
  });

  it('lists the referrers in a dry run and writes nothing', async () => {
    const before = fixture.destinationProxy.requests.length;
    const { status, events } = await replicate(input('copy/dry', { items: items('1.0'), dryRun: true }));
    expect(status).toBe('finished');
    const planned = events.find((e) => e.type === 'tag.planned');
    expect(planned && 'plan' in planned && planned.plan.referrers.filter((r) => r.subject).map((r) => r.digest).sort()).toEqual(
      [attached.signature.digest, attached.sbom.digest, attached.provenance.digest, attached.sbomSignature.digest, attached.attestation.digest].sort(),
    );
    expect(fixture.destinationProxy.requests.slice(before).filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);
  });

  it('pushes nothing of a referrer before its subject: a refused referrer fails its tag, leaving the subject without the tag, and a re-run completes it', async () => {
    const repository = 'copy/halfway';
    fixture.destinationProxy.addRule({ method: 'PUT', path: new RegExp(`/manifests/${attached.provenance.digest}$`), fault: { type: 'status', status: 400, body: '{"errors":[{"code":"MANIFEST_INVALID","message":"no"}]}' }, times: 1 });
    const failed = await replicate(input(repository, { items: items('1.0') }));
    // The tag fails alone, naming the referrer the destination refused.
    expect(failed.status).toBe('finished');
    expect(failed.actor.getSnapshot().context.progress).toMatchObject({ tagsCopied: 0, tagsFailed: 1 });
    expect(failed.events.find((e) => e.type === 'tag.failed')).toMatchObject({ item: { target: '1.0' }, error: { code: 'INVALID_MANIFEST', message: expect.stringContaining(attached.provenance.digest) } });
    // No referrer without its subject, and no tag without its referrers.
    const host = fixture.destination.host;
    expect(await fetchManifest(host, repository, digest('1.0'))).toBeDefined();
    expect(await fetchManifest(host, repository, '1.0')).toBeUndefined();

    const again = await replicate(input(repository, { items: items('1.0') }));
    expect(again.status).toBe('finished');
    expect(await listed(repository, digest('1.0'))).toEqual([attached.sbom.digest, attached.provenance.digest].sort());
    expect(await verifySignature(host, repository, digest('1.0'), keys.publicKey)).toEqual({ verified: true });
  });

  it('keeps what others listed in the destination fallback index', async () => {
    const repository = 'copy/merge';
    await replicate(input(repository, { items: items('1.0'), referrers: 'none' }));
    const theirs = await attachReferrer(fixture.destination.host, repository, digest('1.0'), { artifactType: 'application/vnd.example.scan', content: Buffer.from('{"scan":"clean"}'), mediaType: 'application/json' });
    const { actor } = await replicate(input(repository, { items: items('1.0') }));
    expect(actor.getSnapshot().context.progress).toMatchObject({ tagsUnchanged: 1, referrersCopied: 5 });
    expect(await listed(repository, digest('1.0'))).toEqual([attached.sbom.digest, attached.provenance.digest, theirs.digest].sort());
  });
});

describe('referrers through the fault proxy answering the referrers API (a registry with OCI 1.1)', () => {
  /** An SBOM pushed by digest only, as a client does on a registry with the API: no fallback index. */
  async function untaggedSbom(subject: string): Promise<Descriptor> {
    const host = sourceHost();
    const [, layer] = await Promise.all([pushBlob(host, REPOSITORY, Buffer.from('{}'), EMPTY_DESCRIPTOR.mediaType), pushBlob(host, REPOSITORY, Buffer.from('{"name":"api"}'), SPDX)]);
    const subjectManifest = (await fetchManifest(host, REPOSITORY, subject))!;
    const manifest = await pushManifest(host, REPOSITORY, {
      schemaVersion: 2,
      mediaType: OCI_MEDIA_TYPES.manifest,
      artifactType: SPDX,
      config: EMPTY_DESCRIPTOR,
      layers: [layer],
      subject: { mediaType: subjectManifest.mediaType, digest: subject, size: subjectManifest.bytes.length },
    });
    return { ...manifest, artifactType: SPDX };
  }

  it('finds referrers from the source API, and on a destination that indexes them (OCI-Subject) writes no fallback index', async () => {
    const sbom = await untaggedSbom(digest('api'));
    const answer = { type: 'status' as const, status: 200, headers: { 'content-type': OCI_MEDIA_TYPES.index }, body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.index, manifests: [sbom] }) };
    fixture.sourceProxy.addRule({ method: 'GET', path: new RegExp(`/referrers/${digest('api')}$`), fault: answer });
    fixture.sourceProxy.addRule({ method: 'GET', path: /\/referrers\//, fault: { ...answer, body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.index, manifests: [] }) } });

    const toFallback = await replicate(input('api/fallback', { items: items('api') }));
    expect(toFallback.actor.getSnapshot().context.progress).toMatchObject({ tagsCopied: 1, referrersCopied: 1 });
    expect(await listed('api/fallback', digest('api'))).toEqual([sbom.digest]);

    fixture.destinationProxy.addRule({ method: 'PUT', path: new RegExp(`/manifests/${sbom.digest}$`), fault: { type: 'addHeaders', headers: { 'oci-subject': digest('api') } } });
    const indexed = await replicate(input('api/indexed', { items: items('api') }));
    expect(indexed.actor.getSnapshot().context.progress).toMatchObject({ tagsCopied: 1, referrersCopied: 1 });
    expect(await sameBytes('api/indexed', sbom.digest)).toBe(true);
    expect(await fetchManifest(fixture.destination.host, 'api/indexed', digestTag(digest('api')))).toBeUndefined();
  });
});

describe('--require-signature: verify before copy, fail closed', () => {
  it('copies the signed images and refuses the unsigned, the tampered and those signed with another key, saying why', async () => {
    const repository = 'verify/policy';
    const key = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const { status, actor, events } = await replicate(input(repository, { items: items('1.0', 'unsigned', 'tampered', 'other-key', 'multi'), requireSignature: { key, source: 'cosign.pub' } }));
    expect(status).toBe('finished');
    expect(actor.getSnapshot().context.progress).toMatchObject({ tagsTotal: 5, tagsCopied: 2, tagsRefused: 3 });
    const refused = Object.fromEntries(events.flatMap((e) => (e.type === 'tag.refused' ? [[e.item.target, e.reason]] : [])));
    expect(refused.unsigned).toMatch(/is not signed \(no sha256-[0-9a-f]{64}\.sig\)/);
    expect(refused.tampered).toMatch(/does not verify with the key/);
    expect(refused['other-key']).toMatch(/does not verify with the key/);
    expect((await listTags({ host: fixture.destination.host, repository })).filter((t) => !t.startsWith('sha256-')).sort()).toEqual(['1.0', 'multi']);
  });

  it('ferry copy: copies a signed image, prints its referrers, and exits 1 naming an unsigned one', async () => {
    const pub = join(dir, 'cosign.pub');
    await writeFile(pub, keys.publicKey.export({ type: 'spki', format: 'pem' }));
    const src = `${fixture.sourceProxy.host}/${REPOSITORY}`;
    const dst = `${fixture.destinationProxy.host}/verify/cli`;
    const signed = await ferry(['copy', `${src}:1.0`, `${dst}:1.0`, '--require-signature', pub]);
    expect(signed.stderr).toBe('');
    expect(signed.code).toBe(0);
    expect(signed.stdout).toContain(`referrer   1.0  ${attached.sbom.digest}  ${SPDX}\n`);
    expect(signed.stdout).toContain(`referrer   1.0  ${attached.sbomSignature.digest}  ${NOTATION} of ${attached.sbom.digest}\n`);
    expect(signed.stdout).toMatch(/finished: 1 tag \(1 copied, 0 unchanged\); 5 referrers copied;/);

    const unsigned = await ferry(['copy', `${src}:unsigned`, `${dst}:unsigned`, '--require-signature', pub]);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stdout).toMatch(/refused +unsigned +sha256:[0-9a-f]{64} +.*is not signed/);
    expect(unsigned.stdout).toMatch(/^finished: 1 tag \(0 copied, 0 unchanged, 1 refused\);/m);
  });

  it('refuses a key file that is not an ECDSA P-256 public key, and an artifact type that is not one, as bad usage', async () => {
    const bad = join(dir, 'not-a-key.pub');
    await writeFile(bad, 'hello');
    const src = `${fixture.sourceProxy.host}/${REPOSITORY}:1.0`;
    const dst = `${fixture.destinationProxy.host}/verify/usage:1.0`;
    const key = await ferry(['copy', src, dst, '--require-signature', bad]);
    expect(key.code).toBe(2);
    expect(key.stderr).toContain(`--require-signature ${bad} is not a PEM public key`);
    const missing = await ferry(['copy', src, dst, '--require-signature', join(dir, 'absent.pub')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read');
    const type = await ferry(['copy', src, dst, '--referrers', 'spdx']);
    expect(type.code).toBe(2);
    expect(type.stderr).toContain('--referrers "spdx" is not an artifact type');
  });
});
