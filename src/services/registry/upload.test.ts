import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOciLayout } from '../../../test/support/images.js';
import type { BuiltTag } from '../../../test/support/images.js';
import { DEFAULT_USER, startRegistry } from '../../../test/support/registry.js';
import type { RunningRegistry } from '../../../test/support/registry.js';
import { seedTag } from '../../../test/support/skopeo.js';
import { getBlob, headBlob } from './blob.js';
import { RegistryClient } from './client.js';
import { digestOf } from './digest.js';
import { Repository } from './repository.js';
import { cancelUpload, finishUpload, patchUpload, putUpload, startUpload, uploadStatus } from './upload.js';
import type { UploadStart } from './upload.js';
import { failure } from '../../../test/support/failure.js';

const LAYER_SIZE = 64 * 1024 + 3;

let layout: string;
let built: Record<string, BuiltTag>;
let registry: RunningRegistry;
let token: RunningRegistry;
let client: RegistryClient;
let tokenClient: RegistryClient;
let layerDigest: string;

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-upload-test-'));
  [built, registry, token] = await Promise.all([
    writeOciLayout(layout, { image: { layers: [{ size: LAYER_SIZE, seed: 'upload-layer' }] } }),
    startRegistry(),
    startRegistry({ auth: 'token' }),
  ]);
  await Promise.all([
    seedTag(layout, 'image', { host: registry.host, repository: 'source/app' }),
    seedTag(layout, 'image', { host: token.host, repository: 'source/app', creds: DEFAULT_USER }),
  ]);
  [client, tokenClient] = await Promise.all([
    RegistryClient.connect({ registry: registry.host }),
    RegistryClient.connect({ registry: token.host, credentials: DEFAULT_USER }),
  ]);
  const digests = built.image?.blobs ?? [];
  const sizes = await Promise.all(digests.map(async (digest) => (await readFile(join(layout, 'blobs', 'sha256', digest.slice(7)))).length));
  layerDigest = digests[sizes.indexOf(LAYER_SIZE)] ?? '';
  expect(layerDigest).toMatch(/^sha256:/);
});

afterAll(async () => {
  await Promise.all([client?.close(), tokenClient?.close()]);
  await Promise.all([registry?.stop(), token?.stop()]);
  await rm(layout, { recursive: true, force: true });
});

let repositories = 0;
/** A fresh repository per test, so one test's blobs cannot make another pass. */
function freshRepository(on: RegistryClient = client): Repository {
  repositories += 1;
  return new Repository(on, `upload/test-${repositories}`, ['pull', 'push']);
}

function blobOf(size: number): { bytes: Buffer; digest: string } {
  const bytes = randomBytes(size);
  return { bytes, digest: digestOf(bytes) };
}

function session(start: UploadStart): URL {
  if (start.mounted) throw new Error('expected an upload session, got a mount');
  return start.location;
}

async function contentOf(repo: Repository, digest: string): Promise<Buffer> {
  const blob = await getBlob(repo, digest);
  const chunks: Buffer[] = [];
  for await (const chunk of blob.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('monolithic upload', () => {
  it('POSTs a session on the registry and PUTs the blob in one request', async () => {
    const repo = freshRepository();
    const blob = blobOf(100_000);
    const location = session(await startUpload(repo));
    expect(location.origin).toBe(client.baseUrl);
    expect(location.pathname).toMatch(new RegExp(`^/v2/${repo.name}/blobs/uploads/[0-9a-f-]+$`));

    await putUpload(repo, location, { digest: blob.digest, size: blob.bytes.length, body: blob.bytes });
    expect(await headBlob(repo, blob.digest)).toBe(blob.bytes.length);
    expect((await contentOf(repo, blob.digest)).equals(blob.bytes)).toBe(true);
  });

  it('PUTs a streamed body', async () => {
    const repo = freshRepository();
    const blob = blobOf(50_000);
    const location = session(await startUpload(repo));
    const body = Readable.from([blob.bytes.subarray(0, 20_000), blob.bytes.subarray(20_000)]);
    await putUpload(repo, location, { digest: blob.digest, size: blob.bytes.length, body });
    expect((await contentOf(repo, blob.digest)).equals(blob.bytes)).toBe(true);
  });

  it('fails with DIGEST_MISMATCH when the bytes do not have the declared digest, and stores nothing', async () => {
    const repo = freshRepository();
    const blob = blobOf(1000);
    const claimed = digestOf(Buffer.from('something else'));
    const location = session(await startUpload(repo));
    const error = await failure(putUpload(repo, location, { digest: claimed, size: blob.bytes.length, body: blob.bytes }));
    expect(error.code).toBe('DIGEST_MISMATCH');
    expect(error.message).toMatch(new RegExp(`^PUT blob ${registry.host}/${repo.name}@${claimed}: 400 DIGEST_INVALID`));
    expect(await headBlob(repo, claimed)).toBeUndefined();
    expect(await headBlob(repo, blob.digest)).toBeUndefined();
  });
});

describe('chunked upload', () => {
  it('POSTs, PATCHes twice and PUTs the digest; status reports the bytes received after each PATCH', async () => {
    const repo = freshRepository();
    const blob = blobOf(70_000);
    const split = 30_000;
    let location = session(await startUpload(repo));
    expect((await uploadStatus(repo, location)).size).toBe(0);

    location = await patchUpload(repo, location, { digest: blob.digest, start: 0, length: split, body: blob.bytes.subarray(0, split) });
    const afterFirst = await uploadStatus(repo, location);
    expect(afterFirst.size).toBe(split);
    expect(afterFirst.location.origin).toBe(client.baseUrl);

    location = await patchUpload(repo, afterFirst.location, {
      digest: blob.digest,
      start: split,
      length: blob.bytes.length - split,
      body: blob.bytes.subarray(split),
    });
    expect((await uploadStatus(repo, location)).size).toBe(blob.bytes.length);
    // Not committed before the PUT.
    expect(await headBlob(repo, blob.digest)).toBeUndefined();

    await finishUpload(repo, location, blob.digest);
    expect(await headBlob(repo, blob.digest)).toBe(blob.bytes.length);
    expect((await contentOf(repo, blob.digest)).equals(blob.bytes)).toBe(true);
  });

  it('can resume from the size uploadStatus reports, with a streamed chunk', async () => {
    const repo = freshRepository();
    const blob = blobOf(10_000);
    let location = session(await startUpload(repo));
    location = await patchUpload(repo, location, { digest: blob.digest, start: 0, length: 4_000, body: blob.bytes.subarray(0, 4_000) });
    const status = await uploadStatus(repo, location);
    const rest = blob.bytes.subarray(status.size);
    location = await patchUpload(repo, status.location, { digest: blob.digest, start: status.size, length: rest.length, body: Readable.from([rest]) });
    await finishUpload(repo, location, blob.digest);
    expect((await contentOf(repo, blob.digest)).equals(blob.bytes)).toBe(true);
  });

  it('catches a chunk appended at the wrong offset at the final PUT', async () => {
    // distribution 2.8 ignores Content-Range on PATCH and appends, so only the digest check can notice.
    const repo = freshRepository();
    const blob = blobOf(2_000);
    let location = session(await startUpload(repo));
    location = await patchUpload(repo, location, { digest: blob.digest, start: 0, length: 1_000, body: blob.bytes.subarray(0, 1_000) });
    location = await patchUpload(repo, location, { digest: blob.digest, start: 1_500, length: 500, body: blob.bytes.subarray(1_500) });
    expect((await uploadStatus(repo, location)).size).toBe(1_500);
    const error = await failure(finishUpload(repo, location, blob.digest));
    expect(error.code).toBe('DIGEST_MISMATCH');
    expect(error.message).toMatch(new RegExp(`^PUT blob ${registry.host}/${repo.name}@${blob.digest}: 400 DIGEST_INVALID`));
    expect(await headBlob(repo, blob.digest)).toBeUndefined();
  });

  it('fails with DIGEST_MISMATCH when the chunks do not add up to the digest', async () => {
    const repo = freshRepository();
    const blob = blobOf(2_000);
    let location = session(await startUpload(repo));
    location = await patchUpload(repo, location, { digest: blob.digest, start: 0, length: 1_000, body: blob.bytes.subarray(0, 1_000) });
    expect((await failure(finishUpload(repo, location, blob.digest))).code).toBe('DIGEST_MISMATCH');
    expect(await headBlob(repo, blob.digest)).toBeUndefined();
  });

  it('cancels a session: its status is then NOT_FOUND', async () => {
    const repo = freshRepository();
    const blob = blobOf(1_000);
    let location = session(await startUpload(repo));
    location = await patchUpload(repo, location, { digest: blob.digest, start: 0, length: blob.bytes.length, body: blob.bytes });
    await cancelUpload(repo, location);
    const error = await failure(uploadStatus(repo, location));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toContain('BLOB_UPLOAD_UNKNOWN');
  });

  it('cancelling an unknown session does not throw', async () => {
    const repo = freshRepository();
    await expect(cancelUpload(repo, new URL(`${client.baseUrl}/v2/${repo.name}/blobs/uploads/00000000-0000-0000-0000-000000000000`))).resolves.toBeUndefined();
  });
});

describe('cross-repository mount', () => {
  it('mounts a blob from another repository with 201: {mounted: true}', async () => {
    const repo = freshRepository();
    expect(await headBlob(repo, layerDigest)).toBeUndefined();
    expect(await startUpload(repo, { mount: { digest: layerDigest, from: 'source/app' } })).toEqual({ mounted: true });
    expect(await headBlob(repo, layerDigest)).toBe(LAYER_SIZE);
  });

  it('falls back to an upload session for a digest the registry does not have', async () => {
    const repo = freshRepository();
    const blob = blobOf(5_000);
    const start = await startUpload(repo, { mount: { digest: blob.digest, from: 'source/app' } });
    expect(start.mounted).toBe(false);
    const location = session(start);
    expect(location).toBeInstanceOf(URL);
    expect(location.href.startsWith(`${client.baseUrl}/v2/${repo.name}/blobs/uploads/`)).toBe(true);
    // The session is usable: the blob can be uploaded to it.
    await putUpload(repo, location, { digest: blob.digest, size: blob.bytes.length, body: blob.bytes });
    expect(await headBlob(repo, blob.digest)).toBe(blob.bytes.length);
  });

  it('falls back to a session when the source repository does not exist', async () => {
    const repo = freshRepository();
    const start = await startUpload(repo, { mount: { digest: layerDigest, from: 'no/such-repo' } });
    expect(start.mounted).toBe(false);
    await cancelUpload(repo, session(start));
    expect(await headBlob(repo, layerDigest)).toBeUndefined();
  });

  it('asks a token registry for pull on the source repository, so the mount succeeds', async () => {
    const repo = freshRepository(tokenClient);
    expect(await startUpload(repo, { mount: { digest: layerDigest, from: 'source/app' } })).toEqual({ mounted: true });
    expect(await headBlob(repo, layerDigest)).toBe(LAYER_SIZE);
  });

  it('uploads to a token registry in chunks', async () => {
    const repo = freshRepository(tokenClient);
    const blob = blobOf(3_000);
    let location = session(await startUpload(repo));
    location = await patchUpload(repo, location, { digest: blob.digest, start: 0, length: 1_000, body: blob.bytes.subarray(0, 1_000) });
    expect((await uploadStatus(repo, location)).size).toBe(1_000);
    location = await patchUpload(repo, location, { digest: blob.digest, start: 1_000, length: 2_000, body: blob.bytes.subarray(1_000) });
    await finishUpload(repo, location, blob.digest);
    expect((await contentOf(repo, blob.digest)).equals(blob.bytes)).toBe(true);
  });
});
