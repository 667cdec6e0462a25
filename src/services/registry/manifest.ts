import { digestOf } from './digest.js';
import { header, networkError, responseError, type RegistryResponse } from './client.js';
import { RegistryError } from './errors.js';
import { MANIFEST_ACCEPT, parseManifest, type ParsedManifest } from './media-types.js';
import type { Repository } from './repository.js';

export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

export interface Manifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  parsed: ParsedManifest;
}

/** distribution 2.8 refuses manifests over 4 MiB; anything larger is not a manifest. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** HEAD costs no pull quota on Docker Hub, unlike GET. Undefined when the reference is absent. */
export async function headManifest(repo: Repository, reference: string, signal?: AbortSignal): Promise<ManifestHead | undefined> {
  const what = `HEAD manifest ${repo.ref(reference)}`;
  const response = await repo.client.send({
    method: 'HEAD',
    url: repo.path(`manifests/${reference}`),
    scopes: repo.scopes,
    headers: { accept: MANIFEST_ACCEPT },
    what,
    ...(signal ? { signal } : {}),
  });
  if (response.statusCode === 404) {
    await response.body.dump();
    return undefined;
  }
  if (response.statusCode !== 200) throw await responseError(response, what);
  await response.body.dump();
  const digest = header(response, 'docker-content-digest');
  const mediaType = header(response, 'content-type')?.split(';')[0]?.trim();
  // Registries that omit the digest on HEAD make us GET to learn it.
  if (!digest || !mediaType) {
    const manifest = await getManifest(repo, reference, signal);
    return { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.bytes.length };
  }
  return { digest, mediaType, size: Number(header(response, 'content-length') ?? 0) };
}

export async function getManifest(repo: Repository, reference: string, signal?: AbortSignal): Promise<Manifest> {
  const what = `GET manifest ${repo.ref(reference)}`;
  const response = await repo.client.expect(
    {
      method: 'GET',
      url: repo.path(`manifests/${reference}`),
      scopes: repo.scopes,
      headers: { accept: MANIFEST_ACCEPT },
      what,
      ...(signal ? { signal } : {}),
    },
    [200],
  );
  const declaredLength = Number(header(response, 'content-length') ?? 0);
  if (declaredLength > MAX_MANIFEST_BYTES) {
    await response.body.dump();
    throw new RegistryError('INVALID_MANIFEST', `${what}: manifest of ${declaredLength} bytes exceeds ${MAX_MANIFEST_BYTES}`);
  }
  const bytes = await readManifest(response, what, signal);
  const digest = digestOf(bytes);
  const expected = reference.includes(':') ? reference : header(response, 'docker-content-digest');
  if (expected && expected !== digest) {
    throw new RegistryError('DIGEST_MISMATCH', `${what}: content has digest ${digest}, expected ${expected}`);
  }
  const parsed = parseManifest(bytes, header(response, 'content-type'), what);
  return { digest, mediaType: parsed.mediaType, bytes, parsed };
}

/**
 * The body, capped also when no Content-Length was declared; a connection lost mid-body is a
 * RegistryError like one lost before the status line.
 */
async function readManifest(response: RegistryResponse, what: string, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_MANIFEST_BYTES) throw new RegistryError('INVALID_MANIFEST', `${what}: manifest exceeds ${MAX_MANIFEST_BYTES} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    throw networkError(error, what, signal);
  }
  return Buffer.concat(chunks, size);
}

export interface ManifestPut {
  /**
   * The subject the registry indexed the manifest under (`OCI-Subject`): a registry with the
   * referrers API lists it from there; without it the pusher keeps the fallback index.
   */
  indexedSubject: string | undefined;
}

/** Pushes the exact bytes; the registry's digest must be the digest of those bytes. */
export async function putManifest(
  repo: Repository,
  reference: string,
  manifest: { bytes: Buffer; mediaType: string; digest: string },
  signal?: AbortSignal,
): Promise<ManifestPut> {
  const what = `PUT manifest ${repo.ref(reference)} (${manifest.digest})`;
  const response = await repo.client.expect(
    {
      method: 'PUT',
      url: repo.path(`manifests/${reference}`),
      scopes: repo.scopes,
      headers: { 'content-type': manifest.mediaType },
      body: manifest.bytes,
      what,
      ...(signal ? { signal } : {}),
    },
    [201],
  );
  await response.body.dump();
  const stored = header(response, 'docker-content-digest');
  if (stored && stored !== manifest.digest) {
    throw new RegistryError('DIGEST_MISMATCH', `${what}: registry stored digest ${stored}`);
  }
  return { indexedSubject: header(response, 'oci-subject') };
}

/** Deleting what is already gone is done: 404 answers 'absent'. */
export async function deleteManifest(repo: Repository, reference: string, signal?: AbortSignal): Promise<'deleted' | 'absent'> {
  const what = `DELETE manifest ${repo.ref(reference)}`;
  // A Bearer registry answers 401 unless the token grants `delete` too; Basic ignores scopes.
  const scopes = repo.scopes.map((scope) => ({ ...scope, actions: [...scope.actions, 'delete' as const] }));
  const response = await repo.client.expect(
    { method: 'DELETE', url: repo.path(`manifests/${reference}`), scopes, what, ...(signal ? { signal } : {}) },
    [202, 200, 204, 404],
  );
  await response.body.dump();
  return response.statusCode === 404 ? 'absent' : 'deleted';
}
