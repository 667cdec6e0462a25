import { setMaxListeners } from 'node:events';
import { abortable } from './abortable.js';
import type { Logger } from 'pino';
import { Repository } from './registry/repository.js';
import type { Registries } from './registry/registries.js';
import { getManifest, type Manifest } from './registry/manifest.js';
import type { BlobLocator } from './blob-locator.js';
import type { Cleanups } from './cleanups.js';
import type { RepositoryReferrers } from './registry/referrers.js';
import type { TransferTuning } from './copy-blob.js';
import type { Location } from '../actors/types.js';
import type { RateLimiter } from './rate-limit.js';
import type { Slots } from './slots.js';

export type BlobState = 'present' | 'missing';

/**
 * What a job's actors share besides their input: the registry clients, the answers already
 * learnt (kept out of the persisted snapshot: after a restore they are asked again), and
 * the process-wide knowledge of where blobs live on each destination registry.
 */
export interface JobRuntime {
  /** Resolves once the job's steps so far are stored: each phase waits for it before it acts. */
  durable(signal?: AbortSignal): Promise<void>;
  registries: Registries;
  /** Per job: what the destination answered for each blob digest. */
  blobs: Map<string, BlobState>;
  /** Per job: blobs one of its batches is asking the destination about or putting there now (see `oneBatchAtATime`). */
  settling: Map<string, Promise<void>>;
  /**
   * Per job: blobs copied or mounted whose transfer phase has not completed (an attempt that
   * failed after them): the attempt that completes counts them, as the log already said them.
   */
  transferred: Map<string, { how: 'copied' | 'mounted'; size: number }>;
  /** Per job: source manifests fetched by digest, and derived indexes built from them. */
  manifests: Map<string, Manifest>;
  /** Per job: source tags already fetched by tag (to rank them), and the digest each had then. */
  resolved: Map<string, string>;
  /**
   * Per job: the destination's tags when the job started, listed with the source's. Unknown
   * after a restore or for explicit items, which are then compared by HEAD.
   */
  destinationTags?: Set<string>;
  /** Per job, by `registry/repository`: what is known of each repository's referrers. */
  referrers: Map<string, RepositoryReferrers>;
  /** Per job: its blobs in flight, whichever of its batches they are for. */
  blobSlots: Slots;
  /** Per job: the byte rate all its blobs share, when it has a bandwidth limit. */
  bandwidth?: RateLimiter;
  locator: BlobLocator;
  cleanups: Cleanups;
  transfer: TransferTuning;
  logger: Logger;
}

/**
 * A repository for a phase. Its signal is shared by every request the phase makes, often
 * more than Node's default of 10 abort listeners.
 */
export async function openRepository(runtime: JobRuntime, location: Location, access: 'pull' | 'push', signal?: AbortSignal): Promise<Repository> {
  if (signal) setMaxListeners(0, signal);
  const client = await runtime.registries.get(location.registry, signal);
  return new Repository(client, location.repository, access === 'push' ? ['pull', 'push'] : ['pull']);
}

/** Source manifests by digest, fetched once per job. */
export async function loadManifest(runtime: JobRuntime, source: Repository, digest: string, signal?: AbortSignal): Promise<Manifest> {
  const cached = runtime.manifests.get(digest);
  if (cached) return cached;
  const manifest = await getManifest(source, digest, signal);
  runtime.manifests.set(digest, manifest);
  return manifest;
}

/** A target tag the destination did not have when the job started: nothing there to HEAD. */
export function absentOnDestination(runtime: JobRuntime, target: string): boolean {
  return runtime.destinationTags !== undefined && !target.includes(':') && !runtime.destinationTags.has(target);
}

/** A blob verified on the destination: for this job's checks, and as a mount source for others. */
export function markPresent(runtime: JobRuntime, destination: Repository, digest: string): void {
  runtime.blobs.set(digest, 'present');
  runtime.locator.add(destination.client.registry, destination.name, digest);
}

/**
 * Runs `work` on one blob of the destination for one batch of the job at a time: a batch that
 * finds another asking about the blob or putting it there waits for that first, then learns
 * the answer from `runtime.blobs`. Besides saving requests, this keeps a job from putting a
 * blob twice: distribution 2.8 rewrites a repository's link to a blob in place, and a HEAD or
 * manifest PUT that reads it meanwhile fails (500, MANIFEST_BLOB_UNKNOWN); 3.0 writes it
 * atomically (https://github.com/distribution/distribution/pull/4624).
 */
export async function oneBatchAtATime<T>(runtime: JobRuntime, digest: string, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  for (let other = runtime.settling.get(digest); other; other = runtime.settling.get(digest)) {
    await abortable(other, signal, `wait for another batch's work on ${digest}`);
  }
  const running = work();
  const settled = running.then(
    () => {},
    () => {},
  );
  runtime.settling.set(digest, settled);
  void settled.then(() => {
    if (runtime.settling.get(digest) === settled) runtime.settling.delete(digest);
  });
  return running;
}

/** What the job knows of a repository's referrers; filled in as it learns (tags listed, API probed). */
export function referrersOf(runtime: JobRuntime, location: Location): RepositoryReferrers {
  const key = `${location.registry}/${location.repository}`;
  let known = runtime.referrers.get(key);
  if (!known) runtime.referrers.set(key, (known = {}));
  return known;
}
