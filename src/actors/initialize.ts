import { fromPromise } from 'xstate';
import { openRepository, type JobRuntime } from '../services/job-runtime.js';
import { listTags } from '../services/registry/tags.js';
import { isRegistryError } from '../services/registry/errors.js';
import { filterTags, type TagFilter } from '../services/tag-filter.js';
import type { Location } from './types.js';

export interface InitializeInput {
  /** Registries to connect to (resolving credentials, learning scheme and auth). */
  registries: string[];
  /** The repository whose tags the job works on. */
  list: Location;
  /** Given tags skip the listing. */
  tags?: string[];
  filter: TagFilter;
  /** Deletion treats a repository that does not exist as one with no tags. */
  absentRepository: 'error' | 'empty';
}

export interface InitializeOutput {
  tags: string[];
}

export const resolveTags = (runtime: JobRuntime) =>
  fromPromise<InitializeOutput, InitializeInput>(async ({ input, signal }) => {
    await Promise.all(input.registries.map((registry) => runtime.registries.get(registry, signal)));
    if (input.tags) return { tags: input.tags };
    const repository = await openRepository(runtime, input.list, 'pull', signal);
    try {
      return { tags: filterTags(await listTags(repository, signal), input.filter) };
    } catch (error) {
      if (input.absentRepository === 'empty' && isRegistryError(error, 'NOT_FOUND')) return { tags: [] };
      throw error;
    }
  });
