import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { getBlob } from './registry/blob.js';
import { networkError } from './registry/client.js';
import { parseDigest } from './registry/digest.js';
import { RegistryError } from './registry/errors.js';
import { finishUpload, patchUpload, putUpload, uploadStatus } from './registry/upload.js';
import type { Descriptor } from './registry/media-types.js';
import type { Repository } from './registry/repository.js';

export interface BlobCopyOptions {
  /** Blobs larger than this go up in chunks that can resume; smaller ones in one PUT. */
  chunkThreshold: number;
  chunkSize: number;
  /** Chunk failures resumed from the registry's offset before the copy gives up. */
  maxResumes: number;
  signal?: AbortSignal;
  onBytes?: (bytes: number) => void;
}

export const DEFAULT_BLOB_COPY: Omit<BlobCopyOptions, 'signal' | 'onBytes'> = {
  chunkThreshold: 32 * 1024 * 1024,
  chunkSize: 16 * 1024 * 1024,
  maxResumes: 3,
};

/**
 * Streams a blob from the source into an open upload session on the destination, hashing as
 * it goes: a digest or size that does not match fails the upload before it is committed.
 */
export async function copyBlob(
  source: Repository,
  destination: Repository,
  blob: Descriptor,
  location: URL,
  options: BlobCopyOptions,
): Promise<void> {
  if (blob.size > options.chunkThreshold) return copyChunked(source, destination, blob, location, options);
  const { body } = await getBlob(source, blob.digest, options.signal ? { signal: options.signal } : {});
  const verify = new Verification(source, blob, newHash(blob.digest), 0);
  await putUpload(
    destination,
    location,
    { digest: blob.digest, size: blob.size, body: Readable.from(verify.stream(body, blob.size, options.onBytes, true), { objectMode: false }) },
    options.signal,
  );
}

async function copyChunked(
  source: Repository,
  destination: Repository,
  blob: Descriptor,
  firstLocation: URL,
  options: BlobCopyOptions,
): Promise<void> {
  const { signal } = options;
  let location = firstLocation;
  let committed = 0;
  let hash = newHash(blob.digest);
  let reader = await openSource(source, blob, 0, signal);
  let resumes = 0;
  try {
    while (committed < blob.size) {
      const length = Math.min(options.chunkSize, blob.size - committed);
      const chunkHash = hash.copy();
      const verify = new Verification(source, blob, chunkHash, committed);
      try {
        location = await patchUpload(
          destination,
          location,
          { digest: blob.digest, start: committed, length, body: Readable.from(verify.stream(reader, length, options.onBytes, false), { objectMode: false }) },
          signal,
        );
        committed += length;
        hash = chunkHash;
      } catch (error) {
        if (!(error instanceof RegistryError) || !error.transient || resumes >= options.maxResumes) throw error;
        resumes += 1;
        reader.close();
        // The registry may have kept part of the failed chunk: continue from what it holds.
        const status = await uploadStatus(destination, location, signal);
        location = status.location;
        if (status.size < committed) {
          throw new RegistryError('SERVER_ERROR', `resume ${destination.ref()}@${blob.digest}: registry holds ${status.size} bytes, fewer than the ${committed} it confirmed`);
        }
        reader = await openSource(source, blob, committed, signal);
        await reader.skip(status.size - committed, hash);
        options.onBytes?.(-(verify.sent - (status.size - committed)));
        committed = status.size;
      }
    }
  } finally {
    reader.close();
  }
  const digest = `${parseDigest(blob.digest).algorithm}:${hash.digest('hex')}`;
  if (digest !== blob.digest) {
    throw new RegistryError('DIGEST_MISMATCH', `GET blob ${source.ref()}@${blob.digest}: content has digest ${digest}`);
  }
  await finishUpload(destination, location, blob.digest, signal);
}

/** Opens the source at `from`; a registry that ignores Range is read from 0 and skipped. */
async function openSource(source: Repository, blob: Descriptor, from: number, signal: AbortSignal | undefined): Promise<ByteReader> {
  const stream = await getBlob(source, blob.digest, { from, ...(signal ? { signal } : {}) });
  const reader = new ByteReader(stream.body, `GET blob ${source.ref()}@${blob.digest}`);
  await reader.skip(from - stream.offset);
  return reader;
}

class Verification {
  sent = 0;
  readonly #what: string;
  readonly #blob: Descriptor;
  readonly #hash: Hash;
  readonly #start: number;

  constructor(source: Repository, blob: Descriptor, hash: Hash, start: number) {
    this.#what = `GET blob ${source.ref()}@${blob.digest}`;
    this.#blob = blob;
    this.#hash = hash;
    this.#start = start;
  }

  /** Yields `length` bytes, hashing them; `final` checks size and digest at the end. */
  async *stream(source: AsyncIterable<Buffer> | ByteReader, length: number, onBytes: ((n: number) => void) | undefined, final: boolean): AsyncGenerator<Buffer> {
    const chunks = source instanceof ByteReader ? source.take(length) : source;
    try {
      for await (const chunk of chunks) {
        this.sent += chunk.length;
        if (this.#start + this.sent > this.#blob.size) {
          throw new RegistryError('SIZE_MISMATCH', `${this.#what}: more than the ${this.#blob.size} bytes the manifest declares`);
        }
        this.#hash.update(chunk);
        onBytes?.(chunk.length);
        yield chunk;
      }
    } catch (error) {
      throw networkError(error, this.#what);
    }
    if (this.sent !== length) {
      throw new RegistryError('SIZE_MISMATCH', `${this.#what}: ${this.#start + this.sent} bytes, the manifest declares ${this.#blob.size}`);
    }
    if (final) {
      const digest = `${parseDigest(this.#blob.digest).algorithm}:${this.#hash.digest('hex')}`;
      if (digest !== this.#blob.digest) throw new RegistryError('DIGEST_MISMATCH', `${this.#what}: content has digest ${digest}`);
    }
  }
}

/** Hands out exact byte counts from a stream, keeping what a chunk boundary splits. */
class ByteReader {
  readonly #iterator: AsyncIterator<Buffer>;
  readonly #body: { destroy(): void };
  readonly #what: string;
  #leftover: Buffer | undefined;

  constructor(body: AsyncIterable<Buffer> & { destroy(): void }, what: string) {
    this.#iterator = body[Symbol.asyncIterator]();
    this.#body = body;
    this.#what = what;
  }

  async *take(length: number): AsyncGenerator<Buffer> {
    let remaining = length;
    while (remaining > 0) {
      const chunk = await this.#next();
      if (!chunk) return;
      if (chunk.length > remaining) {
        this.#leftover = chunk.subarray(remaining);
        yield chunk.subarray(0, remaining);
        return;
      }
      remaining -= chunk.length;
      yield chunk;
    }
  }

  async skip(length: number, hash?: Hash): Promise<void> {
    let skipped = 0;
    for await (const chunk of this.take(length)) {
      hash?.update(chunk);
      skipped += chunk.length;
    }
    if (skipped !== length) throw new RegistryError('SIZE_MISMATCH', `${this.#what}: ended after ${skipped} of ${length} bytes to skip`);
  }

  close(): void {
    this.#body.destroy();
  }

  async #next(): Promise<Buffer | undefined> {
    if (this.#leftover) {
      const chunk = this.#leftover;
      this.#leftover = undefined;
      return chunk;
    }
    const { value, done } = await this.#iterator.next();
    return done ? undefined : value;
  }
}

function newHash(digest: string): Hash {
  return createHash(parseDigest(digest).algorithm);
}
