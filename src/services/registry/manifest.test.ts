import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from '../../../test/support/fault-proxy.js';
import type { FaultProxy } from '../../../test/support/fault-proxy.js';
import { OCI_MEDIA_TYPES, writeOciLayout } from '../../../test/support/images.js';
import type { BuiltTag } from '../../../test/support/images.js';
import { DEFAULT_USER, startRegistry } from '../../../test/support/registry.js';
import type { RunningRegistry } from '../../../test/support/registry.js';
import { seedLayout, seedTag } from '../../../test/support/skopeo.js';
import { RegistryClient } from './client.js';
import { digestOf } from './digest.js';
import { deleteManifest, getManifest, headManifest, putManifest } from './manifest.js';
import { Repository } from './repository.js';
import { failure } from '../../../test/support/failure.js';

let layout: string;
let built: Record<string, BuiltTag>;
let registry: RunningRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let proxied: RegistryClient;
let app: Repository;
let viaProxy: Repository;

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-manifest-test-'));
  [built, registry] = await Promise.all([
    writeOciLayout(layout, {
      single: { layers: [{ size: 2048, seed: 'manifest-a' }, { size: 512, seed: 'manifest-b' }] },
      multi: {
        platforms: [
          { layers: [{ size: 1024, seed: 'manifest-amd64' }], platform: { os: 'linux', architecture: 'amd64' } },
          { layers: [{ size: 1024, seed: 'manifest-arm64' }], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        ],
      },
    }),
    startRegistry(),
  ]);
  await seedLayout(layout, ['single', 'multi'], { host: registry.host, repository: 'team/app' });
  proxy = await startFaultProxy(registry.host);
  [client, proxied] = await Promise.all([RegistryClient.connect({ registry: registry.host }), RegistryClient.connect({ registry: proxy.host })]);
  app = new Repository(client, 'team/app', ['pull', 'push']);
  viaProxy = new Repository(proxied, 'team/app', ['pull', 'push']);
});

afterEach(() => proxy.clearRules());

afterAll(async () => {
  await Promise.all([client?.close(), proxied?.close()]);
  await proxy?.stop();
  await registry?.stop();
  await rm(layout, { recursive: true, force: true });
});

function tag(name: string): BuiltTag {
  const result = built[name];
  if (!result) throw new Error(`no built tag ${name}`);
  return result;
}

/** The manifest bytes as written to the layout; skopeo --preserve-digests pushes them unchanged. */
function layoutBytes(digest: string): Promise<Buffer> {
  return readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

/** Same JSON, other bytes: a manifest with its own digest that references the same blobs. */
function reformatted(bytes: Buffer, indent: number): Buffer {
  return Buffer.from(JSON.stringify(JSON.parse(bytes.toString()), null, indent));
}

describe('headManifest', () => {
  it('answers digest, media type and size of an image by tag and by digest', async () => {
    const single = tag('single');
    const size = (await layoutBytes(single.digest)).length;
    const expected = { digest: single.digest, mediaType: OCI_MEDIA_TYPES.manifest, size };
    expect(await headManifest(app, 'single')).toEqual(expected);
    expect(await headManifest(app, single.digest)).toEqual(expected);
  });

  it('answers the index media type for a multi-platform tag', async () => {
    const multi = tag('multi');
    expect(await headManifest(app, 'multi')).toEqual({
      digest: multi.digest,
      mediaType: OCI_MEDIA_TYPES.index,
      size: (await layoutBytes(multi.digest)).length,
    });
  });

  it('answers undefined for an unknown tag, digest or repository', async () => {
    expect(await headManifest(app, 'no-such-tag')).toBeUndefined();
    expect(await headManifest(app, digestOf(Buffer.from('nothing')))).toBeUndefined();
    expect(await headManifest(new Repository(client, 'no/such-repo', ['pull']), 'single')).toBeUndefined();
  });

  it('throws for other failures instead of calling the manifest absent', async () => {
    proxy.addRule({ method: 'HEAD', path: /\/manifests\/single$/, fault: { type: 'status', status: 500 }, times: 1 });
    const error = await failure(headManifest(viaProxy, 'single'));
    expect(error.code).toBe('SERVER_ERROR');
    expect(error.message).toMatch(new RegExp(`^HEAD manifest ${proxy.host}/team/app:single: 500`));
  });

  it('GETs the manifest when HEAD answers without a digest', async () => {
    proxy.addRule({ method: 'HEAD', path: /\/manifests\/single$/, fault: { type: 'status', status: 200, headers: { 'content-type': OCI_MEDIA_TYPES.manifest } }, times: 1 });
    const single = tag('single');
    expect(await headManifest(viaProxy, 'single')).toEqual({
      digest: single.digest,
      mediaType: OCI_MEDIA_TYPES.manifest,
      size: (await layoutBytes(single.digest)).length,
    });
    expect(proxy.requests.slice(-2).map((request) => request.method)).toEqual(['HEAD', 'GET']);
  });
});

describe('getManifest', () => {
  it('returns the exact bytes of an image by tag, verified and parsed', async () => {
    const single = tag('single');
    const manifest = await getManifest(app, 'single');
    expect(manifest.bytes.equals(await layoutBytes(single.digest))).toBe(true);
    expect(manifest.digest).toBe(single.digest);
    expect(manifest.mediaType).toBe(OCI_MEDIA_TYPES.manifest);
    expect(manifest.parsed.kind).toBe('image');
    if (manifest.parsed.kind !== 'image') return;
    expect([manifest.parsed.config.digest, ...manifest.parsed.layers.map((layer) => layer.digest)].sort()).toEqual([...single.blobs].sort());
    expect(manifest.parsed.layers.map((layer) => layer.size)).toEqual([2048, 512]);
  });

  it('returns an index by digest with its children and platforms', async () => {
    const multi = tag('multi');
    const manifest = await getManifest(app, multi.digest);
    expect(manifest.digest).toBe(multi.digest);
    expect(manifest.parsed.kind).toBe('index');
    if (manifest.parsed.kind !== 'index') return;
    expect(manifest.parsed.manifests.map((child) => child.digest)).toEqual(multi.manifests);
    expect(manifest.parsed.manifests.map((child) => child.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
  });

  it('fails with NOT_FOUND and the registry error code for an unknown tag', async () => {
    const error = await failure(getManifest(app, 'no-such-tag'));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toMatch(new RegExp(`^GET manifest ${registry.host}/team/app:no-such-tag: 404 MANIFEST_UNKNOWN`));
  });

  it('fails with DIGEST_MISMATCH when a tag answers other bytes than its Docker-Content-Digest', async () => {
    const single = tag('single');
    const other = reformatted(await layoutBytes(single.digest), 1);
    proxy.addRule({
      method: 'GET',
      path: /\/manifests\/single$/,
      fault: {
        type: 'status',
        status: 200,
        headers: { 'content-type': OCI_MEDIA_TYPES.manifest, 'docker-content-digest': single.digest },
        body: other.toString(),
      },
      times: 1,
    });
    const error = await failure(getManifest(viaProxy, 'single'));
    expect(error.code).toBe('DIGEST_MISMATCH');
    expect(error.transient).toBe(false);
    expect(error.message).toContain(`content has digest ${digestOf(other)}, expected ${single.digest}`);
  });

  it('fails with DIGEST_MISMATCH by digest even when the header agrees with the wrong bytes', async () => {
    const single = tag('single');
    const other = reformatted(await layoutBytes(single.digest), 2);
    proxy.addRule({
      method: 'GET',
      path: /\/manifests\/sha256:/,
      fault: {
        type: 'status',
        status: 200,
        headers: { 'content-type': OCI_MEDIA_TYPES.manifest, 'docker-content-digest': digestOf(other) },
        body: other.toString(),
      },
      times: 1,
    });
    const error = await failure(getManifest(viaProxy, single.digest));
    expect(error.code).toBe('DIGEST_MISMATCH');
    expect(error.message).toContain(`expected ${single.digest}`);
  });

  it('fails with DIGEST_MISMATCH when the body was corrupted on the way', async () => {
    proxy.addRule({ method: 'GET', path: /\/manifests\/single$/, fault: { type: 'corrupt' }, times: 1 });
    expect((await failure(getManifest(viaProxy, 'single'))).code).toBe('DIGEST_MISMATCH');
  });

  it('passes its signal on: ABORTED when it aborts before the manifest arrives', async () => {
    proxy.addRule({ method: 'GET', path: /\/manifests\/single$/, fault: { type: 'delay', ms: 2_000 }, times: 1 });
    const controller = new AbortController();
    const pending = failure(getManifest(viaProxy, 'single', controller.signal));
    setTimeout(() => controller.abort(), 100);
    const error = await pending;
    expect(error.code).toBe('ABORTED');
    expect(error.transient).toBe(false);
  });

  it('fails with INVALID_MANIFEST when verified bytes are not a manifest', async () => {
    const body = '{"schemaVersion": 1}';
    proxy.addRule({
      method: 'GET',
      path: /\/manifests\/single$/,
      fault: { type: 'status', status: 200, headers: { 'content-type': OCI_MEDIA_TYPES.manifest, 'docker-content-digest': digestOf(Buffer.from(body)) }, body },
      times: 1,
    });
    const error = await failure(getManifest(viaProxy, 'single'));
    expect(error.code).toBe('INVALID_MANIFEST');
    expect(error.message).toMatch(/schemaVersion 1/);
  });

  it('refuses a manifest larger than 4 MiB by its Content-Length', async () => {
    const body = ' '.repeat(4 * 1024 * 1024 + 1);
    proxy.addRule({ method: 'GET', path: /\/manifests\/single$/, fault: { type: 'status', status: 200, headers: { 'content-length': String(body.length) }, body }, times: 1 });
    const error = await failure(getManifest(viaProxy, 'single'));
    expect(error.code).toBe('INVALID_MANIFEST');
    expect(error.message).toMatch(/4194305 bytes exceeds 4194304/);
  });

  it('refuses a manifest larger than 4 MiB sent without a Content-Length', async () => {
    // Node sends a body without a declared length chunked.
    proxy.addRule({ method: 'GET', path: /\/manifests\/single$/, fault: { type: 'status', status: 200, body: ' '.repeat(4 * 1024 * 1024 + 1) }, times: 1 });
    const error = await failure(getManifest(viaProxy, 'single'));
    expect(error.code).toBe('INVALID_MANIFEST');
    expect(error.message).toMatch(/exceeds 4194304/);
  });

  it('fails with a transient NETWORK error when the connection drops mid-body', async () => {
    proxy.addRule({ method: 'GET', path: /\/manifests\/single$/, fault: { type: 'resetAfterBytes', bytes: 100 }, times: 1 });
    const error = await failure(getManifest(viaProxy, 'single'));
    expect(error.code).toBe('NETWORK');
    expect(error.transient).toBe(true);
    expect(error.message).toMatch(new RegExp(`^GET manifest ${proxy.host}/team/app:single: `));
  });
});

describe('putManifest', () => {
  it('stores the exact bytes: HEAD and GET give back their digest', async () => {
    const bytes = reformatted(await layoutBytes(tag('single').digest), 4);
    const digest = digestOf(bytes);
    expect(digest).not.toBe(tag('single').digest);
    await putManifest(app, 'pretty', { bytes, mediaType: OCI_MEDIA_TYPES.manifest, digest });
    expect(await headManifest(app, 'pretty')).toEqual({ digest, mediaType: OCI_MEDIA_TYPES.manifest, size: bytes.length });
    const fetched = await getManifest(app, digest);
    expect(fetched.bytes.equals(bytes)).toBe(true);
  });

  it('pushes by digest, as for the children of an index', async () => {
    const bytes = reformatted(await layoutBytes(tag('single').digest), 3);
    const digest = digestOf(bytes);
    await putManifest(app, digest, { bytes, mediaType: OCI_MEDIA_TYPES.manifest, digest });
    expect((await headManifest(app, digest))?.digest).toBe(digest);
  });

  it('fails with DIGEST_MISMATCH when the registry stores another digest than the one declared', async () => {
    const bytes = reformatted(await layoutBytes(tag('single').digest), 5);
    const claimed = tag('single').digest;
    const error = await failure(putManifest(app, 'claimed', { bytes, mediaType: OCI_MEDIA_TYPES.manifest, digest: claimed }));
    expect(error.code).toBe('DIGEST_MISMATCH');
    expect(error.message).toContain(`registry stored digest ${digestOf(bytes)}`);
  });

  it('fails with INVALID_MANIFEST when the repository lacks the blobs', async () => {
    const bytes = await layoutBytes(tag('single').digest);
    const empty = new Repository(client, 'team/empty', ['pull', 'push']);
    const error = await failure(putManifest(empty, 'single', { bytes, mediaType: OCI_MEDIA_TYPES.manifest, digest: tag('single').digest }));
    expect(error.code).toBe('INVALID_MANIFEST');
    expect(error.message).toContain('MANIFEST_BLOB_UNKNOWN');
    expect(await headManifest(empty, 'single')).toBeUndefined();
  });
});

describe('deleteManifest', () => {
  it("answers 'deleted', then 'absent', and the manifest is gone", async () => {
    const bytes = reformatted(await layoutBytes(tag('single').digest), 6);
    const digest = digestOf(bytes);
    await putManifest(app, 'doomed', { bytes, mediaType: OCI_MEDIA_TYPES.manifest, digest });
    expect(await headManifest(app, digest)).toBeDefined();

    expect(await deleteManifest(app, digest)).toBe('deleted');
    expect(await headManifest(app, digest)).toBeUndefined();
    expect(await headManifest(app, 'doomed')).toBeUndefined();
    expect(await deleteManifest(app, digest)).toBe('absent');
    // The other tags in the repository are untouched.
    expect((await headManifest(app, 'single'))?.digest).toBe(tag('single').digest);
  });

  it('fails for a status it does not expect', async () => {
    proxy.addRule({ method: 'DELETE', path: /\/manifests\//, fault: { type: 'status', status: 403 }, times: 1 });
    const error = await failure(deleteManifest(viaProxy, tag('single').digest));
    expect(error.code).toBe('DENIED');
    expect((await headManifest(app, 'single'))?.digest).toBe(tag('single').digest);
  });
});

describe('on a token registry', () => {
  let tokenRegistry: RunningRegistry;
  let tokenClient: RegistryClient;
  let repo: Repository;

  beforeAll(async () => {
    tokenRegistry = await startRegistry({ auth: 'token' });
    await seedTag(layout, 'single', { host: tokenRegistry.host, repository: 'team/app', creds: DEFAULT_USER });
    tokenClient = await RegistryClient.connect({ registry: tokenRegistry.host, credentials: DEFAULT_USER });
    // As job-runtime opens a destination for a deletion job.
    repo = new Repository(tokenClient, 'team/app', ['pull', 'push']);
  });

  afterAll(async () => {
    await tokenClient?.close();
    await tokenRegistry?.stop();
  });

  it('reads, writes and deletes with Bearer tokens (distribution wants the delete action to delete)', async () => {
    const single = tag('single');
    expect((await headManifest(repo, 'single'))?.digest).toBe(single.digest);
    const bytes = reformatted(await layoutBytes(single.digest), 7);
    const digest = digestOf(bytes);
    await putManifest(repo, 'doomed', { bytes, mediaType: OCI_MEDIA_TYPES.manifest, digest });

    expect(await deleteManifest(repo, digest)).toBe('deleted');
    expect(await headManifest(repo, digest)).toBeUndefined();
    expect(await deleteManifest(repo, digest)).toBe('absent');
    expect((await headManifest(repo, 'single'))?.digest).toBe(single.digest);
  });
});
