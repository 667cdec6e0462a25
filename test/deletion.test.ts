import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toPromise } from 'xstate';
import { DEFAULT_RETRY } from '../src/machines/retry.js';
import type { DeletionInput } from '../src/machines/deletion.js';
import { jobPhase, jobStatus } from '../src/machines/status.js';
import { createDeletion, type JobEvent } from '../src/services/interpreter.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { environment } from './support/ferry.js';
import { writeOciLayout, type BuiltTag } from './support/images.js';
import { attachCosignTag, attachReferrer, digestTag, EMPTY_DESCRIPTOR, fallbackIndex, fetchManifest, generateSigningKeys, pushBlob, pushManifest, signImage } from './support/referrers.js';
import { startRegistry, type RunningRegistry } from './support/registry.js';
import { listTags, seedLayout } from './support/skopeo.js';
import { globFilter } from '../src/services/tag-filter.js';
import type { ReferrerDeleted } from '../src/actors/delete.js';

let layout: string;
let registry: RunningRegistry;
let proxy: FaultProxy;
let built: Record<string, BuiltTag>;
const TAGS = ['a', 'b', 'c', 'd'];
const keys = generateSigningKeys();

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-deletion-'));
  [built, registry] = await Promise.all([
    writeOciLayout(layout, {
      ...Object.fromEntries(TAGS.map((t) => [t, { layers: [{ size: 1000, seed: `delete-${t}` }] }])),
      multi: { platforms: ['amd64', 'arm64'].map((architecture) => ({ layers: [{ size: 1000, seed: `delete-multi-${architecture}` }], platform: { os: 'linux', architecture } })) },
    }),
    startRegistry(),
  ]);
  proxy = await startFaultProxy(registry.host);
});

afterEach(() => proxy.clearRules());

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  await rm(layout, { recursive: true, force: true });
});

async function seeded(repository: string, tags = TAGS): Promise<DeletionInput> {
  await seedLayout(layout, tags, { host: registry.host, repository });
  return { destination: { registry: proxy.host, repository }, tagFilter: globFilter([]), concurrency: 4, retry: { ...DEFAULT_RETRY, baseDelayMs: 20, maxDelayMs: 50 } };
}

const DENIED = { type: 'status', status: 403, body: '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}' } as const;

async function run(input: DeletionInput) {
  const events: JobEvent[] = [];
  const statuses: string[] = [];
  const actor = createDeletion(input, environment(), { onEvent: (e) => events.push(e) });
  actor.subscribe((s) => statuses.at(-1) !== jobStatus(s) && statuses.push(jobStatus(s)));
  actor.start();
  actor.send({ type: 'START' });
  await toPromise(actor);
  return { snapshot: actor.getSnapshot(), events, statuses };
}

describe('deletion job', () => {
  it('deletes the given tags, and counts a tag already gone as done', async () => {
    const input = await seeded('delete/given');
    const { snapshot, events } = await run({ ...input, tags: ['a', 'c', 'gone'] });
    expect(jobStatus(snapshot)).toBe('finished');
    expect(snapshot.context.progress).toEqual({ tagsTotal: 3, tagsDeleted: 2, tagsAbsent: 1, referrersDeleted: 0 });
    expect(events.filter((e) => e.type === 'tag.deleted').map((e) => (e as { reference: string }).reference).sort()).toEqual(['a', 'c', 'gone']);
    expect((await listTags({ host: registry.host, repository: 'delete/given' })).sort()).toEqual(['b', 'd']);
  });

  it('deletes every tag that passes the filter', async () => {
    const input = await seeded('delete/filtered');
    const { snapshot } = await run({ ...input, tagFilter: globFilter(['*', '!d']) });
    expect(jobStatus(snapshot)).toBe('finished');
    expect(await listTags({ host: registry.host, repository: 'delete/filtered' })).toEqual(['d']);
  });

  it('finishes with nothing to do on a repository that does not exist', async () => {
    const { snapshot } = await run({ destination: { registry: proxy.host, repository: 'delete/never' }, tagFilter: globFilter([]), concurrency: 4, retry: DEFAULT_RETRY });
    expect(jobStatus(snapshot)).toBe('finished');
    expect(snapshot.context.progress.tagsTotal).toBe(0);
  });

  it('retries a transient failure and finishes', async () => {
    const input = await seeded('delete/retried');
    proxy.addRule({ method: 'DELETE', path: /\/manifests\//, times: 1, fault: { type: 'status', status: 503 } });
    const { snapshot, statuses } = await run(input);
    expect(statuses).toEqual(['pending', 'running', 'retrying', 'running', 'finished']);
    expect(jobStatus(snapshot)).toBe('finished');
    expect(await listTags({ host: registry.host, repository: 'delete/retried' })).toEqual([]);
  });

  it('ends in error on a permanent failure, saying what failed', async () => {
    const input = await seeded('delete/denied');
    proxy.addRule({ method: 'DELETE', path: /\/manifests\//, fault: DENIED });
    const { snapshot } = await run({ ...input, tags: ['a'] });
    expect(jobStatus(snapshot)).toBe('error');
    expect(snapshot.context.error?.message).toMatch(/^DELETE manifest 127\.0\.0\.1:\d+\/delete\/denied@sha256:[0-9a-f]{64}: 403 DENIED: requested access/);
  });

  it('stops during delete, aborting the request under way', async () => {
    const input = await seeded('delete/stopped');
    const held = proxy.hold({ method: 'DELETE', path: /\/manifests\// });
    const actor = createDeletion({ ...input, tags: ['a'] }, environment());
    actor.start();
    actor.send({ type: 'START' });
    const index = await held.arrived;
    expect(jobPhase(actor.getSnapshot())).toBe('delete');
    actor.send({ type: 'STOP' });
    expect(jobStatus(actor.getSnapshot())).toBe('stopped');
    await aborted(index);
    held.release();
    expect((await listTags({ host: registry.host, repository: 'delete/stopped' })).sort()).toEqual(TAGS);
  });
});

/** What cosign and oras leave around an image on a registry without the referrers API. */
interface Referred {
  subject: string;
  /** oras: an SBOM by digest, listed by the subject's fallback index. */
  sbom: string;
  /** oras: a signature of the SBOM, a referrer's referrer. */
  sbomSignature: string;
  /** cosign: `sha256-<sbom>.sig`. */
  sbomCosignSignature: string;
  /** cosign: `sha256-<subject>.sig`. */
  signature: string;
  /** cosign: `sha256-<subject>.sbom`. */
  cosignSbom: string;
  /** Each referrer's subject, referrers in the order ferry meets them. */
  subjects: Map<string, string>;
  /** The fallback indexes of the subject and of the SBOM. */
  fallbacks: string[];
  /** The tags all of these are listed under. */
  tags: string[];
}

/** Pushed one after another: oras updates a fallback index by read-modify-write. */
async function attachAll(repository: string, subject: string): Promise<Referred> {
  const host = registry.host;
  const sbom = (await attachReferrer(host, repository, subject, { artifactType: 'application/spdx+json', content: Buffer.from(`{"spdxVersion":"SPDX-2.3","name":"${subject}"}`), mediaType: 'application/spdx+json' })).digest;
  const bundle = 'application/vnd.dev.sigstore.bundle.v0.3+json';
  const sbomSignature = (await attachReferrer(host, repository, sbom, { artifactType: bundle, content: Buffer.from(`{"signed":"${sbom}"}`), mediaType: bundle })).digest;
  const sbomCosignSignature = (await signImage(host, repository, sbom, keys.privateKey)).digest;
  const signature = (await signImage(host, repository, subject, keys.privateKey)).digest;
  const cosignSbom = (await attachCosignTag(host, repository, subject, 'sbom', Buffer.from(`{"bomFormat":"CycloneDX","subject":"${subject}"}`), 'application/vnd.cyclonedx+json')).digest;
  const fallbacks = await Promise.all([subject, sbom].map(async (digest) => (await fetchManifest(host, repository, digestTag(digest)))!.digest));
  return {
    subject, sbom, sbomSignature, sbomCosignSignature, signature, cosignSbom, fallbacks,
    subjects: new Map([[sbomSignature, sbom], [sbomCosignSignature, sbom], [sbom, subject], [signature, subject], [cosignSbom, subject]]),
    tags: [digestTag(subject), `${digestTag(subject)}.sig`, `${digestTag(subject)}.sbom`, digestTag(sbom), `${digestTag(sbom)}.sig`],
  };
}

/** Those of `digests` the registry still has, asked directly, in their order. */
async function presentOf(repository: string, digests: string[]): Promise<string[]> {
  const found = await Promise.all(digests.map(async (digest) => (await fetchManifest(registry.host, repository, digest)) !== undefined));
  return digests.filter((_, i) => found[i]);
}

/** Referrers still there whose subject is gone. */
async function orphans(repository: string, { subjects }: Referred): Promise<string[]> {
  const present = new Set(await presentOf(repository, [...new Set([...subjects.keys(), ...subjects.values()])]));
  return [...subjects].filter(([referrer, subject]) => present.has(referrer) && !present.has(subject)).map(([referrer]) => referrer);
}

/** The digests the registry accepted DELETEs of, since request `from`, in order. */
function deletedSince(from: number): string[] {
  return proxy.requests.slice(from).filter((r) => r.method === 'DELETE' && r.status === 202).map((r) => r.path.replace(/^.*\/manifests\//, ''));
}

function expectBefore(order: string[], first: string, then: string): void {
  expect(order).toContain(first);
  expect(order.indexOf(first), `${first} deleted before ${then}`).toBeLessThan(order.indexOf(then));
}

const deletedReferrers = (events: JobEvent[]) => events.filter((e): e is ReferrerDeleted => e.type === 'referrer.deleted');

async function aborted(request: number): Promise<void> {
  for (let i = 0; i < 50 && !proxy.requests[request]!.aborted; i++) await new Promise((r) => setTimeout(r, 20));
  expect(proxy.requests[request]!.aborted).toBe(true);
}

/** Image `a` alone, with all of attachAll's referrers, and the input that deletes it. */
async function signedImage(repository: string): Promise<{ input: DeletionInput; a: string; referred: Referred }> {
  const input = await seeded(repository, ['a']);
  const a = built.a!.digest;
  return { input: { ...input, tags: ['a'] }, a, referred: await attachAll(repository, a) };
}

describe('deletion job with referrers', () => {
  it("deletes an image's referrers before it, a referrer's referrers before the referrer, and leaves another image's", async () => {
    const repository = 'delete/referrers';
    const input = await seeded(repository);
    const [a, b, c] = [built.a!.digest, built.b!.digest, built.c!.digest];
    const referred = await attachAll(repository, a);
    const other = await attachAll(repository, b);
    const from = proxy.requests.length;
    const { snapshot, events } = await run({ ...input, tagFilter: globFilter(['*', '!b']) });

    expect(jobStatus(snapshot)).toBe('finished');
    // Referrer tags are not tags of their own: '*' chose a, c and d only.
    expect(snapshot.context.progress).toEqual({ tagsTotal: 3, tagsDeleted: 3, tagsAbsent: 0, referrersDeleted: 5 });
    expect(deletedReferrers(events).map((e) => `${e.digest} of ${e.subject}`).sort()).toEqual([...referred.subjects].map(([r, s]) => `${r} of ${s}`).sort());

    expect(await presentOf(repository, [a, ...referred.subjects.keys(), ...referred.fallbacks])).toEqual([]);
    const others = [b, ...other.subjects.keys(), ...other.fallbacks];
    expect(await presentOf(repository, others)).toEqual(others);
    expect((await fallbackIndex(registry.host, repository, b)).map((d) => d.digest)).toEqual([other.sbom]);
    expect((await listTags({ host: registry.host, repository })).sort()).toEqual(['b', ...other.tags].sort());

    const order = deletedSince(from);
    for (const [referrer, subject] of referred.subjects) expectBefore(order, referrer, subject);
    // A fallback index goes after the referrers it lists, before its subject.
    const [subjectIndex, sbomIndex] = referred.fallbacks as [string, string];
    expectBefore(order, referred.sbom, subjectIndex);
    expectBefore(order, subjectIndex, a);
    expectBefore(order, referred.sbomSignature, sbomIndex);
    expectBefore(order, sbomIndex, referred.sbom);

    const since = proxy.requests.slice(from);
    expect(since.filter((r) => /\/referrers\/sha256:/.test(r.path))).toHaveLength(1);
    // The tags initialize listed say c has no referrer tags: none is asked for.
    expect(since.filter((r) => r.path.includes(digestTag(c)))).toEqual([]);
  });

  it("deletes an index's referrers with it; its children keep theirs until they are deleted themselves", async () => {
    const repository = 'delete/index';
    const input = await seeded(repository, ['multi']);
    const index = built.multi!.digest;
    const child = built.multi!.manifests[0]!;
    const indexSignature = (await signImage(registry.host, repository, index, keys.privateKey)).digest;
    const childSignature = (await signImage(registry.host, repository, child, keys.privateKey)).digest;
    const childSbom = (await attachReferrer(registry.host, repository, child, { artifactType: 'application/spdx+json', content: Buffer.from(`{"name":"${child}"}`), mediaType: 'application/spdx+json' })).digest;

    const first = await run({ ...input, digests: [index] });
    expect(first.snapshot.context.progress).toEqual({ tagsTotal: 1, tagsDeleted: 1, tagsAbsent: 0, referrersDeleted: 1 });
    expect(deletedReferrers(first.events)).toEqual([{ type: 'referrer.deleted', subject: index, digest: indexSignature, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', tag: `${digestTag(index)}.sig` }]);
    expect(await presentOf(repository, [index, indexSignature, child, childSignature, childSbom])).toEqual([child, childSignature, childSbom]);
    expect((await listTags({ host: registry.host, repository })).sort()).toEqual([digestTag(child), `${digestTag(child)}.sig`]);

    const second = await run({ ...input, digests: [child] });
    expect(second.snapshot.context.progress).toEqual({ tagsTotal: 1, tagsDeleted: 1, tagsAbsent: 0, referrersDeleted: 2 });
    expect(await presentOf(repository, [child, childSignature, childSbom])).toEqual([]);
    expect(await listTags({ host: registry.host, repository })).toEqual([]);
  });

  it('deletes the referrers the referrers API lists (answered by the fault proxy: distribution 2.8 has no API)', async () => {
    const repository = 'delete/referrers-api';
    const input = await seeded(repository, ['c']);
    const c = (await fetchManifest(registry.host, repository, 'c'))!;
    // Untagged and in no fallback index: only the API finds it.
    const [, layer] = await Promise.all([
      pushBlob(registry.host, repository, Buffer.from('{}'), EMPTY_DESCRIPTOR.mediaType),
      pushBlob(registry.host, repository, Buffer.from(`{"provenance":"${c.digest}"}`), 'application/vnd.in-toto+json'),
    ]);
    const artifactType = 'application/vnd.in-toto+json';
    const referrer = await pushManifest(registry.host, repository, {
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType, config: EMPTY_DESCRIPTOR, layers: [layer],
      subject: { mediaType: c.mediaType, digest: c.digest, size: c.bytes.length },
    });
    const body = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ ...referrer, artifactType }] });
    proxy.addRule({ method: 'GET', path: new RegExp(`/referrers/${c.digest}$`), fault: { type: 'status', status: 200, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' }, body } });

    const { snapshot, events } = await run({ ...input, tags: ['c'] });
    expect(jobStatus(snapshot)).toBe('finished');
    expect(snapshot.context.progress.referrersDeleted).toBe(1);
    expect(deletedReferrers(events)).toEqual([{ type: 'referrer.deleted', subject: c.digest, digest: referrer.digest, artifactType }]);
    expect(await presentOf(repository, [c.digest, referrer.digest])).toEqual([]);
  });

  it('ends a listing that refers back to a subject above it (a fallback index listing its subject\'s subject)', async () => {
    const repository = 'delete/referrers-loop';
    const input = await seeded(repository, ['a']);
    const a = await fetchManifest(registry.host, repository, 'a');
    const sbom = (await attachReferrer(registry.host, repository, a!.digest, { artifactType: 'application/spdx+json', content: Buffer.from('{"loop":true}'), mediaType: 'application/spdx+json' })).digest;
    await pushManifest(registry.host, repository, { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: a!.mediaType, digest: a!.digest, size: a!.bytes.length }] }, digestTag(sbom));

    const { snapshot } = await run({ ...input, tags: ['a'] });
    expect(jobStatus(snapshot)).toBe('finished');
    expect(snapshot.context.progress.referrersDeleted).toBe(1);
    expect(await presentOf(repository, [a!.digest, sbom])).toEqual([]);
    expect(await listTags({ host: registry.host, repository })).toEqual([]);
  });

  it('stopped between referrers, leaves no referrer without its subject, and a rerun deletes the rest', async () => {
    const repository = 'delete/referrers-stopped';
    const { input, a, referred } = await signedImage(repository);
    // The SBOM and its own referrers come first; stop at the image's cosign signature.
    const held = proxy.hold({ method: 'DELETE', path: new RegExp(`/manifests/${referred.signature}$`) });
    const actor = createDeletion(input, environment());
    actor.start();
    actor.send({ type: 'START' });
    const index = await held.arrived;
    actor.send({ type: 'STOP' });
    expect(jobStatus(actor.getSnapshot())).toBe('stopped');
    await aborted(index);
    held.release();

    expect(await presentOf(repository, [a, ...referred.subjects.keys()])).toEqual([a, referred.signature, referred.cosignSbom]);
    expect(await orphans(repository, referred)).toEqual([]);

    const rerun = await run(input);
    expect(rerun.snapshot.context.progress).toEqual({ tagsTotal: 1, tagsDeleted: 1, tagsAbsent: 0, referrersDeleted: 2 });
    expect(await presentOf(repository, [a, ...referred.subjects.keys(), ...referred.fallbacks])).toEqual([]);
    expect(await listTags({ host: registry.host, repository })).toEqual([]);
  });

  it('fails on a referrer it cannot delete, naming it and the image, and keeps the image', async () => {
    const repository = 'delete/referrers-denied';
    const { input, a, referred } = await signedImage(repository);
    proxy.addRule({ method: 'DELETE', path: new RegExp(`/manifests/${referred.sbom}$`), fault: DENIED });

    const { snapshot } = await run(input);
    expect(jobStatus(snapshot)).toBe('error');
    expect(snapshot.context.error?.message).toBe(`delete referrers of ${proxy.host}/${repository}:a (${a}): DELETE manifest ${proxy.host}/${repository}@${referred.sbom}: 403 DENIED: requested access to the resource is denied`);
    // The SBOM's own referrers went before it; it and the image stay.
    expect(await presentOf(repository, [a, ...referred.subjects.keys()])).toEqual([a, referred.sbom, referred.signature, referred.cosignSbom]);
    expect(await orphans(repository, referred)).toEqual([]);
  });

  it('fails when listing referrers fails, deleting nothing, and retries a listing that failed for a while', async () => {
    const repository = 'delete/referrers-unlisted';
    const { input, a, referred } = await signedImage(repository);
    const all = [a, ...referred.subjects.keys(), ...referred.fallbacks];
    const fallback = { method: 'GET', path: new RegExp(`/manifests/${digestTag(a)}$`) };
    proxy.addRule({ ...fallback, fault: DENIED });

    const denied = await run(input);
    expect(jobStatus(denied.snapshot)).toBe('error');
    expect(denied.snapshot.context.error?.message).toMatch(new RegExp(`^delete referrers of .*:a \\(${a}\\): list referrers of .*@${a} \\(fallback tag ${digestTag(a)}\\): GET manifest .*:${digestTag(a)}: 403 DENIED`));
    expect(await presentOf(repository, all)).toEqual(all);

    proxy.clearRules();
    proxy.addRule({ ...fallback, times: 1, fault: { type: 'status', status: 503 } });
    const retried = await run(input);
    expect(retried.statuses).toEqual(['pending', 'running', 'retrying', 'running', 'finished']);
    expect(retried.snapshot.context.progress.referrersDeleted).toBe(5);
    expect(await presentOf(repository, all)).toEqual([]);
  });
});
