import type { Readable } from 'node:stream';
import { header, responseError } from './client.js';
import { RegistryError } from './errors.js';
import type { Repository } from './repository.js';

/** Size of the blob on the registry, or undefined when it is absent. */
export async function headBlob(repo: Repository, digest: string, signal?: AbortSignal): Promise<number | undefined> {
  const what = `HEAD blob ${repo.ref()}@${digest}`;
  const response = await repo.client.send({ method: 'HEAD', url: repo.path(`blobs/${digest}`), scopes: repo.scopes, what, ...(signal ? { signal } : {}) });
  // responseError reads the body: dump it only once the status is known to be no error.
  if (response.statusCode !== 200 && response.statusCode !== 404) throw await responseError(response, what);
  await response.body.dump();
  if (response.statusCode === 404) return undefined;
  return Number(header(response, 'content-length') ?? 0);
}

export interface BlobStream {
  body: Readable;
  /** Where the body starts: `from` if the registry honoured the Range, else 0. */
  offset: number;
}

/** Streams a blob, from byte `from` on when the registry supports ranges. */
export async function getBlob(repo: Repository, digest: string, options: { from?: number; signal?: AbortSignal } = {}): Promise<BlobStream> {
  const what = `GET blob ${repo.ref()}@${digest}`;
  const from = options.from ?? 0;
  const response = await repo.client.send({
    method: 'GET',
    url: repo.path(`blobs/${digest}`),
    scopes: repo.scopes,
    headers: from > 0 ? { range: `bytes=${from}-` } : {},
    what,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (response.statusCode === 200) return { body: response.body, offset: 0 };
  if (response.statusCode === 206) {
    const start = /^bytes (\d+)-/.exec(header(response, 'content-range') ?? '')?.[1];
    if (Number(start) !== from) {
      // dump() also handles the stream's error; a bare destroy() emits an unhandled 'error'.
      await response.body.dump();
      throw new RegistryError('PROTOCOL', `${what}: asked for bytes from ${from}, got Content-Range ${header(response, 'content-range')}`);
    }
    return { body: response.body, offset: from };
  }
  throw await responseError(response, what);
}
