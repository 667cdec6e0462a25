import { phase } from './phase.js';
import { openRepository, type JobRuntime } from '../services/job-runtime.js';
import { deleteManifest, headManifest } from '../services/registry/manifest.js';
import { mapLimit } from '../services/map-limit.js';
import { isDigest } from '../services/registry/digest.js';
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
}

export type DeleteEvent = { type: 'tag.deleted'; reference: string; digest: string | undefined };

/**
 * Deletes each tag's manifest by digest: distribution 2.8 cannot delete a tag alone, so
 * every tag that points at the same digest goes with it.
 */
export const deleteTags = (runtime: JobRuntime) =>
  phase<DeleteOutput, DeleteInput, DeleteEvent>(runtime, async ({ input, signal, emit }) => {
    const destination = await openRepository(runtime, input.destination, 'push', signal);
    const output: DeleteOutput = { deleted: [], absent: [] };
    await mapLimit(input.references, input.concurrency, async (reference) => {
      const head = isDigest(reference) ? { digest: reference } : await headManifest(destination, reference, signal);
      const result = head ? await deleteManifest(destination, head.digest, signal) : 'absent';
      output[result].push(reference);
      emit({ type: 'tag.deleted', reference, digest: head?.digest });
    });
    return output;
  });
