import { header, type Body } from './client.js';
import { RegistryError } from './errors.js';
import { resolveLocation, withQuery } from './location.js';
import type { Repository } from './repository.js';
import type { Scope } from './auth.js';

export type UploadStart = { mounted: true } | { mounted: false; location: URL };

/**
 * Opens an upload session, or mounts `mount.digest` from `mount.from` on the same registry:
 * 201 means mounted, 202 means the registry could not mount and opened a session instead.
 */
export async function startUpload(
  repo: Repository,
  options: { mount?: { digest: string; from: string }; signal?: AbortSignal } = {},
): Promise<UploadStart> {
  const { mount, signal } = options;
  const url = mount
    ? `${repo.path('blobs/uploads/')}?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}`
    : repo.path('blobs/uploads/');
  // A mount needs pull on the repository the blob comes from.
  const scopes: Scope[] = mount ? [...repo.scopes, { repository: mount.from, actions: ['pull'] }] : repo.scopes;
  const what = mount ? `mount ${mount.digest} from ${mount.from} into ${repo.ref()}` : `start upload to ${repo.ref()}`;
  const response = await repo.client.expect(
    { method: 'POST', url, scopes, headers: { 'content-length': '0' }, what, ...(signal ? { signal } : {}) },
    [201, 202],
  );
  await response.body.dump();
  if (response.statusCode === 201) return { mounted: true };
  return { mounted: false, location: resolveLocation(header(response, 'location'), repo.client.resolve(url).href) };
}

/** Monolithic upload: the whole blob in one PUT to the session. */
export async function putUpload(
  repo: Repository,
  location: URL,
  blob: { digest: string; size: number; body: Body },
  signal?: AbortSignal,
): Promise<void> {
  const what = `PUT blob ${repo.ref()}@${blob.digest}`;
  const response = await repo.client.expect(
    {
      method: 'PUT',
      url: withQuery(location, { digest: blob.digest }),
      scopes: repo.scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      body: blob.body,
      what,
      ...(signal ? { signal } : {}),
    },
    [201],
  );
  await response.body.dump();
  checkStoredDigest(header(response, 'docker-content-digest'), blob.digest, what);
}

/** One chunk of a chunked upload: bytes `start` to `start + length - 1`. */
export async function patchUpload(
  repo: Repository,
  location: URL,
  chunk: { digest: string; start: number; length: number; body: Body },
  signal?: AbortSignal,
): Promise<URL> {
  const end = chunk.start + chunk.length - 1;
  const what = `PATCH blob ${repo.ref()}@${chunk.digest} bytes ${chunk.start}-${end}`;
  const response = await repo.client.expect(
    {
      method: 'PATCH',
      url: location,
      scopes: repo.scopes,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(chunk.length),
        'content-range': `${chunk.start}-${end}`,
      },
      body: chunk.body,
      what,
      ...(signal ? { signal } : {}),
    },
    [202],
  );
  await response.body.dump();
  return resolveLocation(header(response, 'location'), location.href);
}

/** How many bytes the session holds (`Range: 0-<last>`), to resume after a failed chunk. */
export async function uploadStatus(repo: Repository, location: URL, signal?: AbortSignal): Promise<{ location: URL; size: number }> {
  const what = `upload status ${repo.ref()}`;
  const response = await repo.client.expect(
    { method: 'GET', url: location, scopes: repo.scopes, what, ...(signal ? { signal } : {}) },
    [204],
  );
  await response.body.dump();
  const range = header(response, 'range');
  const last = range ? /^(?:bytes=)?0-(\d+)$/.exec(range)?.[1] : undefined;
  if (range && last === undefined) throw new RegistryError('PROTOCOL', `${what}: unreadable Range "${range}"`);
  const next = header(response, 'location');
  // distribution reports an empty session as "0-0" too (it has no way to say "nothing").
  const size = last === undefined || range === '0-0' ? 0 : Number(last) + 1;
  return { location: next ? resolveLocation(next, location.href) : location, size };
}

/** Closes a chunked upload: PUT with the digest and no body. */
export async function finishUpload(repo: Repository, location: URL, digest: string, signal?: AbortSignal): Promise<void> {
  const what = `PUT blob ${repo.ref()}@${digest}`;
  const response = await repo.client.expect(
    {
      method: 'PUT',
      url: withQuery(location, { digest }),
      scopes: repo.scopes,
      headers: { 'content-length': '0' },
      what,
      ...(signal ? { signal } : {}),
    },
    [201],
  );
  await response.body.dump();
  checkStoredDigest(header(response, 'docker-content-digest'), digest, what);
}

/** Best effort: an abandoned session is garbage-collected by the registry anyway. */
export async function cancelUpload(repo: Repository, location: URL): Promise<void> {
  try {
    const response = await repo.client.send({
      method: 'DELETE',
      url: location,
      scopes: repo.scopes,
      what: `cancel upload to ${repo.ref()}`,
      signal: AbortSignal.timeout(5_000),
    });
    await response.body.dump();
  } catch {
    // The registry expires the session; nothing else depends on this answer.
  }
}

function checkStoredDigest(stored: string | undefined, expected: string, what: string): void {
  if (stored && stored !== expected) throw new RegistryError('DIGEST_MISMATCH', `${what}: registry stored digest ${stored}`);
}
