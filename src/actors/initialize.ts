import { phase } from './phase.js';
import { openRepository, referrersOf, type JobRuntime } from '../services/job-runtime.js';
import { isReferrerTag } from '../services/registry/referrers.js';
import { listTags } from '../services/registry/tags.js';
import { isRegistryError } from '../services/registry/errors.js';
import { creationTimes } from '../services/image-created.js';
import type { TagFilter } from '../services/tag-filter.js';
import { selectTags, type TagSelection } from '../services/tag-selection.js';
import type { Location } from './types.js';

export interface InitializeInput {
  /** Registries to connect to (resolving credentials, learning scheme and auth). */
  registries: string[];
  /** The repository whose tags the job works on. */
  list: Location;
  /** Given tags skip the listing. */
  tags?: string[];
  /** Listed as well (a repository not there yet has no tags), so that tags it lacks need no HEAD. */
  destination?: Location;
  filter: TagFilter;
  /** Deletion treats a repository that does not exist as one with no tags. */
  absentRepository: 'error' | 'empty';
}

export interface InitializeOutput {
  tags: string[];
  /** What the filter made of the listing; none for given tags. */
  selection?: TagSelection;
}

export const resolveTags = (runtime: JobRuntime) =>
  phase<InitializeOutput, InitializeInput>(runtime, async ({ input, signal }) => {
    await Promise.all(input.registries.map((registry) => runtime.registries.get(registry, signal)));
    if (input.tags) return { tags: input.tags };
    const [tags, destinationTags] = await Promise.all([
      tagsOf(runtime, input.list, 'pull', input.absentRepository, signal),
      // With the access the job's later requests ask for: one token serves them all.
      input.destination && tagsOf(runtime, input.destination, 'push', 'empty', signal),
    ]);
    referrersOf(runtime, input.list).tags = new Set(tags);
    if (input.destination && destinationTags) {
      runtime.destinationTags = new Set(destinationTags);
      referrersOf(runtime, input.destination).tags = runtime.destinationTags;
    }
    // Signatures' and fallback indexes' tags go with their subjects, whatever the filter says.
    const candidates = tags.filter((tag) => !isReferrerTag(tag));
    const selection = await selectTags(candidates, input.filter, (passed) => creationTimes(runtime, input.list, passed, signal));
    return { tags: selection.kept, selection };
  });

async function tagsOf(runtime: JobRuntime, location: Location, access: 'pull' | 'push', absent: 'error' | 'empty', signal: AbortSignal): Promise<string[]> {
  const repository = await openRepository(runtime, location, access, signal);
  try {
    return await listTags(repository, signal);
  } catch (error) {
    if (absent === 'empty' && isRegistryError(error, 'NOT_FOUND')) return [];
    throw error;
  }
}
