import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { getBlob } from './registry/blob.js';
import { networkError } from './registry/client.js';
import { parseDigest } from './registry/digest.js';
import { RegistryError } from './registry/errors.js';
import { finishUpload, patchUpload, putUpload, uploadStatus } from './registry/upload.js';
import type { Descriptor } from './registry/media-types.js';
import type { Repository } from './registry/repository.js';
import { throttled, type RateLimiter } from './rate-limit.js';

export interface BlobCopyOptions {
  /** Blobs larger than this go up in chunks that can resume; smaller ones in one PUT. */
  chunkThreshold: number;
  chunkSize: number;
  /** Chunk failures resumed from the registry's offset before the copy gives up. */
  maxResumes: number;
  signal?: AbortSignal;
  onBytes?: (bytes: number) => void;
  /** The job's bandwidth limit, shared by all its blobs. */
  limiter?: RateLimiter;
}

export type TransferTuning = Omit<BlobCopyOptions, 'signal' | 'onBytes' | 'limiter'>;

export const DEFAULT_BLOB_COPY: TransferTuning = {
  chunkThreshold: 32 * 1024 * 1024,
  chunkSize: 16 * 1024 * 1024,
  maxResumes: 3,
};

/**
 * Streams a blob from the source into an upload session on the destination, hashing as it
 * goes: a digest or size that does not match fails the upload before it is committed. The
 * session may still be opening: the source GET does not wait for it.
 */
export async function copyBlob(
  source: Repository,
  destination: Repository,
  blob: Descriptor,
  session: Promise<URL>,
  options: BlobCopyOptions,
): Promise<void> {
  if (blob.size > options.chunkThreshold) return copyChunked(source, destination, blob, await session, options);
  const [opened, location] = await Promise.allSettled([getBlob(source, blob.digest, options.signal ? { signal: options.signal } : {}), session]);
  if (opened.status === 'rejected' || location.status === 'rejected') {
    if (opened.status === 'fulfilled') {
      // undici errors a body destroyed unread (RequestAbortedError): unheard, it would end the process.
      opened.value.body.on('error', () => {});
      opened.value.body.destroy();
    }
    throw opened.status === 'rejected' ? opened.reason : (location as PromiseRejectedResult).reason;
  }
  const { body } = opened.value;
  const what = `GET blob ${source.ref()}@${blob.digest}`;
  await putUpload(
    destination,
    location.value,
    { digest: blob.digest, size: blob.size, body: Readable.from(verified(throttled(body, options.limiter, options.signal), blob, what, options.onBytes), { objectMode: false }) },
    options.signal,
  );
}

/**
 * Large blobs go up in chunks read into memory one at a time (bounded by `chunkSize`), so a
 * failure on either side resumes without starting over: a dropped source is reopened with a
 * Range request where the chunk stopped, a failed PATCH is sent again from the offset the
 * registry reports. distribution cancels a session whose PATCH failed half-way; that error
 * goes up as transient and the job's retry starts the blob again.
 */
async function copyChunked(
  source: Repository,
  destination: Repository,
  blob: Descriptor,
  firstLocation: URL,
  options: BlobCopyOptions,
): Promise<void> {
  const { signal } = options;
  const hash = newHash(blob.digest);
  const reader = new ResumingReader(source, blob, signal, options.maxResumes, options.limiter);
  let location = firstLocation;
  let committed = 0;
  let resumes = 0;
  // One buffer for every chunk of the blob: memory stays at one chunk, however large the blob.
  const buffer = Buffer.allocUnsafe(Math.min(options.chunkSize, blob.size));
  try {
    while (committed < blob.size) {
      const chunk = await reader.read(buffer.subarray(0, Math.min(options.chunkSize, blob.size - committed)));
      hash.update(chunk);
      let sent = 0;
      while (sent < chunk.length) {
        try {
          location = await patchUpload(
            destination,
            location,
            { digest: blob.digest, start: committed + sent, length: chunk.length - sent, body: chunk.subarray(sent) },
            signal,
          );
          sent = chunk.length;
        } catch (error) {
          if (!(error instanceof RegistryError) || !error.transient || resumes >= options.maxResumes) throw error;
          resumes += 1;
          const status = await uploadStatus(destination, location, signal).catch(() => {
            throw error;
          });
          location = status.location;
          sent = status.size - committed;
          if (sent < 0 || sent > chunk.length) throw error;
        }
      }
      committed += chunk.length;
      options.onBytes?.(chunk.length);
    }
  } finally {
    reader.close();
  }
  checkDigest(hash, blob, `GET blob ${source.ref()}@${blob.digest}`);
  await finishUpload(destination, location, blob.digest, signal);
}

/** Reads a source blob in exact pieces, reopening it at the current offset when the stream fails. */
class ResumingReader {
  readonly #source: Repository;
  readonly #blob: Descriptor;
  readonly #signal: AbortSignal | undefined;
  readonly #what: string;
  #reopens: number;
  readonly #limiter: RateLimiter | undefined;
  #offset = 0;
  #body: (AsyncIterable<Buffer> & { destroy(): void }) | undefined;
  #iterator: AsyncIterator<Buffer> | undefined;
  #leftover: Buffer | undefined;

  constructor(source: Repository, blob: Descriptor, signal: AbortSignal | undefined, reopens: number, limiter: RateLimiter | undefined) {
    this.#limiter = limiter;
    this.#source = source;
    this.#blob = blob;
    this.#signal = signal;
    this.#reopens = reopens;
    this.#what = `GET blob ${source.ref()}@${blob.digest}`;
  }

  /** Fills `chunk` completely from the source. */
  async read(chunk: Buffer): Promise<Buffer> {
    const length = chunk.length;
    let filled = 0;
    while (filled < length) {
      let piece: Buffer | undefined;
      try {
        piece = await this.#next();
      } catch (error) {
        const failure = networkError(error, this.#what, this.#signal);
        if (!failure.transient || this.#reopens <= 0) throw failure;
        this.#reopens -= 1;
        this.close();
        continue;
      }
      if (!piece) {
        throw new RegistryError('SIZE_MISMATCH', `${this.#what}: ended after ${this.#offset} bytes, the manifest declares ${this.#blob.size}`);
      }
      const used = Math.min(piece.length, length - filled);
      await this.#limiter?.take(used, this.#signal);
      piece.copy(chunk, filled, 0, used);
      if (used < piece.length) this.#leftover = piece.subarray(used);
      filled += used;
      this.#offset += used;
    }
    return chunk;
  }

  close(): void {
    this.#body?.destroy();
    this.#body = undefined;
    this.#iterator = undefined;
    this.#leftover = undefined;
  }

  async #next(): Promise<Buffer | undefined> {
    if (this.#leftover) {
      const piece = this.#leftover;
      this.#leftover = undefined;
      return piece;
    }
    if (!this.#iterator) {
      const stream = await getBlob(this.#source, this.#blob.digest, { from: this.#offset, ...(this.#signal ? { signal: this.#signal } : {}) });
      this.#body = stream.body;
      this.#iterator = stream.body[Symbol.asyncIterator]();
      // A registry that ignores Range starts from 0: drop what was read already.
      let skip = this.#offset - stream.offset;
      while (skip > 0) {
        const { value, done } = await this.#iterator.next();
        if (done) return undefined;
        if (value.length > skip) {
          this.#leftover = value.subarray(skip);
          break;
        }
        skip -= value.length;
      }
      if (this.#leftover) return this.#next();
    }
    const { value, done } = await this.#iterator.next();
    return done ? undefined : value;
  }
}

/** Yields the blob's bytes, hashing them, and fails before the last byte if size or digest differ. */
async function* verified(source: AsyncIterable<Buffer>, blob: Descriptor, what: string, onBytes: ((n: number) => void) | undefined): AsyncGenerator<Buffer> {
  const hash = newHash(blob.digest);
  let size = 0;
  try {
    for await (const chunk of source) {
      size += chunk.length;
      if (size > blob.size) throw new RegistryError('SIZE_MISMATCH', `${what}: more than the ${blob.size} bytes the manifest declares`);
      hash.update(chunk);
      onBytes?.(chunk.length);
      if (size === blob.size) checkDigest(hash, blob, what);
      yield chunk;
    }
  } catch (error) {
    throw networkError(error, what);
  }
  if (size !== blob.size) throw new RegistryError('SIZE_MISMATCH', `${what}: ${size} bytes, the manifest declares ${blob.size}`);
}

function checkDigest(hash: Hash, blob: Descriptor, what: string): void {
  const digest = `${parseDigest(blob.digest).algorithm}:${hash.digest('hex')}`;
  if (digest !== blob.digest) throw new RegistryError('DIGEST_MISMATCH', `${what}: content has digest ${digest}`);
}

function newHash(digest: string): Hash {
  return createHash(parseDigest(digest).algorithm);
}
