import { phase } from './phase.js';
import { openRepository, referrersOf, type JobRuntime } from '../services/job-runtime.js';
import { deleteManifest, headManifest } from '../services/registry/manifest.js';
import { mapLimit } from '../services/map-limit.js';
import { isDigest } from '../services/registry/digest.js';
import { isRegistryError } from '../services/registry/errors.js';
import { fallbackTag, listReferrers, withContext, type Referrer, type RepositoryReferrers } from '../services/registry/referrers.js';
import type { Repository } from '../services/registry/repository.js';
import type { Location } from './types.js';

export interface DeleteInput {
  destination: Location;
  /** Tags, or digests of manifests. */
  references: string[];
  concurrency: number;
}

export interface DeleteOutput {
  deleted: string[];
  /** Already gone: a deletion that finds nothing is done. */
  absent: string[];
  /** Signatures, SBOMs, attestations and their own referrers, deleted with their subjects. */
  referrersDeleted: number;
}

export type ReferrerDeleted = { type: 'referrer.deleted'; subject: string; digest: string; artifactType?: string; tag?: string };

export type DeleteEvent = { type: 'tag.deleted'; reference: string; digest: string | undefined } | ReferrerDeleted;

/** What deleting one repository's manifests with their referrers needs at each level. */
interface Deletion {
  repo: Repository;
  known: RepositoryReferrers;
  signal: AbortSignal;
  deleted(event: ReferrerDeleted): void;
}

/**
 * Deletes each tag's manifest by digest: distribution 2.8 cannot delete a tag alone, so
 * every tag that points at the same digest goes with it. Its referrers go first (see
 * deleteWithReferrers).
 */
export const deleteTags = (runtime: JobRuntime) =>
  phase<DeleteOutput, DeleteInput, DeleteEvent>(runtime, async ({ input, signal, emit }) => {
    const repo = await openRepository(runtime, input.destination, 'push', signal);
    const output: DeleteOutput = { deleted: [], absent: [], referrersDeleted: 0 };
    const deletion: Deletion = {
      repo,
      // The tags initialize listed spare a request for each referrer tag that is not there.
      known: referrersOf(runtime, input.destination),
      signal,
      deleted: (event) => {
        output.referrersDeleted += 1;
        emit(event);
      },
    };
    await mapLimit(input.references, input.concurrency, async (reference) => {
      const digest = isDigest(reference) ? reference : (await headManifest(repo, reference, signal))?.digest;
      const result = digest ? await deleteWithReferrers(deletion, digest, reference) : 'absent';
      output[result].push(reference);
      emit({ type: 'tag.deleted', reference, digest });
    });
    return output;
  });

/**
 * Referrers before their subject, depth first, so that a deletion stopped or failed halfway
 * never leaves a referrer whose subject is gone. A digest whose manifest is already gone
 * still has its referrers looked for: a referrer tag outlives its subject otherwise.
 *
 * An index's child manifests keep their referrers: distribution keeps the children when the
 * index goes, so those referrers still have their subject, and a child may be another
 * image's too (another index, or a tag of the platform manifest itself) whose signature must
 * stay. A child's referrers go when the child itself is deleted (by its digest).
 */
async function deleteWithReferrers(deletion: Deletion, digest: string, reference: string): Promise<'deleted' | 'absent'> {
  try {
    await deleteReferrers(deletion, digest, new Set([digest]));
  } catch (error) {
    // Only a registry's answer gets the context: anything else is a bug, not to be retried as a network error.
    throw isRegistryError(error) ? withContext(error, `delete referrers of ${deletion.repo.ref(reference)} (${digest})`) : error;
  }
  return deleteManifest(deletion.repo, digest, deletion.signal);
}

/** `path`: the subjects above, so that a listing that refers back to one of them ends there. */
async function deleteReferrers(deletion: Deletion, subject: string, path: ReadonlySet<string>): Promise<void> {
  const { repo, known, signal } = deletion;
  const referrers = await listReferrers(repo, subject, { signal, known });
  for (const referrer of referrers.filter((r) => !path.has(r.digest))) {
    await deleteReferrers(deletion, referrer.digest, new Set(path).add(referrer.digest));
    if ((await deleteManifest(repo, referrer.digest, signal)) === 'deleted') deletion.deleted(deletedEvent(subject, referrer));
  }
  await deleteFallbackIndex(deletion, subject);
}

/** The index tagged `sha256-<hex>`, once the referrers it lists are gone. */
async function deleteFallbackIndex({ repo, known, signal }: Deletion, subject: string): Promise<void> {
  const tag = fallbackTag(subject);
  if (known.tags && !known.tags.has(tag)) return;
  const head = await headManifest(repo, tag, signal);
  if (head) await deleteManifest(repo, head.digest, signal);
}

function deletedEvent(subject: string, { digest, artifactType, tag }: Referrer): ReferrerDeleted {
  return { type: 'referrer.deleted', subject, digest, ...(artifactType === undefined ? {} : { artifactType }), ...(tag === undefined ? {} : { tag }) };
}
