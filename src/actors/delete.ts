import { fromPromise } from 'xstate';
import { openRepository, type JobRuntime } from '../services/job-runtime.js';
import { deleteManifest, headManifest } from '../services/registry/manifest.js';
import { mapLimit } from '../services/map-limit.js';
import type { Location } from './types.js';

export interface DeleteInput {
  destination: Location;
  tags: string[];
  concurrency: number;
}

export interface DeleteOutput {
  deleted: string[];
  /** Already gone: a deletion that finds nothing is done. */
  absent: string[];
}

export type DeleteEvent = { type: 'tag.deleted'; tag: string; digest: string | undefined };

/**
 * Deletes each tag's manifest by digest: distribution 2.8 cannot delete a tag alone, so
 * every tag that points at the same digest goes with it.
 */
export const deleteTags = (runtime: JobRuntime) =>
  fromPromise<DeleteOutput, DeleteInput, DeleteEvent>(async ({ input, signal, emit }) => {
    const destination = await openRepository(runtime, input.destination, 'push', signal);
    const output: DeleteOutput = { deleted: [], absent: [] };
    await mapLimit(input.tags, input.concurrency, async (tag) => {
      const head = await headManifest(destination, tag, signal);
      const result = head ? await deleteManifest(destination, head.digest, signal) : 'absent';
      output[result].push(tag);
      emit({ type: 'tag.deleted', tag, digest: head?.digest });
    });
    return output;
  });
